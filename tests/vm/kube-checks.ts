// What makes a set of Ready nodes a working Kubernetes cluster (issue 18), checked from inside the
// guests the way a user would: kube-proxy and CoreDNS running, the node routes nodeup-routes keeps
// between the nodes' pod subnets, a pod that resolves `kubernetes.default` and a Service name
// through CoreDNS, reaches a ClusterIP Service and a pod on another node, a NodePort answering on
// each node's address from the other node; and the conformance smoke: upstream's e2e.test (built
// by scripts/fixtures/build.sh e2e) run by scripts/conformance/run.sh inside the control-plane guest or,
// natively, on this machine through the control plane's forwarded API server port.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { repo, runStreaming } from './harness.ts';
import { kubectl, serveDir, type Lab } from './lab.ts';

/** The address nodeup-routes routes a node's pod subnet through: `<cidr> via <ip>` lines of `ip route show proto 77`. */
export async function nodeRoutes(lab: Lab, name: string): Promise<string[]> {
  const r = await lab.ssh(name, 'ip -4 route show proto 77');
  if (r.code !== 0) throw new Error(`${name}: ip route show proto 77: ${r.stderr}`);
  return r.stdout.split('\n').map((l) => l.trim().replace(/\s+/g, ' ')).filter((l) => l !== '');
}

/** Waits until `name` routes every pod subnet in `want` (cidr -> via) and no other through nodeup-routes. */
export async function expectNodeRoutes(lab: Lab, name: string, want: Readonly<Record<string, string>>): Promise<string[]> {
  const expected = Object.entries(want).map(([cidr, via]) => `${cidr} via ${via}`).sort();
  return lab.waitFor(`${name}: nodeup-routes to route ${expected.join(', ')}`, 300_000, async () => {
    const have = (await nodeRoutes(lab, name)).map((l) => /^(\S+ via \S+)/.exec(l)?.[1] ?? l).sort();
    return have.join(',') === expected.join(',') ? { ok: have } : { last: have.join(', ') || 'no proto 77 routes' };
  }, 5000);
}

interface PodStatus { metadata: { name: string }; spec: { nodeName?: string }; status: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] } }

/** Waits until the kube-system pods whose name starts with `prefix` are at least `count` and all Ready; returns their nodes. */
export async function systemPodsReady(lab: Lab, from: string, prefix: string, count: number): Promise<string[]> {
  return lab.waitFor(`${count} ${prefix} pod(s) Ready`, 600_000, async () => {
    const r = await lab.ssh(from, kubectl('-n kube-system get pods -o json'));
    if (r.code !== 0) return { last: r.stderr };
    const pods = (JSON.parse(r.stdout) as { items: PodStatus[] }).items.filter((p) => p.metadata.name.startsWith(prefix));
    const ready = pods.filter((p) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    if (pods.length >= count && ready.length === pods.length) return { ok: pods.map((p) => p.spec.nodeName ?? '?') };
    return { last: pods.map((p) => `${p.metadata.name} ${p.status.phase ?? '?'} on ${p.spec.nodeName ?? '?'}`).join(', ') || 'none' };
  });
}

const helloServices = (nodePort: number): object => ({
  apiVersion: 'v1',
  kind: 'List',
  items: [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'hello', namespace: 'default' }, spec: { selector: { app: 'hello' }, ports: [{ port: 80, targetPort: 8080 }] } },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'hello-np', namespace: 'default' },
      spec: { type: 'NodePort', selector: { app: 'hello' }, ports: [{ port: 80, targetPort: 8080, nodePort }] },
    },
  ],
});

/** An agnhost pod pinned to `node` (tolerating every taint), running `args`. */
const agnhostPod = (name: string, node: string, container: string, args: readonly string[]): object => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default' },
  spec: {
    nodeSelector: { 'kubernetes.io/hostname': node },
    tolerations: [{ operator: 'Exists' }],
    automountServiceAccountToken: false,
    terminationGracePeriodSeconds: 1,
    containers: [{ name: container, image: 'registry.k8s.io/e2e-test-images/agnhost:2.59', args: [...args] }],
  },
});

