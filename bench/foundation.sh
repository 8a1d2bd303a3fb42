#!/usr/bin/env bash
# The foundation benchmark: binary size (raw and xz), `nodeup version` start time, converged
# `apply` wall time and peak RSS on the example config (`nodeup example`) against a temp root.
# Measures dist/nodeup-linux-amd64 (run `npm run build` first). Needs hyperfine and GNU time
# (scripts/setup-foundation.sh installs them; without hyperfine a plain loop is used).
#   bench/foundation.sh [--runs N] [--record] [--binary PATH] [--keep]
# --record appends a row to bench/RESULTS.md. Goals: converged apply < 300 ms, peak RSS < 150 MB,
# xz binary < 40 MB.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/node-env.sh
. "$REPO/scripts/node-env.sh"
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time (GNU time) is missing: run scripts/setup-foundation.sh" >&2; exit 1; }
exec node "$REPO/bench/foundation.ts" "$@"
