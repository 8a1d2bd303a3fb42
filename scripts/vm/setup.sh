#!/usr/bin/env bash
# Everything the VM suites (npm run test:vm) need, idempotent and cached under ~/.cache/nodeup:
#   1. QEMU, qemu-img, mmdebstrap (Debian packages)
#   2. the base guest image (scripts/vm/base-image.sh)
#   3. the nodeup binary guests run (npm run build -> dist/nodeup-linux-amd64), when missing
#   4. the asset mirror (scripts/vm/assets.sh: kubelet, kubectl, containerd, runc, CNI, crictl, etcd
#      built from source by scripts/fixtures/build.sh)
#   5. the local registry's images (scripts/vm/images.sh: pause, etcd, control plane, kube-proxy,
#      coredns, nodeup-hello; the conformance tests' images when the e2e fixture is built)
# Usage: bash scripts/vm/setup.sh [--rebuild-binary]
set -euo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
log() { printf '[vm-setup +%4ss] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
# shellcheck source=scripts/lib/timing.sh
source scripts/lib/timing.sh

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v curl >/dev/null || need+=(curl)
command -v skopeo >/dev/null || need+=(skopeo)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
# the cluster scenario's fixtures are built from source (runc links libseccomp with cgo)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
dpkg -s libseccomp-dev >/dev/null 2>&1 || need+=(libseccomp-dev pkg-config)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

log "base guest image"
timed "VM fixtures: base image" bash scripts/vm/base-image.sh >/dev/null

if [ ! -x dist/nodeup-linux-amd64 ] || [ "${1:-}" = "--rebuild-binary" ]; then
  log "building the nodeup binary (npm run build)"
  # shellcheck disable=SC1091
  source scripts/node-env.sh
  nice -n 10 node scripts/build.ts --arch amd64 >&2
fi
log "asset mirror (builds the missing fixtures first; kubernetes takes ~30 min cold, then cached)"
timed "VM fixtures: asset mirror" bash scripts/vm/assets.sh >/dev/null
log "registry images"
timed "VM fixtures: registry images" bash scripts/vm/images.sh >/dev/null
log "ready: $(readlink -f "${NODEUP_CACHE:-$HOME/.cache/nodeup}/vm/base-current"), dist/nodeup-linux-amd64"
