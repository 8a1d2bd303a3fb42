// scripts/conformance/run.sh's parts that can go wrong without a cluster: the focus and skip
// regexes built from a selection (they must select exactly the named tests, whatever characters
// the names hold), the JUnit -> per-test report and summary parser, and the selection files
// themselves (every name a v1.35.4 [Conformance] test).
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const here = import.meta.dirname;
const script = join(here, '../../scripts/conformance/run.sh');
const testdata = join(here, 'testdata');
const tmp = mkdtempSync(join(tmpdir(), 'nodeup-conformance-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('bash', [script, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The names of a selection-style file: comments and blank lines dropped. */
function names(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter((l) => l !== '');
}

/** ginkgo's JUnit/focus text for a test: "[It] <name> [<labels>]". */
const ginkgoText = (name: string): string => `[It] ${name} [Conformance, sig-x]`;

describe('focus and skip regexes', () => {
  const sample = join(testdata, 'selection-sample.txt');

  it('selects every named test and nothing else, with regex characters in the names taken literally', () => {
    const r = run(['--print-focus', sample]);
    expect(r.status, r.stderr).toBe(0);
    const re = new RegExp(r.stdout.trim());
    const selected = names(sample);
    expect(selected).toHaveLength(8);
    for (const n of selected) expect(re.test(ginkgoText(n)), n).toBe(true);
    // Near misses: `*not*` is no wildcard, `.` no any-character, brackets no character class.
    const misses = [
      '[sig-node] Probing container should be restarted with a exec "cat /tmp/health" liveness probe [NodeConformance] [Conformance]',
      '[sig-node] Probing container should not be restarted with a exec "cat /tmp/health" liveness probe [NodeConformance] [Conformance]',
      '[sig-api-machinery] Aggregator Should be able to support the 1x17 Sample API Server using the current Aggregator [LinuxOnly] [Conformance]',
      's DNS should provide DNS for the cluster [Conformance]',
      '[sig-network] DNS should provide DNS for services [Conformance]',
    ];
    for (const m of misses) expect(re.test(ginkgoText(m)), m).toBe(false);
  });

  it('skips only the listed tests that are in the selection', () => {
    const r = run(['--print-skip', sample, '--skips', join(testdata, 'skips-sample.txt')]);
    expect(r.status, r.stderr).toBe(0);
    const re = new RegExp(r.stdout.trim());
    expect(re.test(ginkgoText('[sig-api-machinery] Aggregator Should be able to support the 1.17 Sample API Server using the current Aggregator [LinuxOnly] [Conformance]'))).toBe(true);
    expect(r.stdout).not.toContain('not selected here');
    for (const n of names(sample).filter((n) => !n.includes('Aggregator'))) expect(re.test(ginkgoText(n)), n).toBe(false);
  });

  it('prints no skip regex when no selected test is listed', () => {
    const sel = join(tmp, 'one.txt');
    writeFileSync(sel, '[sig-network] DNS should provide DNS for the cluster [Conformance]\n');
    const r = run(['--print-skip', sel, '--skips', join(testdata, 'skips-sample.txt')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('');
  });
});

describe('JUnit report -> per-test results and summary', () => {
  it('reports passed, failed (failed, timedout, panicked), skipped with the reason, and missing tests', () => {
    const out = join(tmp, 'report');
    const r = run(['--summarize', join(testdata, 'junit-sample.xml'), '--selection', join(testdata, 'selection-sample.txt'),
      '--skips', join(testdata, 'skips-sample.txt'), '--conformance-list', join(here, 'conformance.txt'), '--report-dir', out]);
    expect(r.status).toBe(1); // failures
    const lines = r.stdout.split('\n');
    const line = (prefix: string): string => lines.find((l) => l.startsWith(prefix)) ?? '';
    expect(line('PASSED   [sig-network] DNS should provide DNS for the cluster [Conformance]')).toContain('(12.3s)');
    expect(line('FAILED   [sig-network] Services should be able to create a functioning NodePort service')).toContain(
      '-- failed: service is not reachable within 2m0s timeout on endpoint 192.168.77.12:31234 over TCP protocol Unexpected error: "exit 7"');
    expect(line("PASSED   [sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should mutate everything except 'skip-me' configmaps")).not.toBe('');
    expect(line('SKIPPED  [sig-network] Networking Granular Checks: Pods should function for intra-pod communication: http')).toContain(
      '-- skipped - Requires at least 2 nodes (not 1)');
    expect(line('FAILED   [sig-node] Pods should support remote command execution over websockets')).toContain('-- timedout: A spec timeout occurred');
    // A test the skips file lists is reported with the file's reason, not ginkgo's bare "skipped".
    expect(line('SKIPPED  [sig-api-machinery] Aggregator')).toMatch(/ -- needs the sample-apiserver image$/);
    expect(line('FAILED   [sig-cli] Kubectl logs')).toContain('-- panicked: runtime error: invalid memory address');
    expect(line('MISSING  [sig-node] Probing container should *not* be restarted')).toContain('not in this e2e.test');
    // The suite-level node ([SynchronizedBeforeSuite]) is no selected test.
    expect(r.stdout).not.toContain('SynchronizedBeforeSuite');

    const row = lines.find((l) => l.startsWith('| selection-sample'))!;
    expect(row.split('|').map((c) => c.trim()).slice(1, 9)).toEqual(['selection-sample', '8', '2', '3', '2', '1', '0', '2/441 = 0.5%']);
    // The sample's suite ended normally: nothing is "not run".
    expect(r.stdout).not.toContain('stopped early');
    expect(r.stdout).toContain('selected 8 of the 441 [Conformance] tests (1.8%); ran 5 (1.1%)');

    const tsv = readFileSync(join(out, 'results.tsv'), 'utf8').trim().split('\n').map((l) => l.split('\t'));
    expect(tsv).toHaveLength(8);
    expect(tsv.map((c) => c[0])).toEqual(['passed', 'failed', 'passed', 'skipped', 'failed', 'skipped', 'failed', 'missing']);
    expect(tsv[0]).toEqual(['passed', '12.3456', '[sig-network] DNS should provide DNS for the cluster [Conformance]', '']);
    expect(readFileSync(join(out, 'summary.txt'), 'utf8')).toContain(row);
  });

  it('exits 0 when every selected test passed or was skipped with a reason', () => {
    const junit = join(tmp, 'ok.xml');
    writeFileSync(junit, [
      '<testsuites><testsuite name="Kubernetes e2e suite">',
      '<testcase name="[It] [sig-network] DNS should provide DNS for the cluster [Conformance] [Conformance, sig-network]" classname="x" status="passed" time="3"></testcase>',
      '<testcase name="[It] [sig-api-machinery] Aggregator Should be able to support the 1.17 Sample API Server using the current Aggregator [LinuxOnly] [Conformance] [Conformance]" classname="x" status="skipped" time="0"><skipped message="skipped"></skipped></testcase>',
      '</testsuite></testsuites>',
    ].join('\n'));
    const sel = join(tmp, 'two.txt');
    writeFileSync(sel, [
      '[sig-network] DNS should provide DNS for the cluster [Conformance]',
      '[sig-api-machinery] Aggregator Should be able to support the 1.17 Sample API Server using the current Aggregator [LinuxOnly] [Conformance]',
    ].join('\n'));
    const r = run(['--summarize', junit, '--selection', sel, '--skips', join(testdata, 'skips-sample.txt'), '--conformance-list', join(here, 'conformance.txt')]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\| two +\| +2 \| +1 \| +0 \| +1 \| +0 \| +0 \| 1\/441 = 0\.2%/m);
  });

  it('reports the tests a stopped run never reached as not run, and fails', () => {
    const dns = '[sig-network] DNS should provide DNS for the cluster [Conformance]';
    const exec = '[sig-node] Pods should support remote command execution over websockets [NodeConformance] [Conformance]';
    const logs = '[sig-cli] Kubectl logs logs should be able to retrieve and filter logs [Conformance]';
    const aggregator = '[sig-api-machinery] Aggregator Should be able to support the 1.17 Sample API Server using the current Aggregator [LinuxOnly] [Conformance]';
    const sel = join(tmp, 'stopped.txt');
    writeFileSync(sel, [dns, exec, logs, aggregator].join('\n'));
    const junit = (reason: string): string => {
      const f = join(tmp, `stopped-${reason.length}.xml`);
      writeFileSync(f, [
        '<testsuites><testsuite name="Kubernetes e2e suite"><properties>',
        `<property name="SuiteSucceeded" value="false"></property><property name="SpecialSuiteFailureReason" value="${reason}"></property>`,
        '</properties>',
        `<testcase name="${ginkgoText(dns)}" classname="x" status="passed" time="3"></testcase>`,
        `<testcase name="${ginkgoText(exec)}" classname="x" status="skipped" time="0"><skipped message="skipped"></skipped></testcase>`,
        // the skips file's test: still skipped with its reason; `logs` is in no report at all
        `<testcase name="${ginkgoText(aggregator)}" classname="x" status="skipped" time="0"><skipped message="skipped"></skipped></testcase>`,
        '</testsuite></testsuites>',
      ].join('\n'));
      return f;
    };
    const args = (f: string): string[] => ['--summarize', f, '--selection', sel, '--skips', join(testdata, 'skips-sample.txt'), '--conformance-list', join(here, 'conformance.txt')];
    const r = run(args(junit('Suite Timeout Elapsed')));
    expect(r.status, r.stdout + r.stderr).toBe(1);
    const lines = r.stdout.split('\n');
    expect(lines).toContain(`NOT RUN  ${exec} -- not reached: the run stopped early (Suite Timeout Elapsed)`);
    expect(lines).toContain(`NOT RUN  ${logs} -- not reached: the run stopped early (Suite Timeout Elapsed)`);
    expect(lines.find((l) => l.startsWith('SKIPPED  [sig-api-machinery] Aggregator'))).toMatch(/ -- needs the sample-apiserver image$/);
    expect(r.stdout).toMatch(/^\| stopped +\| +4 \| +1 \| +0 \| +1 \| +0 \| +2 \| 1\/441 = 0\.2%/m);
    expect(r.stdout).toContain('the run stopped early (Suite Timeout Elapsed): 2 selected test(s) not reached');
    // Another suite-level reason (a failed BeforeSuite, say) is no early stop: the same report
    // then counts a missing test as missing.
    const other = run(args(junit('Failed to iterate over specs')));
    expect(other.stdout).toMatch(/^MISSING  \[sig-cli\] Kubectl logs/m);
    expect(other.stdout).not.toContain('NOT RUN');
  });

  it('matches the exact ginkgo name before a longer one that contains it', () => {
    const junit = join(tmp, 'prefix.xml');
    writeFileSync(junit, [
      '<testsuites><testsuite>',
      '<testcase name="[It] [sig-x] Outer A b [Conformance] [Conformance]" classname="x" status="failed" time="1"><failure message="boom" type="failed"></failure></testcase>',
      '<testcase name="[It] A b [Conformance] [Conformance]" classname="x" status="passed" time="2"></testcase>',
      '</testsuite></testsuites>',
    ].join('\n'));
    const sel = join(tmp, 'prefix.txt');
    writeFileSync(sel, 'A b [Conformance]\n');
    const r = run(['--summarize', junit, '--selection', sel, '--skips', '/nonexistent', '--conformance-list', join(here, 'conformance.txt')]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('PASSED   A b [Conformance] (2.0s)');
  });
});

describe('how e2e.test is started', () => {
  /** A bin folder with stand-ins for e2e.test, ginkgo and kubectl that record their arguments, one a line. */
  function fakeBin(withGinkgo: boolean): string {
    const bin = mkdtempSync(join(tmp, 'bin-'));
    const recorder = (name: string): string => `#!/bin/sh\n[ "$1" = --version ] && { echo "${name} v0"; exit 0; }\nfor a in "$@"; do printf '%s\\n' "$a"; done >"${bin}/${name}.args"\n`;
    for (const n of ['e2e.test', 'kubectl', ...(withGinkgo ? ['ginkgo'] : [])]) {
      writeFileSync(join(bin, n), recorder(n));
      chmodSync(join(bin, n), 0o755);
    }
    writeFileSync(join(bin, 'kubeconfig'), 'apiVersion: v1\n');
    return bin;
  }
  const common = (bin: string, report: string): string[] => ['--e2e', join(bin, 'e2e.test'), '--kubeconfig', join(bin, 'kubeconfig'), '--kubectl-path', join(bin, 'kubectl'), '--selection', 'smoke', '--report-dir', report, '--quiet'];

  it('runs e2e.test itself with --ginkgo.* flags by default', () => {
    const bin = fakeBin(false);
    const report = join(bin, 'report');
    run(common(bin, report));
    const args = readFileSync(join(bin, 'e2e.test.args'), 'utf8').trim().split('\n');
    expect(args.find((a) => a.startsWith('--ginkgo.focus='))).toBeDefined();
    expect(args).toContain(`--ginkgo.junit-report=${report}/junit.xml`);
    expect(args).toContain(`--kubeconfig=${join(bin, 'kubeconfig')}`);
    expect(args.some((a) => a.startsWith('--focus=') || a.startsWith('--nodes'))).toBe(false);
  });

  it('runs N parallel processes through the ginkgo CLI with --nodes N, e2e.test\'s own flags after --', () => {
    const bin = fakeBin(true);
    const report = join(bin, 'report');
    mkdirSync(report);
    run([...common(bin, report), '--nodes', '3']);
    const args = readFileSync(join(bin, 'ginkgo.args'), 'utf8').trim().split('\n');
    expect(args[0]).toBe('--nodes=3');
    const sep = args.indexOf('--');
    expect(args[sep - 1]).toBe(join(bin, 'e2e.test'));
    expect(args.slice(0, sep).find((a) => a.startsWith('--focus='))).toBeDefined();
    expect(args.slice(0, sep)).toContain(`--junit-report=${report}/junit.xml`);
    expect(args.slice(sep + 1)).toContain(`--kubeconfig=${join(bin, 'kubeconfig')}`);
    expect(args.some((a) => a.startsWith('--ginkgo.'))).toBe(false);
  });

  it('refuses --nodes without a ginkgo CLI, naming where it looked (exit 2)', () => {
    const bin = fakeBin(false);
    const r = run([...common(bin, join(bin, 'report')), '--nodes', '2']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${join(bin, 'ginkgo')} is not executable`);
    const bad = run([...common(bin, join(bin, 'report')), '--nodes', 'x']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--nodes takes a number');
  });
});

describe('selection files (tests/conformance)', () => {
  const all = names(join(here, 'conformance.txt'));
  const ci = names(join(here, 'ci.txt'));
  const smoke = names(join(here, 'smoke.txt'));
  const full = names(join(here, 'full.txt'));
  const skips = names(join(here, 'skips.txt')).map((l) => l.split('|').map((s) => s.trim()));

  it('holds the 441 [Conformance] tests of v1.35.4, each once', () => {
    expect(all).toHaveLength(441);
    expect(new Set(all).size).toBe(441);
  });

  it('names only real [Conformance] tests, each once; the CI selection is part of the smoke, the smoke of the full selection', () => {
    for (const [label, sel] of [['ci', ci], ['smoke', smoke], ['full', full]] as const) {
      expect(new Set(sel).size, label).toBe(sel.length);
      expect(sel.filter((n) => !all.includes(n)), label).toEqual([]);
    }
    expect(smoke.length).toBeGreaterThanOrEqual(8);
    expect(smoke.length).toBeLessThanOrEqual(12);
    expect(smoke.filter((n) => !full.includes(n))).toEqual([]);
    expect(ci.length).toBe(4);
    expect(ci.filter((n) => !smoke.includes(n))).toEqual([]);
    expect(full.length).toBeGreaterThan(250);
  });

  it('gives every skip (none today) a test of the list and a reason', () => {
    for (const [name, reason] of skips) {
      expect(all, name).toContain(name);
      expect(reason?.length ?? 0, name).toBeGreaterThan(10);
    }
  });

  it('covers the areas the issue asks for', () => {
    const count = (sig: string): number => full.filter((n) => n.startsWith(`[${sig}]`)).length;
    for (const sig of ['sig-network', 'sig-node', 'sig-apps', 'sig-api-machinery', 'sig-cli']) expect(count(sig), sig).toBeGreaterThan(10);
    for (const part of ['DNS should provide DNS for services', 'EndpointSlice', 'functioning NodePort', 'Pods should support remote command execution',
      'Kubectl logs', 'Probing container', 'ConfigMap should be consumable from pods in volume', 'Secrets should be consumable from pods in volume',
      'Container Lifecycle Hook', 'Deployment', 'ReplicaSet', '[sig-apps] Job', 'Daemon set', 'StatefulSet', 'Namespaces', 'Watchers',
      'CustomResourceDefinition', 'AdmissionWebhook']) {
      expect(full.some((n) => n.includes(part)), part).toBe(true);
    }
  });
});
