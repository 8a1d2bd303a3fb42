#!/usr/bin/env bash
# Builds the OCI images guests pull as mirrors of registry.k8s.io, from the binaries
# scripts/fixtures/build.sh made, and pushes them (skopeo) into a docker-registry whose storage is
# cached under ${NODEUP_CACHE:-~/.cache/nodeup}/vm/registry-<key>/storage. The VM suites serve that
# storage with docker-registry on 127.0.0.1 (guests reach it at 10.0.2.2:<port>).
#
#   pause:3.10.1                        a static Go pause (scripts/vm/pause/main.go)
#   etcd:<etcd>-0                       etcd, etcdctl, etcdutl            (fixture etcd36)
#   kube-apiserver, kube-controller-manager, kube-scheduler :v<k8s>   (fixture kubernetes, when built)
#   nodeup-hello:1.0                    a static Go HTTP server on :8080 (scripts/vm/hello/main.go),
#                                       the cluster scenario's workload pod
#   kube-proxy:v<k8s>                   kube-proxy plus what upstream's distroless-iptables base
#                                       carries: nft, iptables/ip6tables (nft and legacy), conntrack
#   coredns/coredns:<coredns>           /coredns (fixture coredns; built here when missing)
#   e2e-test-images/...                 the conformance tests' images under their upstream names
#                                       (fixture e2e, when built): agnhost, busybox, nginx, ...
#   e2e-test-images/sample-apiserver    the Aggregator test's aggregated API server and the etcd
#   etcd:<the test's tag>               beside it (fixtures sample-apiserver and etcd36, when the
#                                       first is built: scripts/conformance/vm.sh builds it)
#
# Every image is reproducible (sorted, mtime 0, root-owned, gzip -n layers): the binaries-only ones
# are one layer with the binaries in /usr/local/bin and no shell; the others are made of files
# copied from Debian bookworm packages (with the shared libraries their ELF files need) and share
# layers where they can. Image names are repository paths without the registry.k8s.io host.
# Writes <out>/images.env (IMAGE_<KEY>=<repo>:<tag>@<digest>), <out>/debian-packages.txt (the
# Debian packages the files came from) and prints <out> on stdout.
# Needs: skopeo, docker-registry, go, mmdebstrap, readelf, root (for mmdebstrap and the chroot
# checks); scripts/fixtures/apt-deps.sh installs skopeo and docker-registry.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${NODEUP_CACHE:-$HOME/.cache/nodeup}/vm"
PAUSE_TAG=3.10.1
HELLO_TAG=1.0
T0=$(date +%s)
log() { printf '[images +%4ss] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
for c in skopeo docker-registry go mmdebstrap readelf; do
  command -v "$c" >/dev/null || die "$c is missing: run scripts/fixtures/apt-deps.sh (skopeo, docker-registry, mmdebstrap) / install Go"
done

declare -A VER BIN
while read -r name version state bin; do VER[$name]="$version"; BIN[$name]="$bin"; [ "$state" = built ] && BUILT+=" $name"; done \
  < <("$REPO/scripts/fixtures/build.sh" --list)
for f in etcd36 coredns; do
  case " ${BUILT:-} " in *" $f "*) ;; *) log "building fixture $f"; "$REPO/scripts/fixtures/build.sh" "$f" >&2; BUILT+=" $f" ;; esac
done
HAVE_K8S=no HAVE_E2E=no
case " ${BUILT:-} " in *" kubernetes "*) HAVE_K8S=yes ;; esac
case " ${BUILT:-} " in *" e2e "*) HAVE_E2E=yes ;; esac
HAVE_SAMPLE=no
case " ${BUILT:-} " in *" sample-apiserver "*) HAVE_SAMPLE="${VER[sample-apiserver]}" ;; esac
# The minor before (fixture kubernetes134), when built: its control-plane and kube-proxy images
# too, for the in-place upgrade scenario (issue 19).
PREV=no
case " ${BUILT:-} " in *" kubernetes134 "*) PREV="${VER[kubernetes134]}" ;; esac
ETCD="${VER[etcd36]#v}" K8S="${VER[kubernetes]}" COREDNS="${VER[coredns]}"

