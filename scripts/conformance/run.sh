#!/usr/bin/env bash
# Runs a selection of Kubernetes' own [Conformance] tests (upstream e2e.test, built by
# `scripts/fixtures/build.sh e2e`) against a cluster, then prints per test passed / failed /
# skipped (with the reason) and a summary table. Runs inside a control-plane guest (kubectl at
# /usr/local/bin/kubectl, /etc/kubernetes/admin.conf) or anywhere with a kubeconfig. Needs only
# bash, awk, sed, grep (no Node, no jq), so it runs on a stock Debian node.
#
#   run.sh --e2e PATH [--kubeconfig FILE] [--selection ci|smoke|full|FILE] [--report-dir DIR]
#          [--kubectl-path PATH] [--skips FILE] [--conformance-list FILE] [--provider NAME]
#          [--timeout DURATION] [--nodes N [--ginkgo PATH]] [--dry-run] [--quiet] [-- EXTRA_E2E_ARGS...]
#   run.sh --print-focus SELECTION       the --ginkgo.focus regex for a selection (to stdout)
#   run.sh --print-skip SELECTION        the --ginkgo.skip regex (its tests listed in the skips file)
#   run.sh --summarize JUNIT [--selection S] [--skips F] [--conformance-list F] [--report-dir DIR]
#                                        prints (and writes) the report of an existing JUnit file
#
# SELECTION: smoke, full (tests/conformance/{smoke,full}.txt) or a file: one full test name a line
# (as in test/conformance/testdata/conformance.yaml's codename), '#' starts a comment.
# The skips file (default: skips.txt beside the selection files) lists tests that cannot run here,
# one `<full test name> | <reason>` a line: they are passed to --ginkgo.skip and reported skipped
# with that reason. The conformance list gives the share of the whole [Conformance] list: a names
# file (default: conformance.txt beside the selection files) or a conformance.yaml (else the e2e
# fixture's testdata/conformance.yaml).
# --nodes N (N > 1) runs the tests on N parallel ginkgo processes through the ginkgo CLI (built with
# e2e.test; default: `ginkgo` beside it), as upstream's conformance image does; specs marked Serial
# still run alone, after the others. Most of a test's time is waiting for pods, so on a slow
# machine 3 processes finish a selection in about half the time.
# Writes to the report dir: junit.xml (ginkgo), e2e.log, results.tsv (status, seconds, name,
# detail), summary.txt. Exit status: 0 all selected tests passed or were skipped with a reason,
# 1 a test failed, was not found in e2e.test, or was not reached (the run stopped early: --timeout,
# an interrupt; reported "not run"), 2 usage errors.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() { printf 'run.sh: %s\n' "$*" >&2; exit 2; }

# The selection files live in tests/conformance/ of the clone, or beside this script when it was
# copied alone with them (into a guest).
sel_dir() {
  if [ -f "$HERE/../../tests/conformance/smoke.txt" ]; then
    (cd "$HERE/../../tests/conformance" && pwd)
  else
    printf '%s\n' "$HERE"
  fi
}

resolve_selection() {
  case "$1" in
    smoke | full | ci) printf '%s/%s.txt\n' "$(sel_dir)" "$1" ;;
    *) [ -f "$1" ] || die "no selection file $1"; printf '%s\n' "$1" ;;
  esac
}

# names FILE — the test names of a selection file (comments, blanks and surrounding space gone).
names() {
  sed -e 's/#.*$//' -e 's/[[:space:]]*$//' -e 's/^[[:space:]]*//' "$1" | grep -v '^$' || true
}

# skip_names FILE — the test names of a skips file (`name | reason`).
skip_names() {
  names "$1" | sed 's/[[:space:]]*|.*$//'
}

# regex_of — reads names on stdin, prints one alternation that matches each name literally
# (RE2 syntax, as ginkgo's --focus/--skip take), or nothing for no names.
regex_of() {
  sed -e 's/[][\\.^$*+?(){}|]/\\&/g' | awk 'NF { out = out (n++ ? "|" : "") $0 } END { if (n) print out }'
}

# focus SELECTION — the focus regex; skip SELECTION SKIPS — the skip regex (selected and listed).
focus() { names "$1" | regex_of; }
skip_regex() {
  [ -f "$2" ] || return 0
  # Only the skips that are in the selection: smaller regex, same effect.
  skip_names "$2" | grep -Fx -f <(names "$1") | regex_of || true
}

