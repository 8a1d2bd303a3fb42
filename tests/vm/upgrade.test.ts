// Issue 19, "done when" 1: an in-place upgrade under load. A cluster of one control plane (taking
// workloads) and one worker is created at the minor before (v1.34, fixture kubernetes134) from the
// stock image through cloud-init; a Deployment of 3 replicas spread over both nodes, behind a
// NodePort Service and a PodDisruptionBudget (minAvailable 2), serves a client on this machine that
// asks it 4 times a second through the worker's forwarded NodePort. The cluster is then moved to
// v1.35 by changing the configs, publishing them and rolling them out with `nodeup ssh apply
// --instances`, the control-plane group first (its boot config's group only), then the workers:
// each node is drained (Eviction API, the budget respected), its kubelet, control plane and
// kube-proxy replaced, and uncordoned, and each rollout is gated on Ready (and the etcd member).
// Checked: both rollouts pass their gates, the API server and both kubelets report v1.35.4, the
// receipts name the new configs, the Deployment is whole again, and the client's failed requests
// (the figure the issue asks for; goal 0), which the test prints and writes to
// $NODEUP_CONFORMANCE_REPORTS/../upgrade-<UTC stamp>.json (default ~/.cache/nodeup/reports).
//
// Not part of `bash scripts/test.sh` (about 50 min under TCG, and it needs the v1.34 fixture):
//   bash scripts/fixtures/build.sh kubernetes134 && bash scripts/vm/setup.sh
//   NODEUP_VM_UPGRADE=1 npx vitest run --project vm tests/vm/upgrade.test.ts
// Without NODEUP_VM_UPGRADE=1 the file says so and fails, so it is never skipped silently.
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeLayout } from '../../src/engine/state-store.ts';
import { configHash } from '../../src/model/config.ts';
import { binary, nodeup } from './harness.ts';
import { expectNodeRoutes, systemPodsReady } from './kube-checks.ts';
import { Lab, kubectl } from './lab.ts';

const enabled = process.env.NODEUP_VM_UPGRADE === '1';
const reports = process.env.NODEUP_CONFORMANCE_REPORTS ?? path.join(os.homedir(), '.cache', 'nodeup', 'reports');
const lab = new Lab('vmup');
const cp = { name: 'vmup-cp-1', ip: '192.168.77.11' };
const wk = { name: 'vmup-node-1', ip: '192.168.77.12' };
/** As the conformance scenario: a control plane under TCG that can stall keeps its leases. */
const leaderElection = { leaseDurationSeconds: 137, renewDeadlineSeconds: 107, retryPeriodSeconds: 26 };
const nodePort = 30080;
/**
 * kube-proxy in iptables mode here: the client reaches the NodePort through QEMU's forward, on the
 * guest's user-mode address (10.0.2.15), and nftables mode takes NodePort traffic on the node's
 * primary address only (its default nodePortAddresses); iptables mode takes it on every local one.
 */
const kubeProxyMode = 'iptables';

/** The workload: 3 replicas spread over the nodes, a budget that keeps 2, a NodePort Service. */
const workload = [
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'hello', namespace: 'default' },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: 'hello' } },
      template: {
        metadata: { labels: { app: 'hello' } },
        spec: {
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: { app: 'hello' } } }],
          terminationGracePeriodSeconds: 30,
          containers: [
            {
              name: 'hello',
              image: 'registry.k8s.io/nodeup-hello:1.0',
              imagePullPolicy: 'IfNotPresent',
              ports: [{ containerPort: 8080 }],
              readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 2 },
              // What an application does to leave a Service without dropping requests: keep serving
              // while the endpoint removal reaches every node's kube-proxy.
              lifecycle: { preStop: { sleep: { seconds: 5 } } },
            },
          ],
        },
      },
    },
  },
  { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'hello', namespace: 'default' }, spec: { minAvailable: 2, selector: { matchLabels: { app: 'hello' } } } },
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'hello', namespace: 'default' },
    spec: { type: 'NodePort', selector: { app: 'hello' }, ports: [{ port: 80, targetPort: 8080, nodePort }] },
  },
];

