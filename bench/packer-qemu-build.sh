#!/usr/bin/env bash
# A real `packer build` of images/packer/qemu on this machine, against the local Debian base image
# (scripts/vm/base-image.sh: bare ext4 root booted with -kernel/-initrd, no sudo, so Packer logs in
# as root through the cloud-init-root seed), then checks the output image offline with debugfs:
# bake manifest present, machine-id empty, SSH host keys and the build login gone. Prints figures.
#
#   bash bench/packer-qemu-build.sh [NODEUP_BINARY]      (default: dist/nodeup-linux-amd64)
#
# NODEUP_BAKE_ARGS (default "--only node-files") limits the bake to components that need no asset
# mirror; NODEUP_ACCEL (default tcg) picks the accelerator; NODEUP_KEEP=1 keeps the work folder.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$(readlink -f "${1:-$REPO/dist/nodeup-linux-amd64}")"
BAKE_ARGS="${NODEUP_BAKE_ARGS:---only node-files}"
ACCEL="${NODEUP_ACCEL:-tcg}"
T0=$(date +%s)
log() { printf '[packer-bench +%4ss] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ -x "$BIN" ] || die "no nodeup binary at $BIN: run node scripts/build.ts first"
"$BIN" bake --help >/dev/null 2>&1 || die "$BIN has no bake command: rebuild it"
for tool in packer qemu-system-x86_64 qemu-img debugfs; do
  command -v "$tool" >/dev/null || die "$tool missing: run scripts/boot-paths-deps.sh"
done

# The newest finished base image, or build one (NODEUP_BASE_IMAGE_DIR picks another folder).
CURRENT="${NODEUP_CACHE:-$HOME/.cache/nodeup}/vm/base-current"
BASE="${NODEUP_BASE_IMAGE_DIR:-}"
if [ -z "$BASE" ] && [ -f "$CURRENT/.ok" ]; then BASE="$(readlink -f "$CURRENT")"; fi
if [ -z "$BASE" ]; then
  log "building the base image (scripts/vm/base-image.sh)"
  BASE="$(bash "$REPO/scripts/vm/base-image.sh")"
fi
log "base image $BASE"
WORK="$(mktemp -d /tmp/nodeup-packer-bench.XXXXXX)"
if [ "${NODEUP_KEEP:-}" != 1 ]; then trap 'rm -rf "$WORK"' EXIT; fi

"$BIN" example --dir "$WORK/example" >/dev/null
sed 's|^stateStore: .*|stateStore: file:///tmp/nodeup-store|' "$WORK/example/boot-nodes.yaml" >"$WORK/bake.yaml"
K8S="$(sed -n 's/^  kubernetesVersion: //p' "$WORK/example/state/igconfig/nodes/node.yaml")"

if [ -n "${NODEUP_IMAGE:-}" ]; then
  log "reusing the image $NODEUP_IMAGE (no packer build)"
  BUILD_S=reused
  mkdir -p "$WORK/output" && cp "$NODEUP_IMAGE" "$WORK/output/"
else
  log "packer build images/packer/qemu (accelerator $ACCEL, bake args: $BAKE_ARGS)"
  B0=$(date +%s)
  PACKER_LOG="${PACKER_LOG:-0}" CHECKPOINT_DISABLE=1 nice -n 5 packer build -color=false \
    -var "accelerator=$ACCEL" \
    -var "base_image_url=$BASE/rootfs.img" -var base_image_checksum=none -var disk_size=8G \
    -var "extra_qemuargs=[[\"-kernel\",\"$BASE/vmlinuz\"],[\"-initrd\",\"$BASE/initrd.img\"],[\"-append\",\"root=/dev/vda rw console=ttyS0 net.ifnames=0\"]]" \
    -var "cloud_init_dir=$REPO/images/packer/qemu/cloud-init-root" -var ssh_username=root \
    -var 'build_cleanup=rm -f /etc/ssh/sshd_config.d/90-packer-build.conf; usermod -p \* root; echo PasswordAuthentication no >/etc/ssh/sshd_config.d/50-cloud-init.conf' \
    -var "kubernetes_version=$K8S" -var "bake_config=$WORK/bake.yaml" -var "state_store_dir=$WORK/example/state" \
    -var "nodeup_binary=$BIN" -var "bake_args=$BAKE_ARGS" -var "output_directory=$WORK/output" \
    "$REPO/images/packer/qemu" | sed -u 's/^/  packer| /' >&2
  BUILD_S=$(($(date +%s) - B0))
fi
IMG="$(ls "$WORK"/output/*.qcow2)"
QCOW_MB=$(($(stat -c %s "$IMG") / 1024 / 1024))

log "checking the image offline (qemu-img convert + debugfs)"
qemu-img convert -O raw "$IMG" "$WORK/check.raw"
dbg() { debugfs -R "$1" "$WORK/check.raw" 2>/dev/null; }
MANIFEST="$(dbg 'cat /etc/nodeup/bake-manifest.json')"
[ -n "$MANIFEST" ] || die "no /etc/nodeup/bake-manifest.json in the image"
printf '%s\n' "$MANIFEST" | grep -q "\"kubernetesVersion\": \"$K8S\"" || die "manifest is not for $K8S"
size_of() { dbg "stat $1" | sed -n 's/.*Size: \([0-9]*\).*/\1/p' | head -1; }
[ "$(size_of /etc/machine-id)" = 0 ] || die "machine-id is not empty"
[ -z "$(size_of /var/lib/systemd/random-seed)" ] || die "a random seed is left in the image"
if dbg 'ls /var/log/journal' | grep -qE '[0-9a-f]{32}'; then die "journal files are left in the image"; fi
dbg 'cat /etc/ssh/sshd_config.d/50-cloud-init.conf' | grep -q 'PasswordAuthentication no' || die "password SSH is left on"
if dbg 'ls -l /etc/ssh' | grep -q 'ssh_host_'; then die "SSH host keys left in the image"; fi
if dbg 'ls -l /etc/ssh/sshd_config.d' | grep -q '90-packer-build'; then die "the build login's sshd drop-in is left"; fi
dbg 'cat /etc/shadow' | grep -q '^root:\*:' || die "root still has a password"
BIN_IN_IMAGE="$(size_of /usr/local/bin/nodeup)"
[ "$BIN_IN_IMAGE" = "$(stat -c %s "$BIN")" ] || die "the image's /usr/local/bin/nodeup differs in size"
dbg 'cat /etc/systemd/system/nodeup.service' | grep -q 'ExecStart=/usr/local/bin/nodeup apply' || die "nodeup.service missing"

# Boot the baked image once, the way a cloud would: NoCloud user-data from `nodeup userdata` whose
# mirror is an empty folder on this machine (any binary download would show in the server log),
# and a boot config whose state store is served over HTTP. Pass: the script finds the pinned
# binary already installed, and nodeup.service (enabled and started by install-unit) reads the
# node config from the store.
BOOT_S=skipped
if [ "${NODEUP_BOOT_CHECK:-1}" = 1 ]; then
  log "booting the baked image (TCG) with user-data from nodeup userdata"
  WWW="$WORK/www"
  mkdir -p "$WWW/seed" "$WWW/mirror"
  cp -r "$WORK/example/state" "$WWW/state"
  PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  sed "s|^stateStore: .*|stateStore: http://10.0.2.2:$PORT/state|" "$WORK/example/boot-nodes.yaml" >"$WORK/boot-guest.yaml"
  "$BIN" userdata --boot-config "$WORK/boot-guest.yaml" --mirror "http://10.0.2.2:$PORT/mirror" \
    --sha256-amd64 "$(sha256sum "$BIN" | cut -c1-64)" --out "$WWW/seed/user-data" --log-level warn
  printf 'instance-id: nodeup-baked-%s\nlocal-hostname: baked-node\n' "$(date +%s)" >"$WWW/seed/meta-data"
  python3 -u -m http.server --bind 127.0.0.1 --directory "$WWW" "$PORT" 2>"$WORK/http.log" >/dev/null &
  HTTP_PID=$!
  qemu-img create -q -f qcow2 -F qcow2 -b "$IMG" "$WORK/boot.qcow2"
  V0=$(date +%s)
  qemu-system-x86_64 -machine accel="$ACCEL" -cpu max -smp 2 -m 2048 -display none \
    -kernel "$BASE/vmlinuz" -initrd "$BASE/initrd.img" -append "root=/dev/vda rw console=ttyS0 net.ifnames=0" \
    -drive "file=$WORK/boot.qcow2,if=virtio,format=qcow2" -netdev user,id=n0 -device virtio-net,netdev=n0 \
    -smbios "type=1,serial=ds=nocloud-net;s=http://10.0.2.2:$PORT/seed/" -serial "file:$WORK/console.log" &
  VM_PID=$!
  ok=0
  for _ in $(seq 1 180); do
    if grep -q 'GET /state/igconfig/nodes/node.yaml' "$WORK/http.log" 2>/dev/null; then ok=1; break; fi
    kill -0 "$VM_PID" 2>/dev/null || break
    sleep 5
  done
  BOOT_S=$(($(date +%s) - V0))
  kill "$VM_PID" 2>/dev/null || true
  kill "$HTTP_PID" 2>/dev/null || true
  wait "$VM_PID" 2>/dev/null || true
  grep -a 'nodeup-userdata' "$WORK/console.log" | sed 's/^/  guest| /' >&2 || true
  [ "$ok" = 1 ] || die "nodeup.service never read the node config (see $WORK/console.log, $WORK/http.log)"
  grep -aq 'already installed' "$WORK/console.log" || die "user-data did not find the baked binary"
  if grep -q 'GET /mirror/' "$WORK/http.log"; then die "the guest downloaded the nodeup binary"; fi
fi

echo "packer_qemu_build_seconds=$BUILD_S"
echo "baked_boot_to_nodeup_apply_seconds=$BOOT_S"
if [ "$BOOT_S" != skipped ]; then echo "baked_boot_binary_downloads=0"; fi
echo "packer_qemu_accelerator=$ACCEL"
echo "packer_qemu_image_mb=$QCOW_MB"
echo "packer_qemu_bake_args=$BAKE_ARGS"
echo "packer_qemu_checks=manifest,machine-id-empty,no-random-seed,no-journal,no-ssh-host-keys,no-build-login,password-ssh-off,binary,unit"
log "done in $(($(date +%s) - T0))s"