/** A pod with the DNS tools (agnhost's image: getent, curl, dig) on `node`, idle. */
const clientPod = (node: string): object => agnhostPod('client', node, 'client', ['pause']);

/** agnhost's netexec on `node`: its /clientip answers with the address the request came from. */
const sourceEchoPod = (node: string): object => agnhostPod('source-echo', node, 'netexec', ['netexec', '--http-port=8080']);

export interface ServiceFigures {
  readonly kubernetesIp: string;
  readonly helloClusterIp: string;
  readonly checks: string[];
}

/**
 * With the hello pod running on `helloNode` (lab.helloAnswers), from a client pod on `clientNode`
 * and from both nodes' hosts: DNS, ClusterIP, pod-to-pod across nodes and NodePort on each node.
 * Throws naming the first check that fails (after retries: kube-proxy and CoreDNS settle).
 */
export async function servicesWork(
  lab: Lab,
  o: { cp: string; clientNode: string; helloNode: string; helloPodIp: string; nodeIps: Readonly<Record<string, string>>; nodePort?: number },
): Promise<ServiceFigures> {
  const nodePort = o.nodePort ?? 30080;
  const apply = await lab.ssh(o.cp, `${kubectl('apply -f -')} <<'EOF'\n${JSON.stringify(helloServices(nodePort))}\nEOF\n${kubectl('apply -f -')} <<'EOF'\n${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [clientPod(o.clientNode), sourceEchoPod(o.helloNode)] })}\nEOF`);
  if (apply.code !== 0) throw new Error(`kubectl apply (services, client pod): ${apply.stderr}`);
  const get = async (what: string): Promise<string> => {
    const r = await lab.ssh(o.cp, kubectl(`get ${what}`));
    if (r.code !== 0) throw new Error(`kubectl get ${what}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const kubernetesIp = await get("service kubernetes -o 'jsonpath={.spec.clusterIP}'");
  const helloClusterIp = await get("service hello -o 'jsonpath={.spec.clusterIP}'");
  const running = (pod: string, node: string): Promise<string> =>
    lab.waitFor(`the ${pod} pod Running on ${node}`, 600_000, async () => {
      const r = await lab.ssh(o.cp, kubectl(`get pod ${pod} -o json`));
      if (r.code !== 0) return { last: r.stderr };
      const p = JSON.parse(r.stdout) as PodStatus;
      return p.status.phase === 'Running' && p.spec.nodeName === node && p.status.podIP ? { ok: p.status.podIP } : { last: `${p.status.phase ?? '?'} on ${p.spec.nodeName ?? '?'}` };
    });
  const clientIp = await running('client', o.clientNode);
  const echoIp = await running('source-echo', o.helloNode);
  const checks: string[] = [];
  /** Runs `cmd` (in the client pod, or on a node's host) until its output matches `want`. */
  const check = async (what: string, where: { pod: true } | { node: string }, cmd: string, want: RegExp): Promise<void> => {
    const out = await lab.waitFor(what, 180_000, async () => {
      const r = 'pod' in where ? await lab.ssh(o.cp, kubectl(`exec client -- ${cmd}`)) : await lab.ssh(where.node, cmd);
      return r.code === 0 && want.test(r.stdout) ? { ok: r.stdout.trim() } : { last: `exit ${r.code}: ${(r.stdout + r.stderr).trim()}` };
    }, 3000);
    checks.push(`${what}: ${out.split('\n')[0]}`);
    process.stdout.write(`[${lab.cluster}] ok: ${what}: ${out.split('\n')[0]}\n`);
  };
  const esc = (ip: string): string => ip.replace(/\./g, '\\.');
  const hello = /^hello from hello$/m;
  await check('a pod resolves kubernetes.default (CoreDNS, search path)', { pod: true }, 'getent hosts kubernetes.default', new RegExp(`^${esc(kubernetesIp)}\\s+kubernetes\\.default\\.svc\\.cluster\\.local`, 'm'));
  await check('a pod resolves a Service name', { pod: true }, 'getent hosts hello', new RegExp(`^${esc(helloClusterIp)}\\s+hello\\.default\\.svc\\.cluster\\.local`, 'm'));
  await check('a pod reaches a ClusterIP Service by name (backend on the other node)', { pod: true }, 'curl -sS --max-time 5 http://hello/', hello);
  await check('a pod reaches a pod on the other node by its IP', { pod: true }, `curl -sS --max-time 5 http://${o.helloPodIp}:8080/`, hello);
  // No NAT between pods (Kubernetes' network model): the pod on the other node sees the client's own address.
  await check('a pod on the other node sees the client pod\'s own address (no NAT between pods)', { pod: true }, `curl -sS --max-time 5 http://${echoIp}:8080/clientip`, new RegExp(`^${esc(clientIp)}:\\d+$`, 'm'));
  await check('a node reaches the ClusterIP', { node: o.cp }, `curl -sS --max-time 5 http://${helloClusterIp}/`, hello);
  for (const [from, to] of Object.keys(o.nodeIps).flatMap((a) => Object.keys(o.nodeIps).filter((b) => b !== a).map((b) => [a, b] as const))) {
    await check(`${from} reaches the NodePort on ${to} (${o.nodeIps[to]}:${nodePort})`, { node: from }, `curl -sS --max-time 5 http://${o.nodeIps[to]}:${nodePort}/`, hello);
  }
  return { kubernetesIp, helloClusterIp, checks };
}

function run(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { maxBuffer: 16 << 20 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(String(stdout)))),
  );
}

