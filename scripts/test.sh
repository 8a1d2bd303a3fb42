#!/usr/bin/env bash
# The test command: sets up what the tests need (scripts/setup.sh), then type-checks, lints,
# builds the binaries, and runs every test layer: unit and golden tests, integration tests against
# real parts, and the VM suites (QEMU guests booted through cloud-init).
# Usage: bash scripts/test.sh [--fast]   (--fast: unit and golden tests only)
# NODEUP_VM_TESTS=0 leaves the VM suites out (they need ~30 min under TCG).
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

projects=(--project unit --project integration)
if [ "${NODEUP_VM_TESTS:-1}" != "0" ]; then
  log "VM fixtures"
  bash scripts/vm/setup.sh
  projects+=(--project vm)
fi
log "vitest ${projects[*]}"
report="$(mktemp)"
status=0
npx vitest run "${projects[@]}" --reporter=default --reporter=json --outputFile.json="$report" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "$report" || true
rm -f "$report"
log "done (exit $status)"
exit "$status"
