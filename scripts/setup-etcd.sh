#!/usr/bin/env bash
# Installs what the etcd and PKI integration tests and bench/etcd-learner.sh need, idempotently:
#  - Debian's etcd 3.4 (etcd-server, etcd-client): /usr/bin/etcd, /usr/bin/etcdctl
#  - etcd 3.6 built from the Go module proxy by scripts/fixtures/build.sh etcd36, cached under
#    ${NODEUP_CACHE:-~/.cache/nodeup}/fixtures/etcd36-<version>/bin (keyed by version, locked).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [ -x /usr/bin/etcd ] && [ -x /usr/bin/etcdctl ]; then
  echo "[setup-etcd] etcd 3.4 (Debian) present: $(/usr/bin/etcd --version | head -1)" >&2
else
  echo "[setup-etcd] installing Debian's etcd-server and etcd-client" >&2
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends etcd-server etcd-client
  # The package starts a system etcd on 2379/2380 where systemd runs; the tests use their own ports.
fi

echo "[setup-etcd] etcd 3.6 fixture (builds once, then cached)" >&2
bash "$HERE/fixtures/build.sh" etcd36
