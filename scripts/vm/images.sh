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
#
# Each image is one reproducible layer (sorted, mtime 0, root-owned, gzip -n) with the binaries in
# /usr/local/bin and no shell; image names are repository paths without the registry.k8s.io host.
# Writes <out>/images.env (IMAGE_<NAME>=<repo>:<tag>@<digest>) and prints <out> on stdout.
# Needs: skopeo, docker-registry, go (scripts/fixtures/apt-deps.sh installs the first two).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${NODEUP_CACHE:-$HOME/.cache/nodeup}/vm"
PAUSE_TAG=3.10.1
HELLO_TAG=1.0
T0=$(date +%s)
log() { printf '[images +%4ss] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
for c in skopeo docker-registry go; do
  command -v "$c" >/dev/null || die "$c is missing: run scripts/fixtures/apt-deps.sh (skopeo, docker-registry) / install Go"
done

declare -A VER BIN
while read -r name version state bin; do VER[$name]="$version"; BIN[$name]="$bin"; [ "$state" = built ] && BUILT+=" $name"; done \
  < <("$REPO/scripts/fixtures/build.sh" --list)
case " ${BUILT:-} " in *" etcd36 "*) ;; *) log "building fixture etcd36"; "$REPO/scripts/fixtures/build.sh" etcd36 >&2; BUILT+=" etcd36" ;; esac
HAVE_K8S=no
case " ${BUILT:-} " in *" kubernetes "*) HAVE_K8S=yes ;; esac
ETCD="${VER[etcd36]#v}" K8S="${VER[kubernetes]}"

KEY="$( (echo "etcd $ETCD k8s $K8S have-k8s $HAVE_K8S pause $PAUSE_TAG"; sha256sum "${BASH_SOURCE[0]}" "$HERE/pause/main.go" "$HERE/hello/main.go") | sha256sum | cut -c1-12)"
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
# image NAME TAG ENTRYPOINT_JSON BINARY... -> OCI layout in $WORK/oci/NAME, pushed later
image() {
  local name="$1" tag="$2" entry="$3"
  shift 3
  local d="$WORK/oci/$name" r="$WORK/rootfs/$name"
  mkdir -p "$d/blobs/sha256" "$r/usr/local/bin" "$r/tmp" "$r/etc"
  chmod 1777 "$r/tmp"
  printf 'root:x:0:0:root:/:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' >"$r/etc/passwd"
  for b in "$@"; do [ -x "$b" ] || die "missing binary $b"; install -m 0755 "$b" "$r/usr/local/bin/"; done
  tar -C "$r" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$WORK/layer.tar" .
  local diff; diff="$(sha_hex "$WORK/layer.tar")"
  gzip -n -6 <"$WORK/layer.tar" >"$WORK/layer.tgz"
  local lhex lsize; lhex="$(sha_hex "$WORK/layer.tgz")"; lsize="$(stat -c %s "$WORK/layer.tgz")"
  mv "$WORK/layer.tgz" "$d/blobs/sha256/$lhex"
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s,"Env":["PATH=/usr/local/bin:/usr/bin:/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$entry" "$diff" >"$WORK/config.json"
  local chex csize; chex="$(sha_hex "$WORK/config.json")"; csize="$(stat -c %s "$WORK/config.json")"
  mv "$WORK/config.json" "$d/blobs/sha256/$chex"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$chex" "$csize" "$lhex" "$lsize" >"$WORK/manifest.json"
  local mhex msize; mhex="$(sha_hex "$WORK/manifest.json")"; msize="$(stat -c %s "$WORK/manifest.json")"
  mv "$WORK/manifest.json" "$d/blobs/sha256/$mhex"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$d/oci-layout"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "$mhex" "$msize" "$tag" >"$d/index.json"
  rm -f "$WORK/layer.tar"
  printf '%s %s sha256:%s\n' "$name" "$tag" "$mhex" >>"$WORK/images.list"
  log "  $name:$tag sha256:${mhex:0:12} ($(numfmt --to=iec "$lsize"))"
}

log "images"
image pause "$PAUSE_TAG" '["/usr/local/bin/pause"]' "$WORK/bin/pause"
image nodeup-hello "$HELLO_TAG" '["/usr/local/bin/nodeup-hello"]' "$WORK/bin/nodeup-hello"
E="${BIN[etcd36]}"
image etcd "$ETCD-0" '["/usr/local/bin/etcd"]' "$E/etcd" "$E/etcdctl" "$E/etcdutl"
if [ "$HAVE_K8S" = yes ]; then
  K="${BIN[kubernetes]}"
  for c in kube-apiserver kube-controller-manager kube-scheduler; do image "$c" "$K8S" "[\"/usr/local/bin/$c\"]" "$K/$c"; done
else
  log "fixture kubernetes is not built: no control-plane images (run scripts/fixtures/build.sh kubernetes, then this script again)"
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
  while read -r name tag digest; do
    skopeo copy --quiet --dest-tls-verify=false "oci:$WORK/oci/$name:$tag" "docker://127.0.0.1:$PORT/$name:$tag" >&2
    got="$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://127.0.0.1:$PORT/$name:$tag")"
    [ "$got" = "$digest" ] || die "$name:$tag: registry has $got, built $digest"
    echo "IMAGE_$(echo "$name" | tr 'a-z-' 'A-Z_')=$name:$tag@$digest"
  done <"$WORK/images.list"
} >"$WORK/out/images.env"
kill "$REG_PID"; wait "$REG_PID" 2>/dev/null || true; REG_PID=""
rm -rf "$OUT"
mv "$WORK/out" "$OUT"
touch "$OUT/.ok"
ln -sfn "registry-$KEY" "$CACHE/registry-current"
log "done: $OUT ($(du -sh "$OUT" | cut -f1)); kubernetes images: $HAVE_K8S"
printf '%s\n' "$OUT"