/** A client on this machine: a GET every 250 ms (2 s timeout) until stopped; counts and keeps the failures. */
function startClient(url: string): { stats: { ok: number; failed: number; failures: string[] }; stop: () => Promise<void> } {
  const stats = { ok: 0, failed: 0, failures: [] as string[] };
  let running = true;
  const loop = (async (): Promise<void> => {
    while (running) {
      const at = new Date().toISOString();
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
        const body = await res.text();
        if (res.ok && body.startsWith('hello from ')) stats.ok++;
        else {
          stats.failed++;
          stats.failures.push(`${at} HTTP ${res.status} ${body.slice(0, 80)}`);
        }
      } catch (err: unknown) {
        stats.failed++;
        stats.failures.push(`${at} ${err instanceof Error ? err.message : String(err)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return {
    stats,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

interface NodeVersions { items: { metadata: { name: string }; status: { nodeInfo: { kubeletVersion: string } } }[] }

async function kubeletVersions(): Promise<Record<string, string>> {
  const r = await lab.ssh(cp.name, kubectl('get nodes -o json'));
  if (r.code !== 0) throw new Error(`kubectl get nodes: ${r.stderr}`);
  return Object.fromEntries((JSON.parse(r.stdout) as NodeVersions).items.map((n) => [n.metadata.name, n.status.nodeInfo.kubeletVersion]));
}

/** A boot config for the new NodeConfig: the guest's own, with the new hash pinned. */
async function bootFor(name: string, config: string, file: string): Promise<string> {
  const boot = (await lab.ssh(name, 'cat /etc/nodeup/boot.yaml')).stdout;
  if (!/nodeConfigHash: sha256:/.test(boot)) throw new Error(`${name}: /etc/nodeup/boot.yaml pins no NodeConfig: ${boot}`);
  return lab.writeFile(file, boot.replace(/nodeConfigHash: \S+/, `nodeConfigHash: ${configHash(config)}`));
}

describe('in-place upgrade v1.34 -> v1.35 under load (issue 19)', () => {
  beforeAll(async () => {
    if (enabled) await lab.setup();
  });
  afterAll(() => (enabled ? lab.teardown() : undefined));

  it('rolls a v1.34 cluster to v1.35 with nodeup ssh apply --instances, group by group, while a client keeps asking a Service behind a PodDisruptionBudget', async () => {
    if (!enabled) {
      throw new Error('NOT RUN: the upgrade scenario takes about 50 min under TCG and needs fixture kubernetes134; run it with NODEUP_VM_UPGRADE=1 (tests/vm/upgrade.test.ts says how). scripts/test.sh excludes this file and says so.');
    }
    const client: { current?: ReturnType<typeof startClient> } = {};
    try {
      const cp134 = lab.nodeConfig({ role: 'control-plane', ig: 'control-plane', cpIp: cp.ip, services: true, untainted: true, leaderElection, kubeProxyMode, kubernetes: 'prev' });
      const wk134 = lab.nodeConfig({ role: 'worker', ig: 'nodes', cpIp: cp.ip, services: true, leaderElection, kubeProxyMode, kubernetes: 'prev' });
      await lab.publishNodeConfig('nodes', wk134);
      const launched = lab.launch(cp.name, { nodeConfig: await lab.writeFile('cp-134.yaml', cp134), memoryMiB: 4096, args: ['--forward', '6443'] });
      await lab.waitForInstance(cp.name);
      const wkLaunched = lab.launch(wk.name, { nodeConfig: await lab.writeFile('nodes-134.yaml', wk134), memoryMiB: 3072, stateStore: pathToFileURL(lab.storeDir).href, args: ['--forward', String(nodePort)] });
      await lab.waitForInstance(wk.name);
      expect((await launched).code, 'nodeup launch (control plane) exit code').toBe(0);
      await lab.copyJoinMaterial(cp.name);
      expect((await wkLaunched).code, 'nodeup launch (worker) exit code').toBe(0);
      const nodes = await lab.nodesReady(cp.name, [cp.name, wk.name]);
      const podCidr = (name: string): string => nodes.items.find((i) => i.metadata.name === name)?.spec.podCIDR ?? '';
      await expectNodeRoutes(lab, cp.name, { [podCidr(wk.name)]: wk.ip });
      await expectNodeRoutes(lab, wk.name, { [podCidr(cp.name)]: cp.ip });
      await systemPodsReady(lab, cp.name, 'kube-proxy-', 2);
      await systemPodsReady(lab, cp.name, 'coredns-', 1);
      const prev = `v${lab.env.KUBELET_PREV_VERSION}`;
      expect(await kubeletVersions(), 'both kubelets at the minor before').toEqual({ [cp.name]: prev, [wk.name]: prev });
      lab.mark(`cluster Ready at ${prev}`);

      // The workload, and the client through the worker's NodePort.
      const applied = await lab.ssh(cp.name, `${kubectl('apply -f -')} <<'EOF'\n${workload.map((o) => JSON.stringify(o)).join('\n---\n')}\nEOF`);
      expect(applied.code, `kubectl apply: ${applied.stderr}`).toBe(0);
      await lab.waitFor('the hello Deployment 3/3 available', 900_000, async () => {
        const r = await lab.ssh(cp.name, kubectl("get deployment hello -o 'jsonpath={.status.availableReplicas}'"));
        return r.stdout.trim() === '3' ? { ok: true } : { last: r.stdout.trim() || r.stderr.trim() };
      });
      client.current = startClient(`http://127.0.0.1:${await lab.forwardedPort(wk.name, nodePort)}/`);
      await lab.waitFor('the client to get 20 answers', 300_000, async () => (client.current!.stats.ok >= 20 ? { ok: true } : { last: `${client.current!.stats.ok} ok, ${client.current!.stats.failed} failed` }), 1000);
      const before = { ...client.current.stats, failures: [...client.current.stats.failures] };
      lab.mark('workload serving the client');

      // v1.35: the control plane's NodeConfig goes to its own store (it was launched with the
      // config in its user-data), the workers' to the store the host serves them.
      const cp135 = lab.nodeConfig({ role: 'control-plane', ig: 'control-plane', cpIp: cp.ip, services: true, untainted: true, leaderElection, kubeProxyMode });
      const wk135 = lab.nodeConfig({ role: 'worker', ig: 'nodes', cpIp: cp.ip, services: true, leaderElection, kubeProxyMode });
      const cpStoreFile = `/var/lib/nodeup/launch-store/${storeLayout.nodeConfig('control-plane')}`;
      const put = await lab.ssh(cp.name, `base64 -d > ${cpStoreFile}.new <<'EOF' && mv ${cpStoreFile}.new ${cpStoreFile}\n${Buffer.from(cp135).toString('base64')}\nEOF`);
      expect(put.code, `publishing the control plane's v1.35 NodeConfig: ${put.stderr}`).toBe(0);
      await lab.publishNodeConfig('nodes', wk135);
      const rollout = async (bootFile: string): Promise<{ code: number; stdout: string; stderr: string }> =>
        nodeup([
          'ssh', 'apply', '--instances', lab.cluster, '--state-dir', lab.stateDir, '--boot-config', bootFile, '--binary', binary, '--identity', lab.keyFile,
          '--insecure-accept-any-host-key', '--drain-timeout', '600', '--ready-timeout', '900', '--gate-timeout', '900', '--remote-log-format', 'json',
        ]);
      const cpRoll = await rollout(await bootFor(cp.name, cp135, 'boot-cp-135.yaml'));
      expect(cpRoll.code, `the control-plane group's rollout: ${cpRoll.stdout.slice(-3000)} ${cpRoll.stderr.slice(-2000)}`).toBe(0);
      expect(cpRoll.stdout, 'the control-plane rollout touched the control plane only').toMatch(new RegExp(`nodeup ssh apply: 1 host\\(s\\)\\n\\s+${cp.name}\\s+ok`));
      const server = await lab.ssh(cp.name, kubectl('version -o json'));
      const next = `v${lab.env.KUBELET_VERSION}`;
      expect((JSON.parse(server.stdout) as { serverVersion: { gitVersion: string } }).serverVersion.gitVersion, 'the API server after the control plane').toBe(next);
      lab.mark(`control plane at ${next}`);
      const wkRoll = await rollout(await bootFor(wk.name, wk135, 'boot-nodes-135.yaml'));
      expect(wkRoll.code, `the workers' rollout: ${wkRoll.stdout.slice(-3000)} ${wkRoll.stderr.slice(-2000)}`).toBe(0);
      lab.mark(`worker at ${next}`);

      expect(await kubeletVersions(), 'both kubelets moved').toEqual({ [cp.name]: next, [wk.name]: next });
      for (const [n, config] of [[cp.name, cp135], [wk.name, wk135]] as const) {
        const receipt = JSON.parse((await lab.ssh(n, 'cat /var/lib/nodeup/status.json')).stdout) as { result: string; configHash?: string };
        expect(receipt, `${n}: its receipt`).toMatchObject({ result: 'converged', configHash: configHash(config) });
      }
      await lab.waitFor('the hello Deployment 3/3 available after the upgrade', 600_000, async () => {
        const r = await lab.ssh(cp.name, kubectl("get deployment hello -o 'jsonpath={.status.availableReplicas}'"));
        return r.stdout.trim() === '3' ? { ok: true } : { last: r.stdout.trim() || r.stderr.trim() };
      });
      await client.current.stop();
      const s = client.current.stats;
      const figure = { at: new Date().toISOString(), from: prev, to: next, requests: s.ok + s.failed, ok: s.ok, failed: s.failed, failedBeforeTheUpgrade: before.failed, failures: s.failures, timings: lab.marks };
      await fsp.mkdir(reports, { recursive: true });
      const out = path.join(reports, `upgrade-${figure.at.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}.json`);
      await fsp.writeFile(out, JSON.stringify(figure, null, 2) + '\n');
      process.stdout.write(`upgrade ${prev} -> ${next}: ${figure.requests} requests through the Service, ${s.failed} failed (${before.failed} of them before the upgrade); ${out}\n`);
      await lab.printTimings();
      expect(s.failures, 'requests that failed while the cluster was upgraded (goal 0)').toEqual([]);
    } catch (err: unknown) {
      await client.current?.stop();
      await lab.diagnoseAll();
      throw err;
    }
  }, 120 * 60_000);
});
