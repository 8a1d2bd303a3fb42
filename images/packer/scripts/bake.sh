#!/bin/sh
# Runs inside the build machine (as root, from every Packer template): installs the uploaded nodeup
# binary, bakes the image with the uploaded boot config, and checks the bake manifest. The same
# binary and the same `nodeup bake` run on every builder; only the machine underneath differs.
set -eu
log() { echo "== nodeup-bake $(date -u +%H:%M:%S) $* =="; }

if command -v cloud-init >/dev/null 2>&1; then
  log "waiting for cloud-init to finish (apt and dpkg locks)"
  cloud-init status --wait >/dev/null 2>&1 || true
fi
install -m 0755 /tmp/nodeup /usr/local/bin/nodeup
/usr/local/bin/nodeup version
log "nodeup bake (kubernetes ${NODEUP_KUBERNETES_VERSION}, ${NODEUP_DISTRO}/${NODEUP_ARCH})"
# NODEUP_BAKE_ARGS is split on purpose: extra flags such as "--skip images --enable-unit".
# shellcheck disable=SC2086
/usr/local/bin/nodeup bake --config /tmp/nodeup-bake.yaml --log-format json ${NODEUP_BAKE_ARGS:-}

manifest=/etc/nodeup/bake-manifest.json
if ! grep -q "\"kubernetesVersion\": \"${NODEUP_KUBERNETES_VERSION}\"" "$manifest"; then
  log "the bake config's node config is not for kubernetes ${NODEUP_KUBERNETES_VERSION}:"
  grep '"kubernetesVersion"' "$manifest" || true
  exit 1
fi
if ! grep -q "\"arch\": \"${NODEUP_ARCH}\"" "$manifest"; then
  log "the image is not ${NODEUP_ARCH}"
  exit 1
fi
rm -rf /tmp/nodeup /tmp/nodeup-bake.yaml /tmp/nodeup-store
log "baked: $(wc -c <"$manifest") byte manifest at $manifest"
