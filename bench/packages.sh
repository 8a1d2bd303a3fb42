#!/usr/bin/env bash
# Benchmark: wall time of nodeup's package phase on a Debian bookworm root, cold and converged.
# Usage: bench/packages.sh [ROUNDS]   (root; builds or reuses the cached root first)
set -euo pipefail
cd "$(dirname "$0")/.."
fixture="$(scripts/fixtures/debian-root.sh)"
# shellcheck disable=SC1091
source scripts/node-env.sh >/dev/null
nice -n 0 node bench/packages.ts "$fixture" "${1:-3}"
