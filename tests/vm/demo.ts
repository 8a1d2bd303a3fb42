// The newcomer's demo of the main job in real guests (issue 18, item 6), run by
// `bash scripts/demo.sh --vm`: one control plane and one worker boot from the stock image through
// cloud-init and `nodeup launch` (QEMU, TCG here), with kube-proxy and CoreDNS on. The demo prints
// `kubectl get nodes -o wide`, deploys the hello Deployment behind a ClusterIP Service, answers a
// request through that Service from a pod (by its DNS name) and from the control plane's host,
// then deletes the guests. With --keep the guests, the registry and the asset mirror stay up until
// Ctrl-C, and the ssh command to reach each guest is printed.
//
// It uses the VM suites' lab (tests/vm/lab.ts), so it needs their fixtures: scripts/demo.sh runs
// scripts/vm/setup.sh first.
import { pathToFileURL } from 'node:url';
import { servicesWork, systemPodsReady } from './kube-checks.ts';
import { Lab, kubectl } from './lab.ts';

const keep = process.argv.includes('--keep');
const lab = new Lab('demo');
const cp = { name: 'demo-cp-1', ip: '192.168.77.11' };
const wk = { name: 'demo-node-1', ip: '192.168.77.12' };

async function show(title: string, from: string, cmd: string): Promise<string> {
  const r = await lab.ssh(from, cmd);
  process.stdout.write(`\n=== ${title}\n${r.stdout}${r.stderr}`);
  if (r.code !== 0) throw new Error(`${title}: exit ${r.code}`);
  return r.stdout;
}

async function main(): Promise<void> {
  process.stdout.write(
    'nodeup VM demo: one control plane and one worker in QEMU. Under TCG (no KVM) on 2 cores this takes about 25-35 minutes:\n' +
      '~10 min for the control plane to converge, ~8 min for the worker, ~5 min for kube-proxy, CoreDNS and the hello pods.\n',
  );
  await lab.setup();
  const cpConfig = await lab.writeFile('control-plane.yaml', lab.nodeConfig({ role: 'control-plane', ig: 'control-plane', cpIp: cp.ip, untainted: true, services: true }));
  const worker = lab.nodeConfig({ role: 'worker', ig: 'nodes', cpIp: cp.ip, services: true });
  const wkConfig = await lab.writeFile('nodes.yaml', worker);
  await lab.publishNodeConfig('nodes', worker);

  const c = await lab.launch(cp.name, { nodeConfig: cpConfig, memoryMiB: 3072 });
  if (c.code !== 0) throw new Error(`nodeup launch ${cp.name}: exit ${c.code}`);
  lab.mark('control plane converged');
  await lab.copyJoinMaterial(cp.name);
  const w = await lab.launch(wk.name, { nodeConfig: wkConfig, memoryMiB: 2048, stateStore: pathToFileURL(lab.storeDir).href });
  if (w.code !== 0) throw new Error(`nodeup launch ${wk.name}: exit ${w.code}`);
  lab.mark('worker converged');
  await lab.nodesReady(cp.name, [cp.name, wk.name]);
  lab.mark('both nodes Ready');
  await show('kubectl get nodes -o wide', cp.name, kubectl('get nodes -o wide'));
  await systemPodsReady(lab, cp.name, 'kube-proxy-', 2);
  await systemPodsReady(lab, cp.name, 'coredns-', 1);
  lab.mark('kube-proxy and CoreDNS Ready');
  const helloIp = await lab.helloAnswers(cp.name, wk.name);
  const svc = await servicesWork(lab, { cp: cp.name, clientNode: cp.name, helloNode: wk.name, helloPodIp: helloIp, nodeIps: { [cp.name]: cp.ip, [wk.name]: wk.ip } });
  await show('kubectl get pods,services -A -o wide', cp.name, kubectl('get pods,services -A -o wide'));
  await show(`a request through the hello Service (ClusterIP ${svc.helloClusterIp}) from a pod on ${cp.name}, by name`, cp.name, kubectl('exec client -- curl -sS --max-time 5 http://hello.default.svc.cluster.local/'));
  lab.mark('a request answered through a Service');
}

async function run(): Promise<number> {
  let code = 0;
  try {
    await main();
    process.stdout.write('\ndemo: the cluster works (nodes Ready, DNS, a ClusterIP Service, a NodePort, pod-to-pod across nodes)\n');
  } catch (err: unknown) {
    code = 1;
    process.stdout.write(`\ndemo FAILED: ${err instanceof Error ? err.message : String(err)}\n`);
    await lab.diagnoseAll().catch(() => undefined);
  }
  if (keep && lab.started.length > 0) {
    for (const n of lab.started) {
      const port = await lab.sshPort(n).catch(() => 0);
      process.stdout.write(`ssh ${n}: ssh -i ${lab.keyFile} -p ${port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1\n`);
    }
    process.stdout.write(`--keep: the guests, the registry and the asset mirror stay up; Ctrl-C deletes the guests (state in ${lab.stateDir})\n`);
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()).once('SIGTERM', () => resolve()));
  }
  await lab.printTimings().catch(() => undefined);
  await lab.teardown();
  return code;
}

process.exitCode = await run();
