#!/usr/bin/env bash
# Installs what tests/integration/addons-apiserver.test.ts needs, idempotently (slow parts cached
# under ${NODEUP_CACHE:-~/.cache/nodeup}/fixtures keyed by version):
#  - etcd: Debian's 3.4 and the 3.6 fixture (scripts/setup-etcd.sh)
#  - kube-apiserver and kube-controller-manager built from source through the Go module proxy
#    (scripts/fixtures/build.sh kubernetes; a second run is instant, a concurrent one waits)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$HERE/setup-etcd.sh"
echo "[setup-addons] kubernetes fixture (builds once, then cached)" >&2
bash "$HERE/fixtures/build.sh" kubernetes