# Debian bookworm packages whose files (and the libraries those need) go into the images.
DEBIAN_PACKAGES=(busybox-static bash libc-bin netbase nftables iptables conntrack curl bind9-dnsutils netcat-openbsd iproute2 nginx)

# The key covers every input: fixture versions (a fixture's content is fixed by its version), this
# script (image contents, Debian package names), the Go sources of pause and hello. The Debian
# packages' exact versions are recorded in debian-packages.txt (bookworm only takes security and
# point-release fixes).
KEY="$( (echo "etcd $ETCD k8s $K8S have-k8s $HAVE_K8S coredns $COREDNS have-e2e $HAVE_E2E sample $HAVE_SAMPLE prev $PREV pause $PAUSE_TAG"; cat "${BASH_SOURCE[0]}" "$HERE/pause/main.go" "$HERE/hello/main.go" | sha256sum) | sha256sum | cut -c1-12)"
OUT="$CACHE/registry-$KEY"
if [ -f "$OUT/.ok" ]; then
  log "reusing $OUT"
  ln -sfn "registry-$KEY" "$CACHE/registry-current"
  printf '%s\n' "$OUT"
  exit 0
fi
mkdir -p "$CACHE"
WORK="$(mktemp -d "$CACHE/.images-XXXXXX")"
REG_PID=""
cleanup() { if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi; rm -rf "$WORK"; }
trap cleanup EXIT

log "pause (static Go)"
mkdir -p "$WORK/pause-src" "$WORK/bin"
cp "$HERE/pause/main.go" "$WORK/pause-src/"
printf 'module nodeup.dev/pause\n\ngo 1.22\n' >"$WORK/pause-src/go.mod"
(cd "$WORK/pause-src" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod nice -n 10 go build -trimpath -ldflags='-s -w' -o "$WORK/bin/pause" .)
log "hello (static Go HTTP server)"
mkdir -p "$WORK/hello-src"
cp "$HERE/hello/main.go" "$WORK/hello-src/"
printf 'module nodeup.dev/hello\n\ngo 1.22\n' >"$WORK/hello-src/go.mod"
(cd "$WORK/hello-src" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod nice -n 10 go build -trimpath -ldflags='-s -w' -o "$WORK/bin/nodeup-hello" .)

sha_hex() { sha256sum "$1" | cut -d' ' -f1; }

# layer ROOTFS — packs ROOTFS into a reproducible gzip layer blob (once per folder); sets LAYER_OUT
# to "<diff id> <blob hex> <blob size>".
declare -A LAYERS
layer() {
  local r="$1"
  if [ -z "${LAYERS[$r]:-}" ]; then
    tar -C "$r" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$WORK/layer.tar" .
    local diff lhex
    diff="$(sha_hex "$WORK/layer.tar")"
    gzip -n -6 <"$WORK/layer.tar" >"$WORK/layer.tgz"
    lhex="$(sha_hex "$WORK/layer.tgz")"
    mkdir -p "$WORK/blobs"
    LAYERS[$r]="$diff $lhex $(stat -c %s "$WORK/layer.tgz")"
    mv "$WORK/layer.tgz" "$WORK/blobs/$lhex"
    rm -f "$WORK/layer.tar"
  fi
  LAYER_OUT="${LAYERS[$r]}"
}

# image_layers KEY NAME TAG CONFIG_JSON ROOTFS... -> OCI layout in $WORK/oci/NAME/TAG, pushed later
#   CONFIG_JSON is the image config's "config" object; each ROOTFS folder is one layer, lowest first.
image_layers() {
  local key="$1" name="$2" tag="$3" cfg="$4"
  shift 4
  local d="$WORK/oci/$name/$tag" r diffs="" layers="" total=0 diff lhex lsize
  mkdir -p "$d/blobs/sha256"
  for r in "$@"; do
    layer "$r"
    read -r diff lhex lsize <<<"$LAYER_OUT"
    cp "$WORK/blobs/$lhex" "$d/blobs/sha256/$lhex"
    diffs+="${diffs:+,}\"sha256:$diff\""
    layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$lhex\",\"size\":$lsize}"
    total=$((total + lsize))
  done
  printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":[%s]}}' "$cfg" "$diffs" >"$WORK/config.json"
  local chex csize; chex="$(sha_hex "$WORK/config.json")"; csize="$(stat -c %s "$WORK/config.json")"
  mv "$WORK/config.json" "$d/blobs/sha256/$chex"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
    "$chex" "$csize" "$layers" >"$WORK/manifest.json"
  local mhex msize; mhex="$(sha_hex "$WORK/manifest.json")"; msize="$(stat -c %s "$WORK/manifest.json")"
  mv "$WORK/manifest.json" "$d/blobs/sha256/$mhex"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$d/oci-layout"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "$mhex" "$msize" "$tag" >"$d/index.json"
  printf '%s %s %s sha256:%s %s\n' "$key" "$name" "$tag" "$mhex" "$total" >>"$WORK/images.list"
  log "  $name:$tag sha256:${mhex:0:12} ($# layer(s), $(numfmt --to=iec "$total") compressed)"
}

