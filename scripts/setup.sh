#!/usr/bin/env bash
# Sets up a fresh machine for nodeup development and tests, idempotently; slow results are cached
# under ~/.cache/nodeup keyed by version, so a second run takes seconds.
#   1. Node 24 from the npm registry (scripts/node-env.sh) and the npm dependencies (npm ci)
#   2. the Debian packages the integration tests drive (etcd, containerd, registry, apt/dnf tools, QEMU...)
#   3. real binaries built from source through the Go module proxy (MinIO, etcd 3.6, containerd 2.x...)
# Usage: bash scripts/setup.sh [--no-fixtures | --no-vm-fixtures]
#   --no-fixtures     only step 1; no root needed
#   --no-vm-fixtures  leaves out the fixtures only the VM suites use (coredns, e2e): scripts/test.sh
#                     builds them beside the unit and integration tests, which leave the CPU mostly idle
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
log() { printf '[setup +%4ss] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }

# shellcheck disable=SC1091
source scripts/node-env.sh
# shellcheck source=scripts/lib/timing.sh
source scripts/lib/timing.sh
log "node $(node --version)"
lock_hash="$(sha256sum package-lock.json | cut -c1-16)"
stamp=node_modules/.nodeup-lock-hash
if [ ! -d node_modules ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
elif [ "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]; then
  # never wipe an existing node_modules (others may be using it): install what the lock adds
  log "npm install (package-lock.json changed)"
  npm install --no-audit --no-fund --loglevel=error
fi
echo "$lock_hash" >"$stamp"

vm_later=no
case "${1:-}" in
  "") ;;
  --no-fixtures) log "ready (no test fixtures)"; exit 0 ;;
  --no-vm-fixtures) vm_later=yes ;;
  *) log "unknown argument $1 (usage: bash scripts/setup.sh [--no-fixtures | --no-vm-fixtures])"; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  log "the integration tests need root (apt-get, mounts, chroot): run as root"
  exit 1
fi
log "Debian packages"
timed "setup: Debian packages" bash scripts/fixtures/apt-deps.sh
timed "setup: boot-path tools" bash scripts/boot-paths-deps.sh
timed "setup: foundation tools" bash scripts/setup-foundation.sh

# coredns serves the CoreDNS add-on image; e2e is upstream's agnhost (the image of the VM Service
# checks' client and echo pods) and e2e.test for the conformance tests (~5-10 min cold, once per
# Kubernetes version): only the VM suites use those two.
fixtures="${NODEUP_FIXTURES:-minio etcd36 containerd2 runc cni crictl kubernetes coredns e2e}"
# shellcheck disable=SC2086
if [ "$vm_later" = yes ]; then fixtures="$(printf '%s\n' $fixtures | grep -v -x -e coredns -e e2e | xargs)"; fi
log "binaries built from source through the Go module proxy (cached by version): $fixtures"
# shellcheck disable=SC2086
bash scripts/fixtures/build.sh $fixtures
timed "setup: etcd" bash scripts/setup-etcd.sh
timed "setup: add-ons" bash scripts/setup-addons.sh
log "the Debian bookworm root for the apt tests (cached)"
timed "setup: Debian root" bash scripts/fixtures/debian-root.sh
log "upstream type checker for rendered kubelet/kube-proxy configs (cached)"
timed "setup: kube-config-check" bash scripts/setup-kube-config-check.sh
log "ready"