# summarize JUNIT SELECTION SKIPS CONFORMANCE_LIST REPORT_DIR LABEL — per-test lines and the table.
summarize() {
  local junit="$1" sel="$2" skips="$3" list="$4" out="$5" label="$6" total=""
  if [ -n "$list" ] && [ -f "$list" ]; then
    case "$list" in
      *.yaml | *.yml) total="$(grep -c '^- testname:' "$list" || true)" ;;
      *) total="$(names "$list" | wc -l)" ;;
    esac
  fi
  [ -f "$junit" ] || { printf 'run.sh: no JUnit report at %s\n' "$junit" >&2; return 1; }
  mkdir -p "$out"
  local skipf="${skips:-/dev/null}"
  [ -f "$skipf" ] || skipf=/dev/null
  # shellcheck disable=SC2016 # an awk program, not shell
  "${AWK:-awk}" -v total="$total" -v label="$label" -v tsv="$out/results.tsv" -v summary="$out/summary.txt" '
    function unesc(s) {
      gsub(/&#34;|&quot;/, "\"", s); gsub(/&#39;|&apos;/, "\047", s)
      gsub(/&lt;/, "<", s); gsub(/&gt;/, ">", s); gsub(/&#xA;|&#10;/, " ", s); gsub(/&#x9;|&#9;/, " ", s)
      gsub(/&amp;/, "\\&", s)
      return s
    }
    function attr(s, name,   v) {
      if (!match(s, "[[:space:]]" name "=\"[^\"]*\"")) return ""
      v = substr(s, RSTART + length(name) + 3, RLENGTH - length(name) - 4)
      return unesc(v)
    }
    function trim(s) { sub(/^[[:space:]]+/, "", s); sub(/[[:space:]]+$/, "", s); return s }
    function firstline(s) { s = trim(s); if (length(s) > 200) s = substr(s, 1, 200) "..."; return s }
    # file 1: the selection (names); file 2: the skips file (name | reason); file 3: the JUnit XML
    FILENAME == ARGV[1] {
      s = $0; sub(/#.*$/, "", s); s = trim(s)
      if (s != "" && !(s in selected)) { selected[s] = 1; order[++n] = s }
      next
    }
    FILENAME == ARGV[2] {
      s = $0; sub(/#.*$/, "", s); s = trim(s)
      if (s == "") next
      i = index(s, "|"); if (!i) next
      skipreason[trim(substr(s, 1, i - 1))] = trim(substr(s, i + 1))
      next
    }
    # One test case per </testcase>; its start tag holds name, status and time. Read as a stream,
    # a case at a time: the report lists every spec of e2e.test (7,000+, most skipped), and
    # gathering it whole into one string is quadratic (minutes in a TCG guest).
    function testcase(p,   i, j, tag, name, st, t, detail) {
      i = index(p, "<testcase ")
      if (!i) return
      p = substr(p, i)
      j = index(p, ">"); tag = substr(p, 1, j)
      name = attr(tag, "name"); st = attr(tag, "status"); t = attr(tag, "time")
      detail = ""
      if (match(p, /<failure[^>]*message="[^"]*"/)) detail = attr(substr(p, RSTART, RLENGTH), "message")
      else if (match(p, /<error[^>]*message="[^"]*"/)) detail = attr(substr(p, RSTART, RLENGTH), "message")
      else if (match(p, /<skipped[^>]*message="[^"]*"/)) detail = attr(substr(p, RSTART, RLENGTH), "message")
      if (st == "") {
        if (index(p, "<failure")) st = "failed"; else if (index(p, "<error")) st = "failed"
        else if (index(p, "<skipped")) st = "skipped"; else st = "passed"
      }
      cases++; cname[cases] = name; cstat[cases] = st; ctime[cases] = t; cdetail[cases] = detail
    }
    # ginkgo names why a suite ended early (its --timeout, an interrupt) in a suite property; then
    # the selected tests it never reached are "not run", not skipped or missing.
    index($0, "\"SpecialSuiteFailureReason\"") && stopped == "" {
      v = attr(substr($0, index($0, "\"SpecialSuiteFailureReason\"")), "value"); if (v ~ /Timeout|Interrupt/) stopped = v
    }
    {
      rec = rec $0 "\n"
      if (!index($0, "</testcase>")) next
      m = split(rec, parts, "</testcase>")
      for (k = 1; k < m; k++) testcase(parts[k])
      rec = parts[m]
    }
    END {
      printf "" > tsv
      for (x = 1; x <= n; x++) {
        s = order[x]; found = 0
        # ginkgo names a case "[It] <full text> [labels]": prefer that exact shape, else a case
        # whose name holds the selected one.
        for (c = 1; c <= cases && !found; c++) {
          if (substr(cname[c], 1, 5 + length(s)) == "[It] " s) {
            rest = substr(cname[c], 6 + length(s))
            if (rest == "" || substr(rest, 1, 2) == " [") found = c
          }
        }
        for (c = 1; c <= cases && !found; c++) if (index(cname[c], s)) found = c
        if (s in skipreason) { st = "skipped"; d = skipreason[s]; t = "" }
        else if (stopped != "" && (!found || (cstat[found] == "skipped" && cdetail[found] ~ /^(skipped)?$/))) {
          st = "notrun"; d = "not reached: the run stopped early (" stopped ")"; t = ""
        }
        else if (!found) { st = "missing"; d = "not in this e2e.test (name changed or not a test of this version)"; t = "" }
        else {
          st = cstat[found]; d = cdetail[found]; t = ctime[found]
          if (st == "skipped" && d == "") d = "skipped by e2e.test"
          if (st == "pending") { st = "skipped"; d = "pending in this e2e.test" }
          if (st != "passed" && st != "skipped") { d = st (d != "" ? ": " d : ""); st = "failed" }
        }
        count[st]++
        tag = (st == "notrun") ? "NOT RUN" : toupper(st)
        secs = (t != "") ? sprintf(" (%.1fs)", t) : ""
        printf "%-8s %s%s%s\n", tag, s, secs, (st == "passed" || d == "") ? "" : " -- " firstline(d)
        printf "%s\t%s\t%s\t%s\n", st, t, s, firstline(d) >> tsv
      }
      sel = n; pass = count["passed"] + 0; fail = count["failed"] + 0; skip = count["skipped"] + 0; miss = count["missing"] + 0
      notrun = count["notrun"] + 0
      ran = pass + fail
      w = length(label); if (w < 9) w = 9
      dash = sprintf("%" (w + 2) "s", ""); gsub(/ /, "-", dash)
      line = "+" dash "+----------+--------+--------+---------+---------+---------+-------------------------------+"
      hdr = sprintf("| %-" w "s | %8s | %6s | %6s | %7s | %7s | %7s | %-29s |", "selection", "selected", "passed", "failed", "skipped", "missing", "not run", "share of [Conformance] passed")
      share = (total > 0) ? sprintf("%d/%d = %.1f%%", pass, total, 100 * pass / total) : "(list not found)"
      row = sprintf("| %-" w "s | %8d | %6d | %6d | %7d | %7d | %7d | %-29s |", label, sel, pass, fail, skip, miss, notrun, share)
      print ""
      print line; print hdr; print line; print row; print line
      if (total > 0) printf "selected %d of the %d [Conformance] tests (%.1f%%); ran %d (%.1f%%)\n", sel, total, 100 * sel / total, ran, 100 * ran / total
      print line > summary; print hdr >> summary; print line >> summary; print row >> summary; print line >> summary
      if (total > 0) printf "selected %d of the %d [Conformance] tests (%.1f%%); ran %d (%.1f%%)\n", sel, total, 100 * sel / total, ran, 100 * ran / total >> summary
      if (stopped != "") { printf "the run stopped early (%s): %d selected test(s) not reached\n", stopped, notrun; printf "the run stopped early (%s): %d selected test(s) not reached\n", stopped, notrun >> summary }
      exit (fail + miss + notrun > 0) ? 1 : 0
    }
  ' "$sel" "$skipf" "$junit"
}

# ---- arguments ----
MODE=run E2E="" KUBECONFIG_ARG="" SELECTION=smoke REPORT_DIR="" KUBECTL="" SKIPS="" LIST="" PROVIDER=local
TIMEOUT=6h DRY=no QUIET=no JUNIT="" NODES=1 GINKGO=""
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --e2e) E2E="$2"; shift 2 ;;
    --kubeconfig) KUBECONFIG_ARG="$2"; shift 2 ;;
    --selection) SELECTION="$2"; shift 2 ;;
    --report-dir) REPORT_DIR="$2"; shift 2 ;;
    --kubectl-path) KUBECTL="$2"; shift 2 ;;
    --skips) SKIPS="$2"; shift 2 ;;
    --conformance-list) LIST="$2"; shift 2 ;;
    --provider) PROVIDER="$2"; shift 2 ;;
    --timeout) TIMEOUT="$2"; shift 2 ;;
    --nodes) NODES="$2"; shift 2 ;;
    --ginkgo) GINKGO="$2"; shift 2 ;;
    --dry-run) DRY=yes; shift ;;
    --quiet) QUIET=yes; shift ;;
    --print-focus) MODE=focus; SELECTION="$2"; shift 2 ;;
    --print-skip) MODE=skip; SELECTION="$2"; shift 2 ;;
    --summarize) MODE=summarize; JUNIT="$2"; shift 2 ;;
    -h | --help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

