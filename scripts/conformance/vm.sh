#!/usr/bin/env bash
# One command for a conformance run on a nodeup cluster in QEMU: one control plane and two workers
# from the stock image through cloud-init (tests/vm/conformance.test.ts), then upstream e2e.test
# on a [Conformance] selection (on this machine or inside the control plane). Builds what is missing first
# (scripts/setup.sh: the e2e fixture ~30 min cold; the sample-apiserver fixture; scripts/vm/setup.sh:
# base image, assets, images).
#   bash scripts/conformance/vm.sh [--selection smoke|full|FILE] [--sig NAME[,NAME]] [--timeout-min N] [--nodes N] [--runner host|guest] [--no-setup]
# --nodes N runs the tests on N parallel ginkgo processes (default 3: most of a test's time is
# waiting for pods); specs marked Serial run alone after the others.
# --sig NAME[,NAME...] keeps the selection's tests of those SIGs (sig-network, sig-node, ...): the
# full selection takes hours under TCG, so it runs a part at a time (report: conformance-<sel>-<sigs>).
# --runner host (default) runs e2e.test and kubectl natively on this machine against the control
# plane's API server (launched with --forward 6443); --runner guest runs them inside the control plane.
# The report (junit.xml, results.tsv, summary.txt, e2e.log) lands in
# $NODEUP_CONFORMANCE_REPORTS/conformance-<selection> (default ~/.cache/nodeup/reports).
set -euo pipefail
cd "$(dirname "$0")/../.."
selection=full timeout=600 nodes=3 setup=yes runner=host sig=
while [ $# -gt 0 ]; do
  case "$1" in
    --selection) selection="$2"; shift 2 ;;
    --timeout-min) timeout="$2"; shift 2 ;;
    --nodes) nodes="$2"; shift 2 ;;
    --sig) sig="$2"; shift 2 ;;
    --runner) runner="$2"; shift 2; case "$runner" in host | guest) ;; *) echo "vm.sh: --runner is host or guest, not $runner" >&2; exit 2 ;; esac ;;
    --no-setup) setup=no; shift ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "vm.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$selection" in smoke | full) ;; *) [ -f "$selection" ] || { echo "vm.sh: no selection file $selection" >&2; exit 2; }; selection="$(cd "$(dirname "$selection")" && pwd)/$(basename "$selection")" ;; esac
if [ -n "$sig" ]; then
  IFS=, read -ra sigs <<<"$sig"
  patterns=()
  for s in "${sigs[@]}"; do
    case "$s" in sig-[a-z-]*) patterns+=(-e "[$s]") ;; *) echo "vm.sh: --sig takes SIG names such as sig-network or sig-cli,sig-storage, not $s" >&2; exit 2 ;; esac
  done
  case "$selection" in smoke | full) src="tests/conformance/$selection.txt" label="$selection" ;; *) src="$selection" label="$(basename "$selection" .txt)" ;; esac
  part="${NODEUP_CONFORMANCE_REPORTS:-$HOME/.cache/nodeup/reports}/selections/$label-${sig//,/+}.txt"
  mkdir -p "$(dirname "$part")"
  { echo "# $sig's tests of $src"; grep -F "${patterns[@]}" "$src" || true; } >"$part"
  count="$(grep -c -v '^#' "$part" || true)"
  [ "$count" -gt 0 ] || { echo "vm.sh: $src has no test of $sig" >&2; exit 2; }
  echo "vm.sh: $count tests of $sig from $src"
  selection="$part"
fi
# shellcheck disable=SC1091
source scripts/node-env.sh
if [ "$setup" = yes ]; then
  bash scripts/setup.sh
  # sample-apiserver: the Aggregator test's image (scripts/vm/images.sh adds it once it is built).
  bash scripts/fixtures/build.sh e2e sample-apiserver
  npm run build --silent
  bash scripts/vm/setup.sh
fi
NODEUP_VM_CONFORMANCE=1 NODEUP_CONFORMANCE_SELECTION="$selection" NODEUP_CONFORMANCE_TIMEOUT_MIN="$timeout" NODEUP_VM_CONFORMANCE_NODES="$nodes" NODEUP_CONFORMANCE_RUNNER="$runner" \
  exec npx vitest run --project vm tests/vm/conformance.test.ts
