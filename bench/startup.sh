#!/usr/bin/env bash
# The start-up benchmark (issue 17): `nodeup version`, a converged apply, a whole-graph plan and the
# apply's peak RSS, interleaved with bare `node -e 0` of the embedded Node, as ratios. Measures
# dist/nodeup-linux-amd64 (run `npm run build` first). Needs GNU time (/usr/bin/time).
#   bench/startup.sh [--rounds N] [--binary PATH] [--record] [--label TEXT]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/node-env.sh
. "$REPO/scripts/node-env.sh"
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time (GNU time) is missing: run scripts/setup-foundation.sh" >&2; exit 1; }
exec node "$REPO/bench/startup.ts" "$@"