SEL_FILE="$(resolve_selection "$SELECTION")"
[ -n "$SKIPS" ] || SKIPS="$(sel_dir)/skips.txt"
case "$SELECTION" in smoke | full) LABEL="$SELECTION" ;; *) LABEL="$(basename "$SELECTION" .txt)" ;; esac

case "$MODE" in
  focus) focus "$SEL_FILE"; exit 0 ;;
  skip) skip_regex "$SEL_FILE" "$SKIPS"; exit 0 ;;
  summarize)
    [ -n "$LIST" ] || LIST="$(sel_dir)/conformance.txt"
    summarize "$JUNIT" "$SEL_FILE" "$SKIPS" "$LIST" "${REPORT_DIR:-$(dirname "$JUNIT")}" "$LABEL"
    exit $?
    ;;
esac

[ -n "$E2E" ] || die "--e2e PATH (the e2e.test binary) is required"
[ -x "$E2E" ] || die "$E2E is not an executable e2e.test"
case "$NODES" in '' | *[!0-9]* | 0) die "--nodes takes a number of processes (1 or more), got '$NODES'" ;; esac
if [ "$NODES" -gt 1 ]; then
  [ -n "$GINKGO" ] || GINKGO="$(dirname "$E2E")/ginkgo"
  [ -x "$GINKGO" ] || die "--nodes $NODES needs the ginkgo CLI: $GINKGO is not executable (pass --ginkgo PATH; scripts/fixtures/build.sh e2e builds it)"