# base_rootfs DIR [PASSWD_LINE...] — the files every image has: /etc/passwd, /etc/group, /tmp.
base_rootfs() {
  local r="$1"
  shift
  mkdir -p "$r/tmp" "$r/etc"
  chmod 1777 "$r/tmp"
  printf 'root:x:0:0:root:/:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
}

# image NAME TAG ENTRYPOINT_JSON BINARY... -> one layer, the binaries in /usr/local/bin
image() {
  local name="$1" tag="$2" entry="$3"
  shift 3
  local r="$WORK/rootfs/$name-$tag"
  base_rootfs "$r"
  mkdir -p "$r/usr/local/bin"
  for b in "$@"; do [ -x "$b" ] || die "missing binary $b"; install -m 0755 "$b" "$r/usr/local/bin/"; done
  image_layers "$(echo "$name" | tr 'a-z/.-' 'A-Z___')${KEY_SUFFIX:-}" "$name" "$tag" \
    "{\"Entrypoint\":$entry,\"Env\":[\"PATH=/usr/local/bin:/usr/bin:/bin\"]}" "$r"
}

# ---- Files from Debian packages ----
DEB="$WORK/debian"
debian_tree() {
  # The mirror this machine's own apt uses (as scripts/vm/base-image.sh).
  local mirror="${NODEUP_DEBIAN_MIRROR:-}"
  if [ -z "$mirror" ]; then
    mirror="$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)[[:space:]]*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)"
  fi
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror="$(awk '$1=="deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list)"
  fi
  [ -n "$mirror" ] || die "cannot find a Debian mirror in /etc/apt/sources.list(.d); set NODEUP_DEBIAN_MIRROR"
  log "Debian bookworm packages (extracted, not installed): ${DEBIAN_PACKAGES[*]}"
  nice -n 10 mmdebstrap --variant=extract --mode=root --format=directory --skip=cleanup/apt/cache \
    --include="$(IFS=,; echo "${DEBIAN_PACKAGES[*]}")" bookworm "$DEB" \
    "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
    "deb ${mirror%/debian}/debian-security bookworm-security main" >"$WORK/mmdebstrap.log" 2>&1 ||
    { tail -20 "$WORK/mmdebstrap.log" >&2; die "mmdebstrap failed"; }
  find "$DEB/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -printf '%f\n' | sed 's/\.deb$//' | sort >"$WORK/debian-packages.txt"
  log "  $(wc -l <"$WORK/debian-packages.txt") packages extracted"
}

