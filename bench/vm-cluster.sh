#!/usr/bin/env bash
# Cluster figures from the VM scenarios (issue 7): runs the stock-image and the baked-image cluster
# scenarios (tests/vm/cluster.test.ts, tests/vm/baked.test.ts) and prints, per guest: seconds from
# guest start to nodeup start, nodeup's own wall time (first run: cold from the stock image or from
# the baked one; converged: the second `nodeup apply`), seconds from guest start to node Ready, with
# the accelerator (kvm or tcg) beside each.
#
#   bash bench/vm-cluster.sh [--record] [test files...]   (default: both scenarios)
#
# --record appends the table, the machine and the load to bench/RESULTS.md. Needs what
# scripts/vm/setup.sh makes (base image, asset mirror, registry images, dist/ binary).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
# shellcheck source=../scripts/node-env.sh
source scripts/node-env.sh
RECORD=0
FILES=()
for a in "$@"; do
  case "$a" in
    --record) RECORD=1 ;;
    *) FILES+=("$a") ;;
  esac
done
[ "${#FILES[@]}" -gt 0 ] || FILES=(tests/vm/cluster.test.ts tests/vm/baked.test.ts)
FIG="$(mktemp /tmp/nodeup-vm-figures.XXXXXX)"
trap 'rm -f "$FIG"' EXIT
LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"
T0=$(date +%s)
status=0
NODEUP_VM_FIGURES="$FIG" npx vitest run --project vm "${FILES[@]}" || status=$?
LOAD1="$(cut -d' ' -f1-3 /proc/loadavg)"
TABLE="$(node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const f = (v) => (v === null || v === undefined ? "-" : v.toFixed(1));
  console.log("| scenario | node | image | accel | guest start -> nodeup start (s) | nodeup first run (s) | nodeup converged (s) | guest start -> Ready (s) |");
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const x of lines) console.log(`| ${x.scenario} | ${x.node} | ${x.image} | ${x.accel} | ${f(x.guestStartToNodeupStartS)} | ${f(x.nodeupFirstRunS)} (${x.image === "baked" ? "baked" : "cold"}) | ${f(x.nodeupConvergedS)} | ${f(x.guestStartToReadyS)} |`);
' "$FIG")"
MACHINE="$(nproc) vCPU $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
echo
echo "$TABLE"
echo "machine: $MACHINE; load average before ${LOAD0}, after ${LOAD1}; $(($(date +%s) - T0)) s in all; vitest exit $status"
if [ "$RECORD" = 1 ] && [ -n "$TABLE" ]; then
  {
    echo
    echo "### VM cluster figures, $(date -u +%Y-%m-%d) (\`bash bench/vm-cluster.sh\`)"
    echo
    echo "Machine: $MACHINE; load average before ${LOAD0}, after ${LOAD1}; vitest exit $status."
    echo
    echo "$TABLE"
  } >>bench/RESULTS.md
fi
exit "$status"
