#!/usr/bin/env bash
# Builds the base guest image for the VM suites and `nodeup launch --provider qemu`:
# Debian bookworm made by mmdebstrap (systemd, kernel, cloud-init, openssh, curl), packed into an
# ext4 image, with the kernel and initrd extracted beside it so QEMU boots it with -kernel/-initrd
# and root=/dev/vda (no partition table, no bootloader).
#
#   ${NODEUP_CACHE:-~/.cache/nodeup}/vm/base-<key>/
#     rootfs.img   raw ext4 (sparse), the backing file of every guest's qcow2 overlay
#     vmlinuz      the guest kernel
#     initrd.img   its initramfs (virtio drivers included)
#     image.env    what was built, from what, how long it took
#     .ok          written last: no .ok means "build again"
#   ${NODEUP_CACHE}/vm/base-current -> base-<key>   (a symlink to the newest build)
#
# <key> is a hash of this script, so any change to the package list or guest settings rebuilds.
# Idempotent: a finished build is reused. Prints the image folder on stdout.
# Needs root (mmdebstrap's root mode, mkfs.ext4 -d) and Debian's packages:
#   apt-get install -y mmdebstrap qemu-system-x86 qemu-utils e2fsprogs
# Measured on this workplace's 2-core machine: see docs/vm.md.
set -euo pipefail

CACHE="${NODEUP_CACHE:-$HOME/.cache/nodeup}/vm"
SIZE="${NODEUP_VM_IMAGE_SIZE:-8G}"
SELF="$(readlink -f "${BASH_SOURCE[0]}")"
KEY="bookworm-$(sha256sum "$SELF" | cut -c1-12)"
OUT="$CACHE/base-$KEY"
T0=$(date +%s)

log() { printf '[base-image +%4ss] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [ -f "$OUT/.ok" ]; then
  log "reusing $OUT"
  ln -sfn "base-$KEY" "$CACHE/base-current"
  printf '%s\n' "$OUT"
  exit 0
fi

[ "$(id -u)" = 0 ] || die "must run as root (mmdebstrap root mode and mkfs.ext4 -d need it)"
need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

# The mirror this machine's own apt uses (so the guest image uses the same reachable one).
MIRROR="${NODEUP_DEBIAN_MIRROR:-}"
if [ -z "$MIRROR" ]; then
  MIRROR="$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)[[:space:]]*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)"
fi
if [ -z "$MIRROR" ] && [ -f /etc/apt/sources.list ]; then
  MIRROR="$(awk '$1=="deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list)"
fi
[ -n "$MIRROR" ] || die "cannot find a Debian mirror in /etc/apt/sources.list(.d); set NODEUP_DEBIAN_MIRROR"
SECURITY_MIRROR="${MIRROR%/debian}/debian-security"

mkdir -p "$CACHE"
WORK="$(mktemp -d "$CACHE/.work-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/root"

PACKAGES=(
  systemd-sysv linux-image-amd64 initramfs-tools cloud-init openssh-server curl xz-utils
  ca-certificates iproute2 kmod udev dbus procps iptables nftables
  conntrack socat ethtool ebtables
)

log "mmdebstrap bookworm (${#PACKAGES[@]} packages) from the host's Debian mirror"
# shellcheck disable=SC2016
nice -n 10 mmdebstrap --variant=minbase --mode=root --format=directory \
  --include="$(IFS=,; echo "${PACKAGES[*]}")" \
  --components=main \
  --aptopt='Acquire::Retries "3"' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --customize-hook='rm -f "$1"/etc/machine-id "$1"/var/lib/dbus/machine-id; touch "$1"/etc/machine-id' \
  bookworm "$ROOT" \
  "deb $MIRROR bookworm main" \
  "deb $MIRROR bookworm-updates main" \
  "deb $SECURITY_MIRROR bookworm-security main" >&2