LIBDIRS=(/lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib /usr/lib)
# deb_copy ROOTFS PATH... — copies PATH (absolute, in the Debian tree) into ROOTFS at the same place:
# a symlink as a symlink plus its target, a folder with everything in it, an ELF file with its
# program interpreter and every shared library it needs (NEEDED, recursively).
deb_copy() {
  local r="$1" p t lib dir found f
  shift
  for p in "$@"; do
    if [ -e "$r$p" ] || [ -L "$r$p" ]; then continue; fi
    [ -e "$DEB$p" ] || [ -L "$DEB$p" ] || die "$p is not in the Debian packages (${DEBIAN_PACKAGES[*]})"
    mkdir -p "$r$(dirname "$p")"
    if [ -L "$DEB$p" ]; then
      t="$(readlink "$DEB$p")"
      ln -s "$t" "$r$p"
      case "$t" in /*) ;; *) t="$(realpath -m -s "$(dirname "$p")/$t")" ;; esac
      deb_copy "$r" "$t"
    elif [ -d "$DEB$p" ]; then
      mkdir -p "$r$p"
      for f in "$DEB$p"/*; do deb_copy "$r" "${f#"$DEB"}"; done
    else
      cp -p "$DEB$p" "$r$p"
      if readelf -h "$DEB$p" >/dev/null 2>&1; then
        t="$(readelf -lW "$DEB$p" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')"
        if [ -n "$t" ]; then deb_copy "$r" "$t"; fi
        for lib in $(readelf -dW "$DEB$p" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
          found=""
          for dir in "${LIBDIRS[@]}"; do
            if [ -e "$DEB$dir/$lib" ]; then found="$dir/$lib"; break; fi
          done
          [ -n "$found" ] || die "$p needs $lib, which no package in the list has"
          deb_copy "$r" "$found"
        done
      fi
    fi
  done
}

# busybox_applets ROOTFS [flat] — /bin/busybox and a symlink for each applet no real tool already
# has (in any folder of PATH: a busybox `nc` in /usr/bin would shadow netcat-openbsd's in /bin).
# flat: every applet in /bin, as in upstream's busybox image (tests run /bin/sysctl, which Debian's
# busybox lists as /sbin/sysctl).
busybox_applets() {
  local r="$1" flat="${2:-}" a d have
  deb_copy "$r" /bin/busybox
  for a in $("$DEB/bin/busybox" --list-full); do
    case "$a" in */*) ;; *) continue ;; esac
    [ "$flat" != flat ] || a="bin/${a##*/}"
    have=no
    for d in usr/local/sbin usr/local/bin usr/sbin usr/bin sbin bin; do
      if [ -e "$r/$d/${a##*/}" ] || [ -L "$r/$d/${a##*/}" ]; then have=yes; break; fi
    done
    if [ "$have" = no ]; then mkdir -p "$r/$(dirname "$a")"; ln -s /bin/busybox "$r/$a"; fi
  done
}

# check ROOTFS CMD... — runs CMD inside ROOTFS (chroot, with its own /proc as a container has: a
# busybox shell finds its applets through /proc/self/exe) and logs its first line; fails the build
# if it fails. Skipped (with a note) when not root.
check() {
  local r="$1" out made=no rc=0
  shift
  if [ "$(id -u)" != 0 ]; then log "    (not root: not checked: $*)"; return 0; fi
  [ -d "$r/proc" ] || { mkdir "$r/proc"; made=yes; }
  out="$(env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin unshare --mount --pid --fork --mount-proc="$r/proc" chroot "$r" "$@" </dev/null 2>&1)" || rc=$?
  [ "$made" = no ] || rmdir "$r/proc"
  [ "$rc" = 0 ] || die "in $(basename "$r"): '$*' failed: $out"
  log "    $(basename "$r")\$ $*: $(printf '%s\n' "$out" | head -1)"
}

log "images"
image pause "$PAUSE_TAG" '["/usr/local/bin/pause"]' "$WORK/bin/pause"
image nodeup-hello "$HELLO_TAG" '["/usr/local/bin/nodeup-hello"]' "$WORK/bin/nodeup-hello"
E="${BIN[etcd36]}"
image etcd "$ETCD-0" '["/usr/local/bin/etcd"]' "$E/etcd" "$E/etcdctl" "$E/etcdutl"

# CoreDNS as upstream's image: /coredns as the entrypoint, the Corefile path as an argument (nodeup
# passes -conf /etc/coredns/Corefile). Upstream runs it as uid 65532 with a file capability for
# port 53; this image runs as root, and the Deployment drops every capability but NET_BIND_SERVICE.
R="$WORK/rootfs/coredns"
base_rootfs "$R"
install -m 0755 "${BIN[coredns]}/coredns" "$R/coredns"
image_layers COREDNS coredns/coredns "$COREDNS" \
  '{"Entrypoint":["/coredns"],"ExposedPorts":{"53/tcp":{},"53/udp":{}},"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}' "$R"

