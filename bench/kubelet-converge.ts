// Times the worker scenario of tests/golden (prereqs, containerd, kubelet, kube-proxy on a Debian 12
// fixture root, fake file:// assets): a first apply on an empty root and a converged re-run.
// Usage: node bench/kubelet-converge.ts [iterations]   (prints the figures; no assertions)
import * as os from 'node:os';
import { createTestHost, testFacts } from '../tests/support/test-host.ts';
import { runNode } from '../src/app/run.ts';
import { makeScenario, silentLogger } from '../tests/golden/kubelet-scenario.ts';

const n = Number(process.argv[2] ?? 10);
const first: number[] = [];
const again: number[] = [];
let tasks = 0;
const scenario = await makeScenario('worker', 'nodes');
try {
  for (let i = 0; i < n; i++) {
    const host = await createTestHost({ fixture: 'debian-12', unmatched: 'succeed' });
    const req = { host, log: silentLogger, bootConfig: scenario.boot, facts: testFacts({ hostname: 'worker-1' }), skip: scenario.skip, publishReceipt: false, mode: 'apply' } as const;
    let t = performance.now();
    const a = await runNode(req);
    first.push(performance.now() - t);
    t = performance.now();
    const b = await runNode(req);
    again.push(performance.now() - t);
    if (!a.report?.ok || b.report?.changed !== 0) throw new Error('scenario did not converge');
    tasks = b.report.results.length;
    await host.dispose();
  }
} finally {
  await scenario.dispose();
}
const stat = (xs: number[]): string => {
  const s = [...xs].sort((x, y) => x - y);
  return `median ${s[Math.floor(s.length / 2)]?.toFixed(0)} ms, min ${s[0]?.toFixed(0)} ms, max ${s[s.length - 1]?.toFixed(0)} ms`;
};
console.log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}; ${n} iterations, ${tasks} tasks`);
console.log(`first apply (empty root): ${stat(first)}`);
console.log(`converged re-run:         ${stat(again)}`);