fi
if [ -z "$KUBECONFIG_ARG" ]; then
  if [ -n "${KUBECONFIG:-}" ]; then KUBECONFIG_ARG="$KUBECONFIG"; elif [ -f /etc/kubernetes/admin.conf ]; then KUBECONFIG_ARG=/etc/kubernetes/admin.conf; fi
fi
[ "$DRY" = yes ] || [ -f "$KUBECONFIG_ARG" ] || die "--kubeconfig FILE is required (no \$KUBECONFIG, no /etc/kubernetes/admin.conf)"
if [ -z "$KUBECTL" ]; then KUBECTL="$(command -v kubectl || true)"; fi
[ "$DRY" = yes ] || [ -x "$KUBECTL" ] || die "kubectl not found: pass --kubectl-path"
if [ -z "$LIST" ]; then
  LIST="$(sel_dir)/conformance.txt"
  [ -f "$LIST" ] || LIST="$(cd "$(dirname "$E2E")" && pwd)/../testdata/conformance.yaml"
fi
[ -n "$REPORT_DIR" ] || REPORT_DIR="./conformance-$LABEL-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$REPORT_DIR"
REPORT_DIR="$(cd "$REPORT_DIR" && pwd)"

FOCUS="$(focus "$SEL_FILE")"
[ -n "$FOCUS" ] || die "the selection $SEL_FILE names no test"
SKIP="$(skip_regex "$SEL_FILE" "$SKIPS")"
N="$(names "$SEL_FILE" | wc -l)"
NS=0
if [ -f "$SKIPS" ]; then NS="$(skip_names "$SKIPS" | grep -Fxc -f <(names "$SEL_FILE") || true)"; fi
printf 'conformance: %s selected from %s (%s listed as unrunnable here), e2e.test %s\n' "$N" "$SEL_FILE" "$NS" \
  "$("$E2E" --version 2>/dev/null | head -1 || echo '?')"
printf 'conformance: report in %s (%s ginkgo process(es))\n' "$REPORT_DIR" "$NODES"

# ginkgo's own flags: --ginkgo.<flag> to e2e.test alone, --<flag> to the ginkgo CLI (parallel).
G=(
  "focus=$FOCUS"
  "junit-report=$REPORT_DIR/junit.xml"
  "timeout=$TIMEOUT"
  "no-color"
)
[ -z "$SKIP" ] || G+=("skip=$SKIP")
[ "$DRY" = no ] || G+=("dry-run")
ARGS=("--provider=$PROVIDER" "--report-dir=$REPORT_DIR")
[ -z "$KUBECONFIG_ARG" ] || ARGS+=("--kubeconfig=$KUBECONFIG_ARG")
[ -z "$KUBECTL" ] || ARGS+=("--kubectl-path=$KUBECTL")
ARGS+=("${EXTRA[@]+"${EXTRA[@]}"}")
if [ "$NODES" -gt 1 ]; then
  CMD=("$GINKGO" "--nodes=$NODES" "${G[@]/#/--}" "$E2E" -- "${ARGS[@]}")
else
  CMD=("$E2E" "${G[@]/#/--ginkgo.}" "${ARGS[@]}")
fi

T0=$(date +%s)
rc=0
if [ "$QUIET" = yes ]; then
  "${CMD[@]}" >"$REPORT_DIR/e2e.log" 2>&1 || rc=$?
else
  "${CMD[@]}" 2>&1 | tee "$REPORT_DIR/e2e.log" || rc=$?
fi
printf '\nconformance: e2e.test exited %s after %ss\n\n' "$rc" "$(($(date +%s) - T0))"
summarize "$REPORT_DIR/junit.xml" "$SEL_FILE" "$SKIPS" "$LIST" "$REPORT_DIR" "$LABEL"