NEED_DEBIAN=no
if [ "$HAVE_K8S" = yes ] || [ "$HAVE_E2E" = yes ]; then NEED_DEBIAN=yes; debian_tree; fi

# k8s_images VERSION BINDIR [KEY_SUFFIX] — the control-plane images and kube-proxy of one Kubernetes
# version (images.env keys get the suffix: IMAGE_KUBE_PROXY_PREV=...).
k8s_images() {
  local K8S="$1" K="$2" KEY_SUFFIX="${3:-}" c R t s f
  for c in kube-apiserver kube-controller-manager kube-scheduler; do image "$c" "$K8S" "[\"/usr/local/bin/$c\"]" "$K/$c"; done

  # kube-proxy on what upstream's distroless-iptables base carries: nft (nftables mode), iptables
  # and ip6tables with -save/-restore on the nft backend as the default and the legacy ones beside
  # them (iptables mode), conntrack, and the libraries and xtables extensions they load.
  R="$WORK/rootfs/kube-proxy-$K8S"
  base_rootfs "$R"
  mkdir -p "$R/usr/local/bin" "$R/run" "$R/var/run"
  install -m 0755 "$K/kube-proxy" "$R/usr/local/bin/kube-proxy"
  deb_copy "$R" /usr/sbin/nft /usr/sbin/conntrack /usr/sbin/xtables-nft-multi /usr/sbin/xtables-legacy-multi \
    /usr/lib/x86_64-linux-gnu/xtables /etc/protocols /etc/services /etc/ethertypes
  for f in "$DEB"/usr/sbin/ip*tables-nft* "$DEB"/usr/sbin/ip*tables-legacy*; do deb_copy "$R" "${f#"$DEB"}"; done
  # What Debian's update-alternatives would do (iptables' postinst does not run in an extract).
  for t in iptables ip6tables; do
    for s in "" -save -restore; do ln -s "$t-nft$s" "$R/usr/sbin/$t$s"; done
  done
  check "$R" nft --version
  check "$R" iptables --version
  check "$R" ip6tables-legacy --version
  check "$R" iptables-nft-save --version
  check "$R" conntrack --version
  check "$R" /usr/local/bin/kube-proxy --version
  image_layers "KUBE_PROXY$KEY_SUFFIX" kube-proxy "$K8S" \
    '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}' "$R"
}

if [ "$HAVE_K8S" = yes ]; then
  k8s_images "$K8S" "${BIN[kubernetes]}"
  if [ "$PREV" != no ]; then
    k8s_images "$PREV" "${BIN[kubernetes134]}" _PREV
  fi
else
  log "fixture kubernetes is not built: no control-plane or kube-proxy images (run scripts/fixtures/build.sh kubernetes, then this script again)"
fi