/** The e2e fixture's bin folder (e2e.test), or a loud error saying how to build it. */
export async function e2eBin(): Promise<string> {
  const listing = await run('bash', [path.join(repo, 'scripts/fixtures/build.sh'), '--list']);
  if (!/^e2e \S+ built /m.test(listing)) {
    throw new Error('the conformance smoke needs upstream e2e.test: the e2e fixture is not built (run: bash scripts/fixtures/build.sh e2e, ~30 min cold; scripts/setup.sh builds it)');
  }
  const bin = (await run('bash', [path.join(repo, 'scripts/fixtures/build.sh'), '--bin', 'e2e'])).trim();
  if (!existsSync(path.join(bin, 'e2e.test'))) throw new Error(`no e2e.test in ${bin}`);
  return bin;
}

export interface ConformanceResult {
  readonly code: number;
  /** run.sh's per-test lines and summary table. */
  readonly output: string;
  /** results.tsv rows: status (passed, failed, skipped, missing, notrun), seconds, name, detail. */
  readonly results: { status: string; seconds: number; name: string; detail: string }[];
  /** Where the report (junit.xml, results.tsv, summary.txt, e2e.log) was copied on the host. */
  readonly reportDir: string;
}

/** The selections tests/conformance/ names (run.sh --selection NAME); anything else is a file. */
export const namedSelections: readonly string[] = ['ci', 'smoke', 'full'];

export interface ConformanceOptions {
  readonly selection: string;
  readonly hostReportDir: string;
  readonly timeoutMin: number;
  /** parallel ginkgo processes (run.sh --nodes; default 1) */
  readonly nodes?: number;
  readonly extraArgs?: readonly string[];
  /**
   * Where e2e.test runs. 'guest' (default): inside `cp`, beside the API server and etcd, every
   * kubectl and e2e process emulated under TCG. 'host': on this machine, natively, against the API
   * server through the control plane's `--forward 6443` port (the guest must have been launched with
   * it); the guest only serves. The tests reach pods and nodes through the API server (exec, proxy,
   * port-forward), as upstream's conformance image does from inside a pod.
   */
  readonly runner?: 'guest' | 'host';
}

/**
 * Runs a conformance selection (ci, smoke, full or a file) against the cluster of `cp`, inside it or
 * from the host (ConformanceOptions.runner); the report lands in `hostReportDir`.
 */
