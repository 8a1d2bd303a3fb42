# shellcheck shell=bash
# Phase timings for the test command (sourced). Every phase appends "name<TAB>seconds<TAB>status"
# to $NODEUP_TIMINGS (set by scripts/test.sh; unset: timings are not recorded), so a slow run says
# where its time went: scripts/test.sh prints the table at its end.
#   timed NAME CMD...   runs CMD, records NAME with its wall time and exit status, returns that status
timed() {
  local name="$1" t0 rc=0
  shift
  t0=$(date +%s)
  "$@" || rc=$?
  if [ -n "${NODEUP_TIMINGS:-}" ]; then
    printf '%s\t%s\t%s\n' "$name" "$(($(date +%s) - t0))" "$([ "$rc" -eq 0 ] && echo ok || echo "exit $rc")" >>"$NODEUP_TIMINGS"
  fi
  return "$rc"
}