if [ "$HAVE_E2E" = yes ]; then
  # The images the conformance tests use, under the names and tags of k8s.io/kubernetes@$K8S's
  # test/utils/image/manifest.go (registry.k8s.io/e2e-test-images/...). tests/conformance/skips.txt
  # lists the ones not built here and the tests that need them.
  KMOD="$(cd / && GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download -json "k8s.io/kubernetes@$K8S" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$KMOD/test/images" ] || die "k8s.io/kubernetes@$K8S is not in the Go module cache"
  X="${BIN[e2e]}"
  P=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

  log "nonewprivs' nnp (static Go, test/images/nonewprivs)"
  mkdir -p "$WORK/nnp-src"
  cp "$KMOD/test/images/nonewprivs/nnp.go" "$WORK/nnp-src/"
  printf 'module nodeup.dev/nnp\n\ngo 1.22\n' >"$WORK/nnp-src/go.mod"
  (cd "$WORK/nnp-src" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod nice -n 10 go build -trimpath -ldflags='-s -w' -o "$WORK/bin/nnp" .)

  # busybox (upstream: busybox 1.37 with its applets; here Debian's busybox-static 1.35).
  BB="$WORK/rootfs/busybox"
  base_rootfs "$BB"
  busybox_applets "$BB" flat
  check "$BB" sh -c 'echo ok; seq 1 2 | wc -l; timeout 1 true; wget --help 2>&1 | head -1 >/dev/null; echo done'
  check "$BB" /bin/sysctl -n kernel.ostype
  image_layers E2E_BUSYBOX e2e-test-images/busybox 1.37.0-1 "{\"Cmd\":[\"sh\"],\"Env\":[\"PATH=$P\"]}" "$BB"
  # nonroot: busybox running as uid 1234 (upstream: `USER 1234` on busybox).
  image_layers E2E_NONROOT e2e-test-images/nonroot 1.4 "{\"Cmd\":[\"sh\"],\"User\":\"1234\",\"Env\":[\"PATH=$P\"]}" "$BB"
  # nonewprivs: busybox plus a setuid nnp that prints its effective uid.
  R="$WORK/rootfs/nonewprivs"
  mkdir -p "$R/usr/local/bin"
  install -m 4755 "$WORK/bin/nnp" "$R/usr/local/bin/nnp"
  image_layers E2E_NONEWPRIVS e2e-test-images/nonewprivs 1.3 "{\"Cmd\":[\"nnp\"],\"Env\":[\"PATH=$P\"]}" "$BB" "$R"

  # The tools layer agnhost's upstream image (alpine + bind-tools curl netcat iproute2 bash) has:
  # a shell and applets, bash, curl, dig/nslookup/host, getent, nc, ip. jessie-dnsutils is this
  # layer alone (dig, nslookup, host and a shell are what the DNS tests run in it).
  T="$WORK/rootfs/tools"
  base_rootfs "$T"
  printf 'user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\n' >>"$T/etc/passwd"
  printf 'user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n' >>"$T/etc/group"
  printf 'hosts: files dns\nnetworks: files\nprotocols: files\nservices: files\npasswd: files\ngroup: files\n' >"$T/etc/nsswitch.conf"
  deb_copy "$T" /bin/bash /usr/bin/curl /usr/bin/dig /usr/bin/nslookup /usr/bin/host /usr/bin/getent \
    /bin/nc.openbsd /bin/ip /etc/protocols /etc/services
  ln -s nc.openbsd "$T/bin/nc"
  # /bin/sh is bash here, not busybox: Debian's busybox-static runs its own applets before PATH
  # (FEATURE_SH_STANDALONE), so `sh -c "nc ..."` (how the e2e tests call it) would get busybox's nc,
  # which lacks -v and -t. Upstream's alpine busybox looks in PATH first.
  ln -s bash "$T/bin/sh"
  busybox_applets "$T"
  check "$T" bash --version
  check "$T" curl --version
  check "$T" dig -v
  check "$T" getent passwd user-defined-in-image
  check "$T" /bin/sh -c 'nc -h 2>&1 | grep -q OpenBSD && echo "nc: OpenBSD netcat"'
  # shellcheck disable=SC2016 # expanded by the image's shell
  check "$T" sh -c 'for c in nc ip nslookup host dig getent curl bash timeout seq wget; do command -v "$c"; done | tr "\n" " "'
  check "$T" ip -V
  image_layers E2E_JESSIE_DNSUTILS e2e-test-images/jessie-dnsutils 1.7 "{\"Cmd\":[\"sh\"],\"Env\":[\"PATH=$P\"]}" "$T"

  # agnhost: /agnhost (entrypoint; `pause` by default) on the tools layer, with what upstream's
  # Dockerfile adds: /agnhost-2, porter's localhost.crt/.key, /uploads.
  A="$WORK/rootfs/agnhost"
  mkdir -p "$A/uploads"
  install -m 0755 "$X/agnhost" "$A/agnhost"
  ln -s agnhost "$A/agnhost-2"
  install -m 0644 "$KMOD/test/images/agnhost/porter/localhost.crt" "$KMOD/test/images/agnhost/porter/localhost.key" "$A/"
  check "$A" /agnhost --help
  AGN_CFG="\"Entrypoint\":[\"/agnhost\"],\"Cmd\":[\"pause\"],\"ExposedPorts\":{\"80/tcp\":{},\"8080/tcp\":{},\"8081/tcp\":{},\"9376/tcp\":{},\"5000/tcp\":{}},\"Env\":[\"PATH=$P\"]"
  AGN_TAG="$(cat "$KMOD/test/images/agnhost/VERSION")"
  image_layers E2E_AGNHOST e2e-test-images/agnhost "$AGN_TAG" "{$AGN_CFG}" "$T" "$A"
  # AgnhostPrev (2.55): the same agnhost under the older tag (tests switch images between the two).
  image_layers E2E_AGNHOST_PREV e2e-test-images/agnhost 2.55 \
    "{$AGN_CFG,\"Labels\":{\"dev.nodeup.built-from\":\"agnhost $AGN_TAG\"}}" "$T" "$A"
  # kitten and nautilus: agnhost's test-webserver serving a picture and data.json from /.
  for n in kitten nautilus; do
    R="$WORK/rootfs/$n"
    mkdir -p "$R"
    install -m 0644 "$KMOD/test/images/$n/html/$n.jpg" "$KMOD/test/images/$n/html/data.json" "$R/"
    image_layers "E2E_$(echo "$n" | tr '[:lower:]' '[:upper:]')" "e2e-test-images/$n" 1.7 \
      "{\"Entrypoint\":[\"/agnhost\"],\"Cmd\":[\"test-webserver\"],\"Env\":[\"PATH=$P\"]}" "$T" "$A" "$R"
  done

  # The Aggregator test's pod: the aggregated sample API server (upstream: `go install` of
  # k8s.io/sample-apiserver on alpine, /sample-apiserver the entrypoint) and an etcd container that
  # runs /usr/local/bin/etcd. The tags are the ones test/utils/image/manifest.go names; the etcd
  # under the test's tag is the etcd36 fixture's (its version in a label), as agnhost 2.55 is 2.59.
  if [ "$HAVE_SAMPLE" != no ]; then
    manifest_tag() { sed -n "s/^[[:space:]]*configs\[$1\] = Config{[^,]*, \"[^\"]*\", \"\([^\"]*\)\"}.*/\1/p" "$KMOD/test/utils/image/manifest.go"; }
    SAMPLE_TAG="$(manifest_tag APIServer)" ETCD_TEST_TAG="$(manifest_tag Etcd)"
    if [ -z "$SAMPLE_TAG" ] || [ -z "$ETCD_TEST_TAG" ]; then die "no APIServer or Etcd image in $KMOD/test/utils/image/manifest.go"; fi
    [ "v$SAMPLE_TAG" = "${HAVE_SAMPLE/#v0./v1.}" ] || log "NOTE: the test names sample-apiserver $SAMPLE_TAG; the fixture is k8s.io/sample-apiserver $HAVE_SAMPLE"
    R="$WORK/rootfs/sample-apiserver"
    base_rootfs "$R"
    install -m 0755 "${BIN[sample-apiserver]}/sample-apiserver" "$R/sample-apiserver"
    check "$R" /sample-apiserver --help
    image_layers E2E_SAMPLE_APISERVER e2e-test-images/sample-apiserver "$SAMPLE_TAG" \
      "{\"Entrypoint\":[\"/sample-apiserver\"],\"Env\":[\"PATH=$P\"]}" "$R"
    if [ "$ETCD_TEST_TAG" != "$ETCD-0" ]; then
      image_layers ETCD_E2E etcd "$ETCD_TEST_TAG" \
        "{\"Entrypoint\":[\"/usr/local/bin/etcd\"],\"Env\":[\"PATH=/usr/local/bin:/usr/bin:/bin\"],\"Labels\":{\"dev.nodeup.built-from\":\"etcd $ETCD\"}}" "$WORK/rootfs/etcd-$ETCD-0"
    fi
  else
    log "fixture sample-apiserver is not built: no image for the Aggregator conformance test (scripts/conformance/vm.sh builds it)"
  fi

  # nginx (upstream: nginx on alpine serving its default page on :80): Debian's nginx, a shell.
  R="$WORK/rootfs/nginx"
  mkdir -p "$R/etc/nginx" "$R/usr/share/nginx/html" "$R/var/log/nginx" "$R/var/cache/nginx" "$R/run" \
    "$R/var/lib/nginx/body" "$R/var/lib/nginx/proxy" "$R/var/lib/nginx/fastcgi" "$R/var/lib/nginx/uwsgi" "$R/var/lib/nginx/scgi"
  deb_copy "$R" /usr/sbin/nginx /etc/nginx/mime.types
  printf 'root:x:0:0:root:/:/sbin/nologin\nnginx:x:101:101:nginx:/nonexistent:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' >"$R/etc/passwd"
  printf 'root:x:0:\nnginx:x:101:\nnogroup:x:65534:\n' >"$R/etc/group"
  ln -s /dev/stdout "$R/var/log/nginx/access.log"
  ln -s /dev/stderr "$R/var/log/nginx/error.log"
  cat >"$R/etc/nginx/nginx.conf" <<'NGINX'
