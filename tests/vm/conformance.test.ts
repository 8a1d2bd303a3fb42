// Issue 18, item 4: a conformance run on a nodeup cluster of one control plane and two workers
// (stock image, through cloud-init and `nodeup launch`): upstream e2e.test, built from the Go module
// proxy at the cluster's version, runs a [Conformance] selection (scripts/conformance/run.sh) on this
// machine against the control plane's forwarded API server port, or inside the control-plane guest, and the test fails on any failed or missing test. The control plane
// keeps its control-plane taint: pods run on the two workers, as in a production cluster.
//
// Not part of `bash scripts/test.sh` (the full selection takes hours under TCG): run it with
//   bash scripts/conformance/vm.sh [--selection smoke|full|FILE] [--timeout-min N]
// which sets NODEUP_VM_CONFORMANCE=1 and the selection. The report (junit.xml, results.tsv,
// summary.txt, e2e.log) lands in $NODEUP_CONFORMANCE_REPORTS/conformance-<selection>
// (default ~/.cache/nodeup/reports). Without NODEUP_VM_CONFORMANCE=1 the file says so and fails,
// so it is never skipped silently.
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectNodeRoutes, namedSelections, runConformance, systemPodsReady } from './kube-checks.ts';
import { Lab } from './lab.ts';

const enabled = process.env.NODEUP_VM_CONFORMANCE === '1';
const selection = process.env.NODEUP_CONFORMANCE_SELECTION ?? 'full';
const timeoutMin = Number(process.env.NODEUP_CONFORMANCE_TIMEOUT_MIN ?? '600');
/** Parallel ginkgo processes (run.sh --nodes); vm.sh passes 3 by default. */
const ginkgoNodes = Number(process.env.NODEUP_VM_CONFORMANCE_NODES ?? '1');
/**
 * Where e2e.test runs (vm.sh --runner): 'host' (default) natively on this machine through the
 * control plane's forwarded API server port, or 'guest' inside the control plane. In the guest,
 * every kubectl and e2e process is emulated beside the API server and etcd on the same 2 vCPUs:
 * the sig-cli part of 2026-12-07 lost 8 tests to API server and etcd timeouts at guest load 17-22.
 */
const runner = process.env.NODEUP_CONFORMANCE_RUNNER === 'guest' ? 'guest' : 'host';
if (!['host', 'guest', undefined].includes(process.env.NODEUP_CONFORMANCE_RUNNER)) throw new Error(`NODEUP_CONFORMANCE_RUNNER is host or guest, not ${process.env.NODEUP_CONFORMANCE_RUNNER}`);
const reports = process.env.NODEUP_CONFORMANCE_REPORTS ?? path.join(os.homedir(), '.cache', 'nodeup', 'reports');

const lab = new Lab('vmcf');
/**
 * Three guests and parallel ginkgo processes on two host cores: the API server sometimes took
 * more than 20 s to answer a lease renewal twice in a row, so the controller-manager and the
 * scheduler lost the lab's 40 s renew deadline and restarted (a sig-network run on 2026-12-07:
 * "leaderelection lost" at minute 5 of the tests, and a Deployment never counted Available in
 * time). Single-node OpenShift tunes leader election the same way for a control plane that can
 * stall: 137 s lease, 107 s renew deadline, 26 s retry period.
 */
const leaderElection = { leaseDurationSeconds: 137, renewDeadlineSeconds: 107, retryPeriodSeconds: 26 };
const cp = { name: 'vmcf-cp-1', ip: '192.168.77.11' };
const workers = [
  { name: 'vmcf-node-1', ip: '192.168.77.12' },
  { name: 'vmcf-node-2', ip: '192.168.77.13' },
];

