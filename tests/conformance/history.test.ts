// scripts/conformance/history.sh: each test's results across the kept runs, oldest first, and the
// summary against a selection (issue 18's bar: every selected test passing twice in a row).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const script = join(import.meta.dirname, '../../scripts/conformance/history.sh');
const tmp = mkdtempSync(join(tmpdir(), 'nodeup-history-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const tsv = (rows: [string, string, string?][]): string => rows.map(([status, name, detail]) => `${status}\t12.5\t${name}\t${detail ?? ''}`).join('\n') + '\n';
function keep(reports: string, run: string, rows: [string, string, string?][]): void {
  mkdirSync(join(reports, 'history', run), { recursive: true });
  writeFileSync(join(reports, 'history', run, 'results.tsv'), tsv(rows));
}
const run = (args: string[]) => spawnSync('bash', [script, '--results', join(tmp, 'no-results'), ...args], { encoding: 'utf8' });

describe('conformance history', () => {
  it('orders runs by their stamp, judges each test on its last two results, and sums up against the selection', () => {
    const reports = join(tmp, 'r1');
    const selection = join(tmp, 'sel.txt');
    writeFileSync(selection, '# four tests\n[sig-a] one [Conformance]\n[sig-a] two [Conformance]\n[sig-b] three (x) [Conformance]\n[sig-b] four [Conformance]\n\n');
    // Written newest first on purpose: the stamp decides the order, not the file system.
    keep(reports, '20261208T090000Z-conformance-full-sig-a', [['passed', '[sig-a] one [Conformance]'], ['failed', '[sig-a] two [Conformance]', 'failed: timed out waiting']]);
    keep(reports, '20261207T090000Z-conformance-full-sig-a', [['passed', '[sig-a] one [Conformance]'], ['passed', '[sig-a] two [Conformance]']]);
    keep(reports, '20261207T100000Z-conformance-ci', [['passed', '[sig-b] three (x) [Conformance]'], ['passed', '[sig-z] not selected [Conformance]']]);
    const r = run(['--reports', reports, '--selection', selection, '--all']);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.filter((l) => /^ {2}2026/.test(l)).map((l) => l.trim().split(/\s+/)[0])).toEqual([
      '20261207T090000Z-conformance-full-sig-a',
      '20261207T100000Z-conformance-ci',
      '20261208T090000Z-conformance-full-sig-a',
    ]);
    expect(r.stdout).toMatch(/PASSED TWICE \[passed passed\] \[sig-a\] one \[Conformance\]\n/);
    expect(r.stdout).toMatch(/FAILED LAST {2}\[passed failed\] \[sig-a\] two \[Conformance\] -- failed: timed out waiting\n/);
    expect(r.stdout).toMatch(/PASSED ONCE {2}\[passed\] \[sig-b\] three \(x\) \[Conformance\]\n/);
    expect(r.stdout).toMatch(/never run:\n {2}\[sig-b\] four \[Conformance\]\n/);
    expect(r.stdout).toContain('of the 4 selected: 1 passed their last two runs in a row, 1 passed only their last, 1 failed their last, 0 skipped, 1 never ran\n');
  });

  it('says so when there is no run, and refuses an unknown selection', () => {
    const none = run(['--reports', join(tmp, 'empty')]);
    expect(none.status).toBe(0);
    expect(none.stdout).toMatch(/no runs under .*empty\/history or .*no-results/);
    const bad = run(['--reports', tmp, '--selection', join(tmp, 'missing.txt')]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('no selection file');
  });

  it('keeps runs in the committed results, reads both once each, and the record outlives the cache', () => {
    const reports = join(tmp, 'r2');
    const results = join(tmp, 'committed');
    const selection = join(tmp, 'sel2.txt');
    writeFileSync(selection, '[sig-a] one [Conformance]\n');
    keep(reports, '20261201T090000Z-conformance-full-sig-a', [['passed', '[sig-a] one [Conformance]']]);
    keep(reports, '20261202T090000Z-conformance-full-sig-a', [['passed', '[sig-a] one [Conformance]']]);
    const kept = spawnSync('bash', [script, '--reports', reports, '--results', results, '--selection', selection, '--keep'], { encoding: 'utf8' });
    expect(kept.status, kept.stderr).toBe(0);
    expect(kept.stdout).toContain('kept 20261201T090000Z-conformance-full-sig-a');
    // Both copies of each run are read once: two runs, not four.
    expect(kept.stdout).toContain('PASSED TWICE [passed passed] [sig-a] one [Conformance]');
    // The machine's cache is gone; the committed runs still tell.
    rmSync(reports, { recursive: true, force: true });
    const later = spawnSync('bash', [script, '--reports', reports, '--results', results, '--selection', selection], { encoding: 'utf8' });
    expect(later.stdout).toContain('of the 1 selected: 1 passed their last two runs in a row');
    expect(later.stdout.match(/^ {2}2026/gm)?.length).toBe(2);
  });
});