user nginx;
worker_processes auto;
error_log /dev/stderr notice;
pid /run/nginx.pid;
events {
    worker_connections 1024;
}
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    keepalive_timeout 65;
    server {
        listen 80;
        server_name localhost;
        location / {
            root /usr/share/nginx/html;
            index index.html index.htm;
        }
    }
}
NGINX
  cat >"$R/usr/share/nginx/html/index.html" <<'HTML'
<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>
</body>
</html>
HTML
  # nginx -t opens the logs it is configured with: in a scratch copy, /dev/stdout and /dev/stderr
  # are plain files.
  if [ "$(id -u)" = 0 ]; then
    mkdir -p "$WORK/nginx-check/dev"
    cp -a "$BB/." "$R/." "$WORK/nginx-check/"
    touch "$WORK/nginx-check/dev/stdout" "$WORK/nginx-check/dev/stderr" "$WORK/nginx-check/dev/null"
    check "$WORK/nginx-check" nginx -t
    check "$WORK/nginx-check" nginx -v
    rm -rf "$WORK/nginx-check"
  fi
  NGX_CFG="\"Cmd\":[\"nginx\",\"-g\",\"daemon off;\"],\"ExposedPorts\":{\"80/tcp\":{}},\"StopSignal\":\"SIGQUIT\",\"Env\":[\"PATH=$P\"]"
  image_layers E2E_NGINX e2e-test-images/nginx 1.14-4 "{$NGX_CFG}" "$BB" "$R"
  # NginxNew (1.15-4): the same server under the newer tag (tests switch images between the two).
  image_layers E2E_NGINX_NEW e2e-test-images/nginx 1.15-4 "{$NGX_CFG,\"Labels\":{\"dev.nodeup.built-from\":\"nginx of Debian bookworm\"}}" "$BB" "$R"
