#!/usr/bin/env bash
# Where each conformance test stands across runs: every run of tests/vm/conformance.test.ts and of
# the cluster scenario's selection keeps a copy of its report under <reports>/history/<UTC stamp>-<label>/
# (tests/vm/kube-checks.ts), and runs worth keeping are committed, results.tsv and summary.txt,
# under tests/conformance/results/<UTC stamp>-<label>/ (`--keep` copies them there), so the record
# outlives a machine's caches. This reads both, oldest first (a run in both counts once), and prints
# the runs, then each test's results, and a summary against a selection: how many passed their last
# two runs in a row (issue 18's bar), passed only their last, failed their last, or never ran.
#   bash scripts/conformance/history.sh [--reports DIR] [--results DIR] [--selection smoke|full|FILE] [--all] [--keep]
# --reports: default $NODEUP_CONFORMANCE_REPORTS or ~/.cache/nodeup/reports. --results: the committed
# runs, default tests/conformance/results. --selection: default full (tests/conformance/full.txt).
# --all also lists every test of the selection that never ran. --keep first copies the runs under
# <reports>/history that --results lacks into it (then commit them).
# Needs bash, find, sort and awk only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
reports="${NODEUP_CONFORMANCE_REPORTS:-$HOME/.cache/nodeup/reports}"
results="$here/../../tests/conformance/results"
selection=full all=no keep=no
while [ $# -gt 0 ]; do
  case "$1" in
    --reports) reports="$2"; shift 2 ;;
    --results) results="$2"; shift 2 ;;
    --selection) selection="$2"; shift 2 ;;
    --all) all=yes; shift ;;
    --keep) keep=yes; shift ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "history.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$selection" in smoke | full | ci) selection="$here/../../tests/conformance/$selection.txt" ;; esac
[ -f "$selection" ] || { echo "history.sh: no selection file $selection" >&2; exit 2; }
if [ "$keep" = yes ] && [ -d "$reports/history" ]; then
  for d in "$reports"/history/*/; do
    run="$(basename "$d")"
    if [ ! -f "$d/results.tsv" ] || [ -d "$results/$run" ]; then continue; fi
    mkdir -p "$results/$run"
    cp "$d/results.tsv" "$results/$run/"
    [ ! -f "$d/summary.txt" ] || cp "$d/summary.txt" "$results/$run/"
    echo "history.sh: kept $run in $results (commit it)"
  done
fi
# Each run once, by its name (<UTC stamp>-<label>: sorting the names sorts the runs by time); the
# committed copy wins over the cache's.
runs=()
declare -A byName=()
for root in "$reports/history" "$results"; do
  [ -d "$root" ] || continue
  while IFS= read -r f; do byName["$(basename "$(dirname "$f")")"]="$f"; done < <(find "$root" -mindepth 2 -maxdepth 2 -name results.tsv)
done
if [ ${#byName[@]} -gt 0 ]; then
  while IFS= read -r name; do runs+=("${byName[$name]}"); done < <(printf '%s\n' "${!byName[@]}" | sort)
fi
[ ${#runs[@]} -gt 0 ] || { echo "history.sh: no runs under $reports/history or $results (each conformance run keeps its report in the first)"; exit 0; }

awk -F'\t' -v all="$all" '
  # The selection first: its names, comments and blank lines dropped.
  FNR == 1 { file++ }
  file == 1 { sub(/#.*$/, ""); gsub(/^[ \t]+|[ \t]+$/, ""); if ($0 != "") { sel[$0] = 1; nsel++ } next }
  FNR == 1 {
    run = FILENAME; sub(/\/results\.tsv$/, "", run); sub(/^.*\//, "", run)
    order[++nruns] = run
  }
  NF >= 3 {
    st = $1; name = $3
    counts[run, st]++; total[run]++
    seen[name] = seen[name] ? seen[name] " " st : st
    last[name] = st; lastRun[name] = run; detail[name] = $4
    if (!(name in first)) { first[name] = 1; names[++nnames] = name }
  }
  END {
    print "runs, oldest first:"
    for (i = 1; i <= nruns; i++) {
      r = order[i]
      printf "  %-60s %4d tests: %d passed, %d failed, %d skipped\n", r, total[r], counts[r, "passed"], counts[r, "failed"], counts[r, "skipped"]
    }
    print ""
    print "each test, its results oldest first:"
    twice = once = failedLast = skippedLast = 0
    for (i = 1; i <= nnames; i++) {
      n = names[i]; k = split(seen[n], s, " ")
      if (k >= 2 && s[k] == "passed" && s[k - 1] == "passed") { v = "PASSED TWICE"; if (n in sel) twice++ }
      else if (s[k] == "passed") { v = "PASSED ONCE"; if (n in sel) once++ }
      else if (s[k] == "skipped") { v = "SKIPPED"; if (n in sel) skippedLast++ }
      else { v = "FAILED LAST"; if (n in sel) failedLast++ }
      printf "  %-12s [%s] %s%s\n", v, seen[n], n, (v == "FAILED LAST" && detail[n] != "" ? " -- " substr(detail[n], 1, 160) : "")
    }
    never = 0
    for (n in sel) if (!(n in first)) { never++; if (all == "yes") missing[never] = n }
    if (all == "yes" && never > 0) {
      print ""; print "never run:"
      for (i = 1; i <= never; i++) print "  " missing[i]
    }
    print ""
    printf "of the %d selected: %d passed their last two runs in a row, %d passed only their last, %d failed their last, %d skipped, %d never ran\n", nsel, twice, once, failedLast, skippedLast, never
  }
' "$selection" "${runs[@]}"
