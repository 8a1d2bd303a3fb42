// Times the addons component against a real kube-apiserver on 127.0.0.1 (tests/integration/
// addons-harness.ts: etcd + kube-apiserver built from source, the control plane's flags): the API
// server's start to /readyz, a plan of the 12 objects on an empty cluster, the first apply, converged
// re-runs, and a bootstrap-token CSR until kube-controller-manager has approved and signed it.
// Usage: node bench/addons.ts [re-runs]   (prints the figures; needs scripts/setup-addons.sh)
import * as os from 'node:os';
import { isUnreachable } from '../src/addons/kube-api.ts';
import { ControlPlaneWorld, csrPath, nodeCsr, waitFor } from '../tests/integration/addons-harness.ts';

const n = Number(process.argv[2] ?? 10);
const ms = (t: number): string => `${(performance.now() - t).toFixed(0)} ms`;
const log = (line: string): void => console.error(line);

let t = performance.now();
const w = await ControlPlaneWorld.start({ say: log });
const started = ms(t);
try {
  t = performance.now();
  const plan = await w.runAddons('plan');
  const planMs = ms(t);
  t = performance.now();
  const first = await w.runAddons();
  const firstMs = ms(t);
  if (!first.ok || first.changed !== 12) throw new Error(`first apply: ok=${first.ok} changed=${first.changed}`);
  const again: number[] = [];
  for (let i = 0; i < n; i++) {
    t = performance.now();
    const r = await w.runAddons();
    again.push(performance.now() - t);
    if (r.changed !== 0) throw new Error('re-run changed objects');
  }
  const cm = await w.startControllerManager();
  // The first CSR also waits for the controller-manager to start; the second one is steady state.
  const csrTimes: string[] = [];
  for (const name of ['bench-1', 'bench-2']) {
    const { csrPem } = await nodeCsr(name);
    t = performance.now();
    const res = await w.postCsrWithToken(await w.storeToken(), `node-csr-${name}`, csrPem);
    if (res.status !== 201) throw new Error(`CSR ${name}: HTTP ${res.status}`);
    await waitFor(
      `CSR ${name} signed`,
      async () => {
        const r = await w.admin.request('GET', `${csrPath}/node-csr-${name}`);
        if (isUnreachable(r) || r.status !== 200) return undefined;
        return (JSON.parse(r.body.toString()) as { status?: { certificate?: string } }).status?.certificate ? true : undefined;
      },
      120_000,
      cm,
    );
    csrTimes.push(ms(t));
  }
  const s = [...again].sort((a, b) => a - b);
  console.log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}, load ${os.loadavg()[0]?.toFixed(1)}`);
  console.log(`etcd + kube-apiserver start to /readyz (incl. PKI): ${started}`);
  console.log(`plan, 12 objects, empty cluster:                  ${planMs} (${plan.changed} to change)`);
  console.log(`first apply, 12 objects:                          ${firstMs}`);
  console.log(`converged re-run (${n}x):                          median ${s[Math.floor(s.length / 2)]?.toFixed(0)} ms, min ${s[0]?.toFixed(0)} ms, max ${s[s.length - 1]?.toFixed(0)} ms`);
  console.log(`token CSR -> signed certificate:                  ${csrTimes[0]} (controller-manager starting), ${csrTimes[1]} (running)`);
} finally {
  await w.stop();
}
