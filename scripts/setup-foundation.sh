#!/usr/bin/env bash
# Installs what the foundation's tests, build smoke test and benchmark need. Idempotent: a second
# run only checks. Run as root (CI runs it before the integration tests).
#   - Debian packages: qemu-user-static + arm64 cross libraries (runs the arm64 binary on amd64),
#     hyperfine and GNU time (bench/foundation.sh), xz-utils (the build), openssl (TLS test certs);
#   - MinIO, built from the Go module proxy by scripts/fixtures/build.sh (cached under
#     ${NODEUP_CACHE:-~/.cache/nodeup}/fixtures/minio-<version>/), for
#     tests/integration/statestore-s3.test.ts;
#   - Node 24 (scripts/node-env.sh), whose npm-registry copy the binaries embed.
# The pkg SEA cache (~/.pkg-cache/sea) is seeded by `npm run build` itself.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
log() { printf '[setup-foundation +%4ss] %s\n' "$SECONDS" "$*" >&2; }

PACKAGES=(qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross hyperfine time xz-utils openssl)
missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii'; then missing+=("$p"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages (${missing[*]}) and not root: run this script as root"
    exit 1
  fi
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  lists_age=999999
  if [ -d /var/lib/apt/lists ] && compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then
    newest="$(stat -c %Y /var/lib/apt/lists/*_Packages | sort -n | tail -1)"
    lists_age=$(($(date +%s) - newest))
  fi
  if [ "$lists_age" -gt 21600 ]; then
    log "apt-get update (package lists are ${lists_age}s old)"
    apt-get update -qq
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present: ${PACKAGES[*]}"
fi

log "MinIO (scripts/fixtures/build.sh minio; cached, takes a lock)"
"$REPO/scripts/fixtures/build.sh" minio
log "MinIO binary: $("$REPO/scripts/fixtures/build.sh" --bin minio)/minio"

# shellcheck source=scripts/node-env.sh
. "$REPO/scripts/node-env.sh"
log "Node for the dev toolchain: $(node --version) ($NODEUP_NODE_BIN)"
log "done"
