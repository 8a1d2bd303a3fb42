#!/usr/bin/env bash
# Where each conformance test stands across runs: every run of tests/vm/conformance.test.ts and of
# the cluster scenario's selection keeps a copy of its report under <reports>/history/<UTC stamp>-<label>/
# (tests/vm/kube-checks.ts). This reads them oldest first and prints the runs, then each test's
# last results, newest first, and a summary against a selection: how many passed their last two
# runs in a row (issue 18's bar), passed only their last, failed their last, or never ran.
#   bash scripts/conformance/history.sh [--reports DIR] [--selection smoke|full|FILE] [--all]
# --reports: default $NODEUP_CONFORMANCE_REPORTS or ~/.cache/nodeup/reports. --selection: default
# full (tests/conformance/full.txt). --all also lists every test of the selection that never ran.
# Needs bash, find, sort and awk only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
reports="${NODEUP_CONFORMANCE_REPORTS:-$HOME/.cache/nodeup/reports}"
selection=full all=no
while [ $# -gt 0 ]; do
  case "$1" in
    --reports) reports="$2"; shift 2 ;;
    --selection) selection="$2"; shift 2 ;;
    --all) all=yes; shift ;;
    -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "history.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$selection" in smoke | full | ci) selection="$here/../../tests/conformance/$selection.txt" ;; esac
[ -f "$selection" ] || { echo "history.sh: no selection file $selection" >&2; exit 2; }
runs=()
if [ -d "$reports/history" ]; then
  while IFS= read -r f; do runs+=("$f"); done < <(find "$reports/history" -mindepth 2 -maxdepth 2 -name results.tsv | sort)
fi
[ ${#runs[@]} -gt 0 ] || { echo "history.sh: no runs under $reports/history (each conformance run keeps its report there)"; exit 0; }

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