export async function runConformance(lab: Lab, cp: string, o: ConformanceOptions): Promise<ConformanceResult> {
  let runner = `inside ${cp}`;
  let res: { stdout: string; stderr: string } | undefined;
  if (o.runner === 'host') {
    const kubeconfig = await hostKubeconfig(lab, cp).catch((err: unknown) => {
      // Loud, and in the report: an hour of cluster bring-up is not thrown away for it.
      runner = `inside ${cp}, because the host runner could not reach the API server: ${err instanceof Error ? err.message : String(err)}`;
      process.stdout.write(`\n*** conformance: ${runner}\n\n`);
      return undefined;
    });
    if (kubeconfig) {
      runner = `this machine (e2e.test and kubectl native, the API server through ${cp}'s forwarded port)`;
      res = await runOnHost(lab, o, kubeconfig);
    }
  }
  res ??= await runInGuest(lab, cp, o);
  await fsp.appendFile(path.join(o.hostReportDir, 'summary.txt'), `runner: ${runner}\n`).catch(() => undefined);
  return readConformanceReport(o.hostReportDir, res.stdout + res.stderr);
}

/** A kubeconfig for this machine: the control plane's admin.conf through its forwarded API server port, checked with kubectl. */
async function hostKubeconfig(lab: Lab, cp: string): Promise<{ file: string; kubectl: string }> {
  const port = await lab.forwardedPort(cp, 6443);
  const admin = await lab.ssh(cp, 'cat /etc/kubernetes/admin.conf');
  if (admin.code !== 0) throw new Error(`${cp}: reading /etc/kubernetes/admin.conf: ${admin.stderr}`);
  // The API server's certificate names 127.0.0.1 (apiServerSans), so only the address changes.
  const file = path.join(lab.workDir, 'admin-host.conf');
  await fsp.writeFile(file, admin.stdout.replace(/^(\s*server:\s*)https:\/\/\S+$/m, `$1https://127.0.0.1:${port}`), { mode: 0o600 });
  const kubectlBin = path.join((await run('bash', [path.join(repo, 'scripts/fixtures/build.sh'), '--bin', 'kubernetes'])).trim(), 'kubectl');
  await run(kubectlBin, ['--kubeconfig', file, 'get', 'nodes', '-o', 'name']);
  lab.mark(`conformance: kubectl on this machine reaches the API server at 127.0.0.1:${port}`);
  return { file, kubectl: kubectlBin };
}

/** e2e.test and kubectl run here, natively; run.sh writes the report straight into hostReportDir. */
async function runOnHost(lab: Lab, o: ConformanceOptions, kc: { file: string; kubectl: string }): Promise<{ stdout: string; stderr: string }> {
  const bin = await e2eBin();
  const selection = namedSelections.includes(o.selection) ? o.selection : path.resolve(o.selection);
  await fsp.rm(o.hostReportDir, { recursive: true, force: true });
  lab.mark(`conformance ${o.selection}: e2e.test on this machine`);
  const args = [
    path.join(repo, 'scripts/conformance/run.sh'), '--e2e', path.join(bin, 'e2e.test'), '--kubeconfig', kc.file, '--kubectl-path', kc.kubectl,
    '--selection', selection, '--report-dir', o.hostReportDir, '--timeout', `${o.timeoutMin}m`, '--nodes', String(o.nodes ?? 1),
    ...(o.extraArgs?.length ? ['--', ...o.extraArgs] : []),
  ];
  // run.sh exits 1 when a test failed: the report's results decide, as in the guest. Its output is
  // shown as it comes; the guest runner keeps the same 200 kB tail.
  const res = await runStreaming('bash', args, { timeoutMs: (o.timeoutMin + 10) * 60_000 });
  return { stdout: res.stdout.slice(-200_000), stderr: res.stderr.slice(-20_000) };
}

/**
 * e2e.test, run.sh and the selection files are served from the host (10.0.2.2) and fetched by the
 * guest; the report comes back to `hostReportDir`.
 */