log "configuring the guest (NoCloud only, systemd-networkd DHCP, serial console)"
cat >"$ROOT/etc/fstab" <<'EOF'
# managed by nodeup scripts/vm/base-image.sh
/dev/vda / ext4 defaults,errors=remount-ro 0 1
EOF
mkdir -p "$ROOT/etc/cloud/cloud.cfg.d"
cat >"$ROOT/etc/cloud/cloud.cfg.d/90-nodeup.cfg" <<'EOF'
# managed by nodeup scripts/vm/base-image.sh: only NoCloud (seed over HTTP from the SMBIOS serial),
# networking by systemd-networkd (below), not by cloud-init.
datasource_list: [ NoCloud, None ]
network: {config: disabled}
# the image has no locales package: C.UTF-8 is built into libc
locale: C.UTF-8
EOF
mkdir -p "$ROOT/etc/systemd/network"
cat >"$ROOT/etc/systemd/network/10-dhcp.network" <<'EOF'
# managed by nodeup scripts/vm/base-image.sh
# the first NIC (QEMU user networking, or a cloud's primary NIC); net.ifnames=0 names it eth0.
# Other NICs (a private link) get their own files from the user-data.
[Match]
Name=eth0

[Network]
DHCP=ipv4
EOF
# Online as soon as one link is: a private link without DHCP must not hold boot for 2 minutes.
mkdir -p "$ROOT/etc/systemd/system/systemd-networkd-wait-online.service.d"
cat >"$ROOT/etc/systemd/system/systemd-networkd-wait-online.service.d/any.conf" <<'EOF'
# managed by nodeup scripts/vm/base-image.sh
[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=60
EOF
# QEMU user networking's DNS server; guests have no systemd-resolved.
rm -f "$ROOT/etc/resolv.conf"
printf 'nameserver 10.0.2.3\n' >"$ROOT/etc/resolv.conf"
chroot "$ROOT" systemctl enable systemd-networkd.service serial-getty@ttyS0.service >&2
# Quiet, quick boots: no timers that start apt or scrubs behind the test's back.
chroot "$ROOT" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer >&2 || true
printf 'nodeup-base\n' >"$ROOT/etc/hostname"

cp -L "$ROOT/vmlinuz" "$WORK/vmlinuz" 2>/dev/null || cp "$(ls "$ROOT"/boot/vmlinuz-* | tail -1)" "$WORK/vmlinuz"
cp -L "$ROOT/initrd.img" "$WORK/initrd.img" 2>/dev/null || cp "$(ls "$ROOT"/boot/initrd.img-* | tail -1)" "$WORK/initrd.img"
KVER="$(basename "$(ls "$ROOT"/boot/vmlinuz-* | tail -1)" | sed 's/^vmlinuz-//')"
USED_MB="$(du -sm "$ROOT" | cut -f1)"

log "mkfs.ext4 -d ($SIZE sparse, ${USED_MB} MB used)"
truncate -s "$SIZE" "$WORK/rootfs.img"
mkfs.ext4 -q -F -L nodeup-root -d "$ROOT" "$WORK/rootfs.img" >&2
rm -rf "$ROOT"

cat >"$WORK/image.env" <<EOF
# written by scripts/vm/base-image.sh
IMAGE_KEY=$KEY
DEBIAN_SUITE=bookworm
KERNEL_VERSION=$KVER
ROOTFS_SIZE=$SIZE
ROOTFS_USED_MB=$USED_MB
BUILD_SECONDS=$(($(date +%s) - T0))
BUILT_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
EOF
rm -rf "$OUT"
mkdir -p "$OUT"
mv "$WORK/rootfs.img" "$WORK/vmlinuz" "$WORK/initrd.img" "$WORK/image.env" "$OUT/"
touch "$OUT/.ok"
ln -sfn "base-$KEY" "$CACHE/base-current"
log "done: $OUT (kernel $KVER)"
printf '%s\n' "$OUT"
