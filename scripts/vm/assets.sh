#!/usr/bin/env bash
# Packs the binaries scripts/fixtures/build.sh made into release-style archives (the same file
# names and layouts as the upstream releases) in a local asset mirror that guests read through
# `nodeup launch --assets DIR`:
#
#   <mirror>/<name>/<version>/linux-amd64/<file>      (mirrorUrl in src/model/assets/versions.ts)
#     kubelet/1.35.4/linux-amd64/kubelet              kubectl/1.35.4/linux-amd64/kubectl
#     containerd/2.2.9/linux-amd64/containerd-2.2.9-linux-amd64.tar.gz   (bin/containerd, ...)
#     runc/1.3.6/linux-amd64/runc.amd64
#     cni-plugins/1.9.1/linux-amd64/cni-plugins-linux-amd64-v1.9.1.tgz  (./bridge, ...)
#     crictl/1.34.0/linux-amd64/crictl-v1.34.0-linux-amd64.tar.gz       (crictl)
#     etcd/3.6.16/linux-amd64/etcd-v3.6.16-linux-amd64.tar.gz           (etcd-v3.6.16-linux-amd64/etcd, ...)
#   <mirror>/SHA256SUMS          real SHA-256s of every file above
#   <mirror>/assets.env          NAME_VERSION=... and NAME_SHA256=... lines for tests and configs
#   (and, when fixture kubernetes134 is built, kubelet and kubectl of that minor: KUBELET_PREV_*)
#
# Archives are reproducible (sorted names, mtime 0, root owner, gzip -n), so their hashes only
# change when a binary does. Cached under ${NODEUP_CACHE:-~/.cache/nodeup}/vm/assets-<key>, keyed
# by the fixtures' versions and this script; prints the mirror folder on stdout.
# Usage: bash scripts/vm/assets.sh        (builds missing fixtures first: that can take an hour)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${NODEUP_CACHE:-$HOME/.cache/nodeup}/vm"
T0=$(date +%s)
log() { printf '[assets +%4ss] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

NAMES=(kubernetes containerd2 runc cni crictl etcd36)
declare -A VER BIN
while read -r name version _state bin; do
  VER[$name]="$version"
  BIN[$name]="$bin"
done < <("$REPO/scripts/fixtures/build.sh" --list)
missing=()
for n in "${NAMES[@]}"; do
  [ -f "${BIN[$n]%/bin}/.ok" ] && continue
  log "fixture $n ${VER[$n]} is not built yet: building it (scripts/fixtures/build.sh $n)"
  missing+=("$n")
done
if [ "${#missing[@]}" -gt 0 ]; then
  "$REPO/scripts/fixtures/build.sh" "${missing[@]}" >&2 || die "scripts/fixtures/build.sh ${missing[*]} failed"
fi

# The minor before (fixture kubernetes134), only when it is built: its kubelet and kubectl too, for
# the in-place upgrade scenario (issue 19). Nothing builds it here (scripts/fixtures/build.sh kubernetes134).
PREV=no
if [ -f "${BIN[kubernetes134]%/bin}/.ok" ]; then PREV="${VER[kubernetes134]#v}"; fi
KEY="$( (for n in "${NAMES[@]}"; do echo "$n ${VER[$n]}"; done; echo "prev $PREV"; sha256sum <"${BASH_SOURCE[0]}") | sha256sum | cut -c1-12)"
OUT="$CACHE/assets-$KEY"
if [ -f "$OUT/.ok" ]; then
  log "reusing $OUT"
  ln -sfn "assets-$KEY" "$CACHE/assets-current"
  printf '%s\n' "$OUT"
  exit 0
fi

v() { local x="${VER[$1]}"; printf '%s\n' "${x#v}"; }
K8S="$(v kubernetes)" CTRD="$(v containerd2)" RUNC="$(v runc)" CNI="$(v cni)" CRICTL="$(v crictl)" ETCD="$(v etcd36)"
mkdir -p "$CACHE"
WORK="$(mktemp -d "$CACHE/.assets-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
M="$WORK/mirror"

# reproducible tar.gz: tgz OUT DIR ENTRY...
tgz() {
  local out="$1" dir="$2"
  shift 2
  tar -C "$dir" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - "$@" | gzip -n -9 >"$out"
}
place() { mkdir -p "$M/$1/$2/linux-amd64"; printf '%s\n' "$M/$1/$2/linux-amd64"; }
need() { [ -x "$1" ] || die "missing binary $1 (rebuild its fixture with scripts/fixtures/build.sh)"; }

# kube_binaries VERSION BINDIR — kubelet and kubectl of one Kubernetes version.
kube_binaries() {
  local b d
  log "kubelet, kubectl $1"
  for b in kubelet kubectl; do
    need "$2/$b"
    d="$(place "$b" "$1")"
    install -m 0755 "$2/$b" "$d/$b"
  done
}
kube_binaries "$K8S" "${BIN[kubernetes]}"
if [ "$PREV" != no ]; then kube_binaries "$PREV" "${BIN[kubernetes134]}"; fi

log "containerd $CTRD"
need "${BIN[containerd2]}/containerd"
mkdir -p "$WORK/ctrd/bin"
for b in "${BIN[containerd2]}"/*; do install -m 0755 "$b" "$WORK/ctrd/bin/"; done
tgz "$(place containerd "$CTRD")/containerd-$CTRD-linux-amd64.tar.gz" "$WORK/ctrd" bin

log "runc $RUNC"
need "${BIN[runc]}/runc"
install -m 0755 "${BIN[runc]}/runc" "$(place runc "$RUNC")/runc.amd64"

log "cni-plugins $CNI"
mkdir -p "$WORK/cni"
# nodeup installs the plugins every release archive ships (src/containerd/component.ts cniPlugins);
# a fixture cached before build.sh built all of them lacks some: rebuild it.
for p in bandwidth bridge dhcp firewall host-device host-local ipvlan loopback macvlan portmap ptp sbr static tuning vlan vrf; do
  [ -x "${BIN[cni]}/$p" ] || die "fixture cni lacks the $p plugin (cached by an older build.sh): rm -rf ${BIN[cni]%/bin} && scripts/fixtures/build.sh cni"
done
for b in "${BIN[cni]}"/*; do install -m 0755 "$b" "$WORK/cni/"; done
cni_files=()
for f in "$WORK/cni"/*; do cni_files+=("./${f##*/}"); done
tgz "$(place cni-plugins "$CNI")/cni-plugins-linux-amd64-v$CNI.tgz" "$WORK/cni" "${cni_files[@]}"

