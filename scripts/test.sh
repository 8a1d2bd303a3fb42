#!/usr/bin/env bash
# The test command: sets up what the tests need (scripts/setup.sh), then type-checks, lints,
# builds the binaries, and runs every test layer: unit and golden tests, integration tests against
# real parts, and the VM suites (QEMU guests booted through cloud-init).
# Usage: bash scripts/test.sh [--fast]   (--fast: unit and golden tests only)
# NODEUP_VM_TESTS=0 leaves the VM suites out (~40 min under TCG with caches warm). The three-control-
# plane scenario (tests/vm/ha.test.ts, ~55 to 70 min more under TCG) runs only with NODEUP_VM_HA=1 or through
# `npm run test:vm`; the run says so when it leaves it out.
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
log() { printf '\n[test +%4ss] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }

# shellcheck disable=SC1091
source scripts/node-env.sh
if [ "${1:-}" = "--fast" ]; then
  bash scripts/setup.sh --no-fixtures
  exec npx vitest run --project unit
fi
bash scripts/setup.sh

log "typecheck"
npx tsc -p .
log "lint"
npx eslint .
log "build"
npm run build --silent
./dist/nodeup-linux-amd64 version

# The VM suites run after the others, never beside them: QEMU guests under TCG take both cores,
# and real etcd or containerd starved of CPU miss their timeouts.
status=0
reports=()
run_layer() {
  local report
  report="$(mktemp)"
  reports+=("$report")
  log "vitest $*"
  npx vitest run "$@" --reporter=default --reporter=json --outputFile.json="$report" || status=1
}
run_layer --project unit --project integration
if [ "${NODEUP_VM_TESTS:-1}" != "0" ]; then
  log "VM fixtures"
  vm_args=(--project vm)
  if [ "${NODEUP_VM_HA:-0}" != "1" ]; then
    vm_args+=(--exclude tests/vm/ha.test.ts)
    log "NOT RUN HERE: tests/vm/ha.test.ts (three control planes and two replacements, ~55 to 70 min more under TCG on 2 cores, where it passed in 55 min); run it with NODEUP_VM_HA=1 bash scripts/test.sh or npm run test:vm"
  fi
  if bash scripts/vm/setup.sh; then run_layer "${vm_args[@]}"; else status=1; fi
fi
node -e '
  let passed = 0, failed = 0, skipped = 0;
  for (const f of process.argv.slice(1)) {
    try {
      const r = JSON.parse(require("fs").readFileSync(f, "utf8"));
      passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
    } catch { failed += 1; console.error(`no test report in ${f}: the layer did not run`); }
  }
  console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "${reports[@]}" || true
rm -f "${reports[@]}"
log "done (exit $status)"
exit "$status"