async function runInGuest(lab: Lab, cp: string, o: ConformanceOptions): Promise<{ stdout: string; stderr: string }> {
  const nodes = o.nodes ?? 1;
  const bin = await e2eBin();
  const stage = path.join(lab.workDir, 'conformance-serve');
  await fsp.mkdir(stage, { recursive: true });
  // Linked, not copied: e2e.test is 100 MB and the server reads through links.
  await fsp.rm(path.join(stage, 'e2e.test'), { force: true });
  await fsp.symlink(path.join(bin, 'e2e.test'), path.join(stage, 'e2e.test'));
  const bins = ['e2e.test', ...(nodes > 1 ? ['ginkgo'] : [])];
  if (nodes > 1) {
    await fsp.rm(path.join(stage, 'ginkgo'), { force: true });
    await fsp.symlink(path.join(bin, 'ginkgo'), path.join(stage, 'ginkgo'));
  }
  await fsp.copyFile(path.join(repo, 'scripts/conformance/run.sh'), path.join(stage, 'run.sh'));
  for (const f of await fsp.readdir(path.join(repo, 'tests/conformance'))) {
    if (f.endsWith('.txt')) await fsp.copyFile(path.join(repo, 'tests/conformance', f), path.join(stage, f));
  }
  // A selection file of the user's own goes beside them.
  if (!namedSelections.includes(o.selection)) await fsp.copyFile(path.resolve(o.selection), path.join(stage, path.basename(o.selection)));
  const server = await serveDir(stage, '/');
  const dir = '/root/conformance';
  try {
    const files = [...bins, 'run.sh', ...(await fsp.readdir(stage)).filter((f) => f.endsWith('.txt'))];
    const fetch = files.map((f) => `curl -fsS -o ${dir}/${f} http://10.0.2.2:${server.port}/${f}`).join(' && ');
    const got = await lab.ssh(cp, `mkdir -p ${dir} && ${fetch} && chmod +x ${bins.map((b) => `${dir}/${b}`).join(' ')} ${dir}/run.sh`, 600_000);
    if (got.code !== 0) throw new Error(`${cp}: fetching ${bins.join(', ')} and run.sh: ${got.stderr}`);
  } finally {
    await server.close();
  }
  lab.mark(`conformance ${o.selection}: e2e.test in ${cp}`);
  const selection = namedSelections.includes(o.selection) ? o.selection : `${dir}/${path.basename(o.selection)}`;
  const cmd = [
    `${dir}/run.sh --e2e ${dir}/e2e.test --kubeconfig /etc/kubernetes/admin.conf --kubectl-path /usr/local/bin/kubectl`,
    `--selection ${selection} --report-dir ${dir}/report --timeout ${o.timeoutMin}m --nodes ${nodes}`,
    ...(o.extraArgs?.length ? ['--', ...o.extraArgs] : []),
  ].join(' ');
  const res = await lab.ssh(cp, `${cmd} 2>&1 | tail -c 200000`, (o.timeoutMin + 10) * 60_000);
  // `| tail` hides run.sh's exit status: the report's results decide.
  await fsp.mkdir(o.hostReportDir, { recursive: true });
  for (const f of ['junit.xml', 'results.tsv', 'summary.txt', 'e2e.log']) {
    const r = await lab.ssh(cp, `base64 -w0 ${dir}/report/${f}`, 300_000);
    if (r.code === 0) await fsp.writeFile(path.join(o.hostReportDir, f), Buffer.from(r.stdout.trim(), 'base64'));
  }
  return res;
}

/** Reads a report folder's results.tsv (and keeps a copy of it in the history beside it). */
async function readConformanceReport(hostReportDir: string, output: string): Promise<ConformanceResult> {
  const tsv = await fsp.readFile(path.join(hostReportDir, 'results.tsv'), 'utf8').catch(() => '');
  // Every run's results are kept beside the latest, so that scripts/conformance/history.sh can tell
  // which tests passed twice in a row (issue 18's bar) across runs and sessions.
  if (tsv.trim() !== '') {
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    const kept = path.join(path.dirname(hostReportDir), 'history', `${stamp}-${path.basename(hostReportDir)}`);
    await fsp.mkdir(kept, { recursive: true });
    for (const f of ['results.tsv', 'summary.txt']) await fsp.copyFile(path.join(hostReportDir, f), path.join(kept, f)).catch(() => undefined);
  }
  const results = tsv
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [status = '', seconds = '0', name = '', detail = ''] = l.split('\t');
      return { status, seconds: Number(seconds), name, detail };
    });
  const failed = results.filter((r) => r.status !== 'passed' && r.status !== 'skipped');
  return { code: results.length > 0 && failed.length === 0 ? 0 : 1, output, results, reportDir: hostReportDir };
}
