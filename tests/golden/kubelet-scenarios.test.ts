// Node scenarios: plan on an empty fixture root, apply, apply again (zero changes, no file touched
// but the receipt). Goldens: tests/golden/<scenario>/{plan.txt,tree.txt}. The packages, etcd and
// control-plane components are skipped (their own tests cover them), so the control-plane role's
// scenario is named for what it renders: the node parts (prereqs, containerd, kubelet, kube-proxy).
// The root is offline: no step may run a live command, asserted at every stage.
import { afterEach, describe, expect, it } from 'vitest';
import { createTestHost, testFacts, type TestHost } from '../support/test-host.ts';
import { renderPlan } from '../../src/engine/plan-printer.ts';
import { runNode } from '../../src/app/run.ts';
import { mtimes, treeListing } from './kubelet-support.ts';
import { makeScenario, rockyFacts, silentLogger, type Scenario } from './kubelet-scenario.ts';

const scenarios = [
  { name: 'worker-debian-12', role: 'worker', ig: 'nodes', fixture: 'debian-12', facts: testFacts({ hostname: 'worker-1' }) },
  { name: 'cp-role-node-parts-rocky-9', role: 'control-plane', ig: 'control-plane', fixture: 'rocky-9', facts: testFacts({ hostname: 'cp-1', ...rockyFacts }) },
] as const;

let host: TestHost | undefined;
let scenario: Scenario | undefined;
afterEach(async () => {
  await host?.dispose();
  await scenario?.dispose();
});

describe('node scenarios', () => {
  it.each(scenarios)('$name: plan, apply, converged re-run', async ({ name, role, ig, fixture, facts }) => {
    scenario = await makeScenario(role, ig);
    host = await createTestHost({ fixture, unmatched: 'succeed' });
    const req = { host, log: silentLogger, bootConfig: scenario.boot, facts, skip: scenario.skip, publishReceipt: false } as const;

    const plan = await runNode({ ...req, mode: 'plan' });
    expect(plan.error).toBeUndefined();
    expect(plan.preflight?.filter((p) => !p.ok)).toEqual([]);
    expect(host.commandLog()).toEqual([]); // plan changes nothing and runs nothing on an offline root
    expect(await host.tree()).toEqual(['etc/os-release']);
    await expect(renderPlan(plan.report!)).toMatchFileSnapshot(`${name}/plan.txt`);

    const apply = await runNode({ ...req, mode: 'apply' });
    expect(apply.error).toBeUndefined();
    expect(apply.report?.ok).toBe(true);
    expect(apply.receipt?.result).toBe('converged');
    await expect(await treeListing(host)).toMatchFileSnapshot(`${name}/tree.txt`);
    expect(host.commandLog()).toEqual([]); // units are enabled, never started, on an offline root

    const before = await mtimes(host);
    host.clearLog();
    await new Promise((r) => setTimeout(r, 20)); // a rewrite would show as a newer mtime
    const again = await runNode({ ...req, mode: 'apply' });
    expect(again.error).toBeUndefined();
    expect(again.report?.changed).toBe(0);
    expect(again.report?.results.filter((r) => r.status !== 'unchanged')).toEqual([]);
    expect(host.commandLog()).toEqual([]);
    const after = await mtimes(host);
    const touched = [...after].filter(([p, t]) => before.get(p) !== t).map(([p]) => p);
    expect(touched).toEqual(['var/lib/nodeup/status.json']);
    expect([...after.keys()]).toEqual([...before.keys()]);
  });
});
