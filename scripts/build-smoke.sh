#!/usr/bin/env bash
# Quick smoke test of the binaries `npm run build` made (run it right after the build):
#   - checksums (.sha256 of each binary and its .xz) verify, and the .xz unpacks to the same bytes;
#   - the amd64 binary runs with an empty environment and no Node on PATH: version (embedded Node
#     and commit), --help, schema, example --dir, and plan against that file:// state store;
#   - the arm64 binary runs `version` (and `schema`) under qemu-aarch64-static with the cross libs;
#   - each binary's V8 takes its trained code cache (`NODEUP_SEA_CACHE_REPORT=1`, docs/build.md);
#   - each binary's vendor chunks (undici, tar, the EC2 client, ssh2) load (`NODEUP_SEA_VENDOR_CHECK=1`).
# Needs: scripts/setup-foundation.sh (qemu-user-static, libc6-arm64-cross, ...).
# Usage: scripts/build-smoke.sh [DIST_DIR]   (default: dist)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIST="$(cd "${1:-$REPO/dist}" && pwd)"
NODE_VERSION="$(sed -n 's/.*NODEUP_NODE_VERSION:-\([0-9.]*\)}.*/\1/p' "$REPO/scripts/node-env.sh" | head -1)"
WORK="$(mktemp -d /tmp/nodeup-smoke.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
pass=0
log() { printf '[smoke +%3ss] %s\n' "$SECONDS" "$*" >&2; }
ok() { pass=$((pass + 1)); log "ok: $*"; }
die() { log "FAIL: $*"; exit 1; }
# An empty environment: no Node anywhere on PATH, nothing inherited.
bare() { env -i PATH=/nonexistent HOME="$WORK" "$@"; }

for arch in amd64 arm64; do
  f="$DIST/nodeup-linux-$arch"
  [ -f "$f" ] || die "$f is missing: run npm run build"
  (cd "$DIST" && sha256sum --quiet -c "nodeup-linux-$arch.sha256") || die "$f does not match its .sha256"
  if [ -f "$f.xz" ]; then
    (cd "$DIST" && sha256sum --quiet -c "nodeup-linux-$arch.xz.sha256") || die "$f.xz does not match its .sha256"
    [ "$(xz -dc "$f.xz" | sha256sum | cut -d' ' -f1)" = "$(cut -d' ' -f1 "$f.sha256")" ] || die "$f.xz does not unpack to $f"
    ok "nodeup-linux-$arch: .sha256, .xz and .xz.sha256 agree"
  else
    log "note: no $f.xz (built with --no-xz?)"
    ok "nodeup-linux-$arch: .sha256 agrees"
  fi
done

BIN="$DIST/nodeup-linux-amd64"
out="$(bare "$BIN" version)"
case "$out" in
  *"node v$NODE_VERSION"*"linux/x64"*) ok "amd64 version: $out" ;;
  *) die "amd64 version printed: $out" ;;
esac
[ "$(bare "$BIN" version --json | tr -d '\n' | grep -c '"commit":"')" = 1 ] || die "version --json has no commit"
bare "$BIN" --help | grep -q '^Commands:' || die "--help printed no command list"
ok "amd64 --help"
# --help runs the bundle (version is answered by the entry alone): V8 must take the trained cache.
said="$(env -i PATH=/nonexistent HOME="$WORK" NODEUP_SEA_CACHE_REPORT=1 "$BIN" --help 2>&1 >/dev/null)"
[ "$said" = "nodeup code cache: accepted" ] || die "amd64 code cache: $said"
ok "amd64 $said"
# vendor_check LABEL CMD... — every vendor chunk loads in the binary and exports something.
vendor_check() {
  local label="$1" said n
  shift
  said="$(env -i PATH=/nonexistent HOME="$WORK" NODEUP_SEA_VENDOR_CHECK=1 "$@" 2>&1 >/dev/null)"
  n="$(printf '%s\n' "$said" | grep -c '^nodeup vendor [^ ]*: [1-9][0-9]* exports$' || true)"
  [ "$n" = 4 ] || die "$label vendor chunks: $said"
  ok "$label vendor chunks load: $(printf '%s\n' "$said" | sed 's/^nodeup vendor //' | tr '\n' ' ')"
}
vendor_check amd64 "$BIN"
bare "$BIN" schema | grep -q '"boot-config.schema.json"' || die "schema printed no boot config schema"
ok "amd64 schema"
bare "$BIN" example --dir "$WORK/ex" >/dev/null || die "example --dir failed"
[ -f "$WORK/ex/boot-nodes.yaml" ] || die "example wrote no boot-nodes.yaml"
grep -q '^stateStore: file://' "$WORK/ex/boot-nodes.yaml" || die "example boot config has no file:// state store"
ok "amd64 example --dir (file:// state store)"
mkdir -p "$WORK/root/etc"
printf 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n' >"$WORK/root/etc/os-release"
set +e
plan="$(bare "$BIN" plan --config "$WORK/ex/boot-control-plane.yaml" --root "$WORK/root" --only node-files --log-format json 2>"$WORK/plan.err")"
rc=$?
set -e
[ "$rc" = 0 ] || die "plan exited $rc: $(tail -5 "$WORK/plan.err")"
echo "$plan" | grep -q '^+ file:/etc/nodeup/motd' || die "plan does not create /etc/nodeup/motd: $plan"
[ -z "$(find "$WORK/root" -type f ! -path '*/etc/os-release')" ] || die "plan wrote files under the root"
ok "amd64 plan against the file:// store ($(echo "$plan" | tail -1))"
bad="$(bare "$BIN" plan --config "$WORK/nope.yaml" --root "$WORK/root" 2>&1 >/dev/null || true)"
echo "$bad" | grep -q "cannot read boot config $WORK/nope.yaml: no such file" || die "missing boot config error: $bad"
ok "amd64 names a missing boot config"

QEMU="$(command -v qemu-aarch64-static || true)"
if [ -z "$QEMU" ] || [ ! -d /usr/aarch64-linux-gnu ]; then die "qemu-aarch64-static or /usr/aarch64-linux-gnu missing: run scripts/setup-foundation.sh"; fi
out="$(bare "$QEMU" -L /usr/aarch64-linux-gnu "$DIST/nodeup-linux-arm64" version)"
case "$out" in
  *"node v$NODE_VERSION"*"linux/arm64"*) ok "arm64 version under qemu: $out" ;;
  *) die "arm64 version printed: $out" ;;
esac
bare "$QEMU" -L /usr/aarch64-linux-gnu "$DIST/nodeup-linux-arm64" schema | grep -q '"node-config.schema.json"' || die "arm64 schema failed"
ok "arm64 schema under qemu"
said="$(env -i PATH=/nonexistent HOME="$WORK" NODEUP_SEA_CACHE_REPORT=1 "$QEMU" -L /usr/aarch64-linux-gnu "$DIST/nodeup-linux-arm64" --help 2>&1 >/dev/null)"
[ "$said" = "nodeup code cache: accepted" ] || die "arm64 code cache under qemu: $said"
ok "arm64 $said under qemu"
vendor_check "arm64 (qemu)" "$QEMU" -L /usr/aarch64-linux-gnu "$DIST/nodeup-linux-arm64"
log "PASS: $pass checks"