describe('conformance: upstream [Conformance] tests on one control plane and two workers', () => {
  let cpConfig = '';
  let wkConfig = '';

  beforeAll(async () => {
    if (!enabled) return;
    await lab.setup();
    cpConfig = await lab.writeFile('control-plane.yaml', lab.nodeConfig({ role: 'control-plane', ig: 'control-plane', cpIp: cp.ip, services: true, leaderElection }));
    const worker = lab.nodeConfig({ role: 'worker', ig: 'nodes', cpIp: cp.ip, services: true, leaderElection });
    wkConfig = await lab.writeFile('nodes.yaml', worker);
    await lab.publishNodeConfig('nodes', worker);
  });

  afterAll(() => (enabled ? lab.teardown() : undefined));

  it(`runs the ${selection} selection and every selected test passes or is skipped with a reason`, async () => {
    if (!enabled) {
      throw new Error('NOT RUN: the conformance run takes hours under TCG; run it with bash scripts/conformance/vm.sh (sets NODEUP_VM_CONFORMANCE=1). scripts/test.sh excludes this file and says so.');
    }
    try {
      // All three at once, as an autoscaling group launches them: the workers' nodeup waits
      // (--join-timeout) for the CA and the bootstrap token the control plane creates. Each
      // waits for the one before to take its private-link slot, so the addresses keep their order.
      const launched = lab.launch(cp.name, { nodeConfig: cpConfig, memoryMiB: 4096, args: ['--forward', '6443'] });
      await lab.waitForInstance(cp.name);
      const workerLaunches: Promise<{ code: number }>[] = [];
      for (const w of workers) {
        workerLaunches.push(lab.launch(w.name, { nodeConfig: wkConfig, memoryMiB: 2560, stateStore: pathToFileURL(lab.storeDir).href }));
        await lab.waitForInstance(w.name);
      }
      const c = await launched;
      expect(c.code, 'nodeup launch (control plane) exit code').toBe(0);
      await lab.copyJoinMaterial(cp.name);
      for (const [i, r] of (await Promise.all(workerLaunches)).entries()) expect(r.code, `nodeup launch (${workers[i]?.name}) exit code`).toBe(0);
      const all = [cp, ...workers];
      const nodes = await lab.nodesReady(cp.name, all.map((n) => n.name));
      lab.mark('three nodes Ready');
      // Each node's pod subnet is the allocator's choice: read it, then expect the routes to it.
      const podCidr = (name: string): string => nodes.items.find((i) => i.metadata.name === name)?.spec.podCIDR ?? '';
      expect(new Set(all.map((n) => podCidr(n.name))).size, 'three distinct pod subnets').toBe(3);
      for (const n of all) {
        await expectNodeRoutes(lab, n.name, Object.fromEntries(all.filter((o) => o !== n).map((o) => [podCidr(o.name), o.ip])));
      }
      expect((await systemPodsReady(lab, cp.name, 'kube-proxy-', 3)).sort()).toEqual(all.map((n) => n.name).sort());
      await systemPodsReady(lab, cp.name, 'coredns-', 1);
      lab.mark('routes, kube-proxy and CoreDNS ready');

      const label = namedSelections.includes(selection) ? selection : path.basename(selection, '.txt');
      const res = await runConformance(lab, cp.name, { selection, hostReportDir: path.join(reports, `conformance-${label}`), timeoutMin, nodes: ginkgoNodes, runner });
      process.stdout.write(`${res.output}\nconformance report: ${res.reportDir}\n`);
      lab.mark(`conformance ${label}`);
      expect(res.results.length, 'tests in the report').toBeGreaterThan(0);
      expect(res.results.filter((r) => r.status !== 'passed' && r.status !== 'skipped').map((r) => `${r.status} ${r.name}: ${r.detail}`)).toEqual([]);
      await lab.printTimings();
    } catch (err: unknown) {
      await lab.diagnoseAll();
      throw err;
    }
    // Its own limit: the vm project's hour is less than bring-up plus the selection's --timeout.
  }, (timeoutMin + 60) * 60_000);
});