log "crictl $CRICTL"
need "${BIN[crictl]}/crictl"
mkdir -p "$WORK/crictl" && install -m 0755 "${BIN[crictl]}/crictl" "$WORK/crictl/"
tgz "$(place crictl "$CRICTL")/crictl-v$CRICTL-linux-amd64.tar.gz" "$WORK/crictl" crictl

log "etcd $ETCD"
E="etcd-v$ETCD-linux-amd64"
mkdir -p "$WORK/etcd/$E"
for b in etcd etcdctl etcdutl; do need "${BIN[etcd36]}/$b"; install -m 0755 "${BIN[etcd36]}/$b" "$WORK/etcd/$E/"; done
tgz "$(place etcd "$ETCD")/$E.tar.gz" "$WORK/etcd" "$E"

log "SHA256SUMS"
(cd "$M" && find . -type f ! -name SHA256SUMS | sort | sed 's|^\./||' | xargs sha256sum) >"$M/SHA256SUMS"
sha() { awk -v f="$1" '$2==f {print $1}' "$M/SHA256SUMS"; }
cat >"$M/assets.env" <<EOF
# written by scripts/vm/assets.sh: versions and SHA-256s of the mirror's files
KUBELET_VERSION=$K8S
KUBELET_SHA256=$(sha "kubelet/$K8S/linux-amd64/kubelet")
KUBECTL_VERSION=$K8S
KUBECTL_SHA256=$(sha "kubectl/$K8S/linux-amd64/kubectl")
CONTAINERD_VERSION=$CTRD
CONTAINERD_SHA256=$(sha "containerd/$CTRD/linux-amd64/containerd-$CTRD-linux-amd64.tar.gz")
RUNC_VERSION=$RUNC
RUNC_SHA256=$(sha "runc/$RUNC/linux-amd64/runc.amd64")
CNI_PLUGINS_VERSION=$CNI
CNI_PLUGINS_SHA256=$(sha "cni-plugins/$CNI/linux-amd64/cni-plugins-linux-amd64-v$CNI.tgz")
CRICTL_VERSION=$CRICTL
CRICTL_SHA256=$(sha "crictl/$CRICTL/linux-amd64/crictl-v$CRICTL-linux-amd64.tar.gz")
ETCD_VERSION=$ETCD
ETCD_SHA256=$(sha "etcd/$ETCD/linux-amd64/$E.tar.gz")
EOF
if [ "$PREV" != no ]; then
  cat >>"$M/assets.env" <<EOF
KUBELET_PREV_VERSION=$PREV
KUBELET_PREV_SHA256=$(sha "kubelet/$PREV/linux-amd64/kubelet")
KUBECTL_PREV_VERSION=$PREV
KUBECTL_PREV_SHA256=$(sha "kubectl/$PREV/linux-amd64/kubectl")
EOF
fi
rm -rf "$OUT"
mv "$M" "$OUT"
touch "$OUT/.ok"
ln -sfn "assets-$KEY" "$CACHE/assets-current"
log "done: $OUT ($(du -sh "$OUT" | cut -f1))"
printf '%s\n' "$OUT"