else
  log "fixture e2e is not built: no e2e test images (run scripts/fixtures/build.sh e2e, then this script again)"
fi

log "pushing into a fresh registry storage"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
mkdir -p "$WORK/out/storage"
cat >"$WORK/registry.yml" <<YAML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $WORK/out/storage}}
http: {addr: 127.0.0.1:$PORT}
YAML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.2; done
curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null || { cat "$WORK/registry.log" >&2; die "docker-registry did not start"; }
{
  echo "# written by scripts/vm/images.sh: images in storage/ (serve it with docker-registry)"
  while read -r key name tag digest _; do
    skopeo copy --quiet --dest-tls-verify=false "oci:$WORK/oci/$name/$tag:$tag" "docker://127.0.0.1:$PORT/$name:$tag" >&2
    got="$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://127.0.0.1:$PORT/$name:$tag")"
    [ "$got" = "$digest" ] || die "$name:$tag: registry has $got, built $digest"
    echo "IMAGE_$key=$name:$tag@$digest"
  done <"$WORK/images.list"
} >"$WORK/out/images.env"
# name:tag and compressed size (layers shared between images are counted in each)
awk '{printf "%s:%s %s\n", $2, $3, $5}' "$WORK/images.list" >"$WORK/out/images.txt"
if [ "$NEED_DEBIAN" = yes ]; then cp "$WORK/debian-packages.txt" "$WORK/out/"; fi
kill "$REG_PID"; wait "$REG_PID" 2>/dev/null || true; REG_PID=""
rm -rf "$OUT"
mv "$WORK/out" "$OUT"
touch "$OUT/.ok"
ln -sfn "registry-$KEY" "$CACHE/registry-current"
log "done: $OUT ($(du -sh "$OUT" | cut -f1)); kubernetes images: $HAVE_K8S; e2e images: $HAVE_E2E"
printf '%s\n' "$OUT"
