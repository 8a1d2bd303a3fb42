// Disruption-aware apply (issue 19, item 2) against a REAL kube-apiserver on etcd (addons-harness.ts):
// cordon, drain through the Eviction API with a real PodDisruptionBudget check, wait for Ready,
// uncordon, all with a node's own credentials (system:node:worker-1, as the kubelet's kubeconfig
// holds them), through the NodeRestriction admission plugin and the Node authorizer the control
// plane renders. What no controller runs here, the test does in their place, in plain sight: it
// registers the Node and posts its Ready status (the kubelet), marks pods Running and Ready and
// finishes the deletion of evicted pods (the kubelet), and writes the budget's status (the
// disruption controller). The decision which run is disruptive is the unit-tested prediction; the
// graph here is two fake tasks: a changed kubelet drop-in source that notifies the kubelet unit.
import * as http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isUnreachable } from '../../src/addons/kube-api.ts';
import { afterWalk, beforeWalk, type DrainGuardOptions } from '../../src/app/drain-guard.ts';
import { cordonAnnotation, kubeconfigClient, NodeApi, type NodeObject, type PodObject } from '../../src/app/drain.ts';
import { Graph } from '../../src/engine/graph.ts';
import { silentLogger } from '../../src/engine/log.ts';
import { readCa } from '../../src/engine/pki/cluster-pki.ts';
import { issueLeaf } from '../../src/engine/pki/x509.ts';
import { noStateStore } from '../../src/engine/state-store.ts';
import type { Task, TaskKey } from '../../src/engine/task.ts';
import { ControlPlaneWorld } from './addons-harness.ts';
import { freePort } from './process-util.ts';

const ns = 'drain-test';
const kubeconfigPath = '/etc/kubernetes/kubelet.conf';
const clientPem = '/var/lib/kubelet/pki/kubelet-client-current.pem';

function task(key: TaskKey, o: { changed?: boolean; notify?: TaskKey[] }): Task<null> {
  return {
    key,
    after: [],
    ...(o.notify ? { notify: o.notify } : {}),
    observe: () => Promise.resolve(null),
    diff: () => (o.changed ? [{ field: 'content', from: 'old', to: 'new' }] : []),
    apply: () => Promise.resolve(),
    react: () => Promise.resolve(),
  };
}

/** A graph whose walk restarts the running kubelet (a changed flags file notifies it), or nothing. */
function graph(restart: boolean) {
  const g = new Graph();
  g.add(task('file:/var/lib/kubelet/kubelet-flags.env', { changed: restart, notify: ['unit:kubelet.service'] }));
  g.add(task('unit:kubelet.service', {}));
  return g.finish();
}

describe('cordon, drain through the Eviction API, uncordon: a node with its own credentials against a real kube-apiserver', () => {
  let w: ControlPlaneWorld;
  let node: NodeApi;
  let healthz: http.Server;
  let healthy = true;
  let healthzUrl = '';
  let kubelet: ReturnType<typeof setInterval> | undefined;

  const admin = async (method: string, p: string, body?: unknown, contentType = 'application/json') => {
    const res = await w.admin.request(method, p, { ...(body !== undefined ? { body: JSON.stringify(body), contentType } : {}) });
    if (isUnreachable(res)) throw new Error(`${method} ${p}: ${res.unreachable}`);
    if (res.status >= 300) throw new Error(`${method} ${p}: HTTP ${res.status}: ${res.body.toString()}`);
    return JSON.parse(res.body.toString()) as Record<string, unknown>;
  };
  const nodeObject = async (): Promise<NodeObject> => (await admin('GET', '/api/v1/nodes/worker-1')) as unknown as NodeObject;
  const podNames = async (): Promise<string[]> =>
    (((await admin('GET', `/api/v1/namespaces/${ns}/pods`)) as { items: PodObject[] }).items ?? []).map((p) => p.metadata.name).sort();

  /** A pod bound to `nodeName`, then Running and Ready (as its kubelet would report it). */
  const pod = async (name: string, o: { labels?: Record<string, string>; owner?: { kind: string; name: string }; mirror?: boolean; nodeName?: string } = {}) => {
    await admin('POST', `/api/v1/namespaces/${ns}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        labels: o.labels ?? {},
        ...(o.mirror ? { annotations: { 'kubernetes.io/config.mirror': 'hash' } } : {}),
        ...(o.owner ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: o.owner.kind, name: o.owner.name, uid: `00000000-0000-0000-0000-${o.owner.name.padStart(12, '0').slice(-12)}`, controller: true }] } : {}),
      },
      spec: { nodeName: o.nodeName ?? 'worker-1', automountServiceAccountToken: false, containers: [{ name: 'c', image: 'registry.k8s.io/pause:3.10.1' }] },
    });
    await admin('PATCH', `/api/v1/namespaces/${ns}/pods/${name}/status`, { status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } }, 'application/merge-patch+json');
  };
  const budget = async (disruptionsAllowed: number) => {
    const pdb = (await admin('GET', `/apis/policy/v1/namespaces/${ns}/poddisruptionbudgets/web`)) as { metadata: { generation: number } };
    await admin('PATCH', `/apis/policy/v1/namespaces/${ns}/poddisruptionbudgets/web/status`, {
      status: { observedGeneration: pdb.metadata.generation, disruptionsAllowed, currentHealthy: 2, desiredHealthy: 1, expectedPods: 2 },
    }, 'application/merge-patch+json');
  };
  const opts = (restart: boolean, extra: Partial<DrainGuardOptions> = {}): DrainGuardOptions => ({
    host: w.host,
    log: silentLogger,
    graph: graph(restart),
    ctx: { store: noStateStore },
    nodeName: 'worker-1',
    live: true,
    kubeconfigPath,
    kubeletHealthzUrl: healthzUrl,
    drain: true,
    drainTimeoutMs: 30_000,
    readyTimeoutMs: 20_000,
    pollMs: 200,
    ...extra,
  });

  beforeAll(async () => {
    w = await ControlPlaneWorld.start();
    // The kubelet's kubeconfig after its TLS bootstrap: CA embedded, one file with certificate and key.
    const ca = await readCa(w.store, 'ca');
    await w.host.fs.mkdirp('/var/lib/kubelet/pki', 0o700);
    await w.host.fs.mkdirp('/etc/kubernetes', 0o755);
    const identity = async (nodeName: string, pemPath: string): Promise<void> => {
      const leaf = await issueLeaf(ca, { commonName: `system:node:${nodeName}`, organizations: ['system:nodes'], usages: ['client'], validityDays: 1 });
      await w.host.fs.writeAtomic(pemPath, leaf.certPem + leaf.keyPem, { mode: 0o600 });
    };
    await identity('worker-1', clientPem);
    await identity('worker-9', '/var/lib/kubelet/pki/worker-9.pem');
    const kc = (server: string, pem = clientPem) => [
      'apiVersion: v1', 'kind: Config',
      'clusters:', '- name: default-cluster', '  cluster:', `    server: ${server}`, `    certificate-authority-data: ${Buffer.from(w.caPem).toString('base64')}`,
      'users:', '- name: default-auth', '  user:', `    client-certificate: ${pem}`, `    client-key: ${pem}`,
      'contexts:', '- name: default-context', '  context: {cluster: default-cluster, user: default-auth}', 'current-context: default-context', '',
    ].join('\n');
    await w.host.fs.writeAtomic(kubeconfigPath, kc(w.server), { mode: 0o600 });
    await w.host.fs.writeAtomic('/etc/kubernetes/unreachable.conf', kc(`https://127.0.0.1:${await freePort()}`), { mode: 0o600 });
    await w.host.fs.writeAtomic('/etc/kubernetes/worker-9.conf', kc(w.server, '/var/lib/kubelet/pki/worker-9.pem'), { mode: 0o600 });
    await w.host.fs.writeAtomic('/etc/kubernetes/no-cert.conf', kc(w.server, '/var/lib/kubelet/pki/missing.pem'), { mode: 0o600 });
    const api = await kubeconfigClient(w.host, kubeconfigPath);
    node = new NodeApi(w.host, api!, 'worker-1');

    // The kubelet's part: register the Node (NodeRestriction lets a node create only itself), report Ready.
    const reg = await node.api.request('POST', '/api/v1/nodes', { body: JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'worker-1' } }), contentType: 'application/json' });
    expect(isUnreachable(reg) ? reg.unreachable : reg.status).toBe(201);
    const now = new Date().toISOString();
    const st = await node.api.request('PATCH', '/api/v1/nodes/worker-1/status', {
      body: JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'test', lastHeartbeatTime: now, lastTransitionTime: now }] } }),
      contentType: 'application/merge-patch+json',
    });
    expect(isUnreachable(st) ? st.unreachable : st.status).toBe(200);

    await admin('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'worker-2' } });
    await admin('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await admin('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } });
    await admin('POST', `/apis/policy/v1/namespaces/${ns}/poddisruptionbudgets`, {
      apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'web' }, spec: { minAvailable: 1, selector: { matchLabels: { app: 'web' } } },
    });
    await budget(0);
    await pod('web-1', { labels: { app: 'web' }, owner: { kind: 'ReplicaSet', name: 'web' } });
    await pod('web-2', { labels: { app: 'web' }, owner: { kind: 'ReplicaSet', name: 'web' } });
    await pod('proxy', { owner: { kind: 'DaemonSet', name: 'proxy' } });
    await pod('static', { mirror: true });
    await pod('bare');
    await pod('elsewhere', { nodeName: 'worker-2', owner: { kind: 'ReplicaSet', name: 'other' } });

    // The kubelet's part: finish the deletion of pods that are being deleted.
    kubelet = setInterval(() => {
      void (async () => {
        const res = await w.admin.request('GET', `/api/v1/namespaces/${ns}/pods`);
        if (isUnreachable(res) || res.status !== 200) return;
        for (const p of (JSON.parse(res.body.toString()) as { items: PodObject[] }).items) {
          if (p.metadata.deletionTimestamp) await w.admin.request('DELETE', `/api/v1/namespaces/${ns}/pods/${p.metadata.name}`, { body: JSON.stringify({ gracePeriodSeconds: 0 }), contentType: 'application/json' });
        }
      })();
    }, 250);

    healthz = http.createServer((_req, res) => {
      res.writeHead(healthy ? 200 : 500).end(healthy ? 'ok' : '[-]syncloop failed');
    });
    const port = await freePort();
    await new Promise<void>((r) => healthz.listen(port, '127.0.0.1', r));
    healthzUrl = `http://127.0.0.1:${port}/healthz`;
  }, 300_000);

  afterAll(async () => {
    if (kubelet) clearInterval(kubelet);
    await new Promise((r) => (healthz ? healthz.close(r) : r(undefined)));
    await w?.stop();
  });

  it('the node may not evict a pod bound to another node, nor cordon or even read another node (NodeRestriction, Node authorizer)', async () => {
    const ev = await node.api.request('POST', `/api/v1/namespaces/${ns}/pods/elsewhere/eviction`, {
      body: JSON.stringify({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'elsewhere', namespace: ns } }),
      contentType: 'application/json',
    });
    expect(isUnreachable(ev) ? ev.unreachable : ev.status).toBe(403);
    const other = await node.api.request('PATCH', '/api/v1/nodes/worker-2', { body: '{"spec":{"unschedulable":true}}', contentType: 'application/merge-patch+json' });
    expect(isUnreachable(other) ? other.unreachable : other.status).toBe(403);
    await expect(new NodeApi(w.host, node.api, 'worker-2').node()).rejects.toThrow(/cannot read Node worker-2: HTTP 403: .*only its own Node object/);
  });

  it('a budget that allows no disruption: the drain times out naming the pods, and the node is schedulable again', async () => {
    const err = await beforeWalk(opts(true, { drainTimeoutMs: 3000 })).then(() => undefined, (e: unknown) => e as Error);
    expect(err?.message).toMatch(/cannot drain Node worker-1 before the drain timeout: drain-test\/web-1: .*disruption budget/);
    expect(err?.message).toContain('drain-test/web-2');
    const n = await nodeObject();
    expect(n.spec?.unschedulable).toBeUndefined();
    expect(n.metadata.annotations?.[cordonAnnotation]).toBeUndefined();
    // No budget covers the pod without a controller: it went in the first round.
    expect(await podNames()).toEqual(['elsewhere', 'proxy', 'static', 'web-1', 'web-2']);
  });

  it('with room in the budget: cordons, evicts all but mirror and DaemonSet pods, waits until they are gone', async () => {
    await budget(2);
    const g = await beforeWalk(opts(true));
    expect(g?.record).toEqual({ restarts: ['unit:kubelet.service (file:/var/lib/kubelet/kubelet-flags.env)'], drain: 'drained', evicted: ['drain-test/web-1', 'drain-test/web-2'] });
    expect(g?.ours).toBe(true);
    const n = await nodeObject();
    expect(n.spec?.unschedulable).toBe(true);
    expect(n.metadata.annotations?.[cordonAnnotation]).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(await podNames()).toEqual(['elsewhere', 'proxy', 'static']);

    // A walk that failed: the node stays cordoned.
    expect(await afterWalk(g!, false, opts(true))).toMatchObject({ drain: 'drained', uncordoned: false });
    expect((await nodeObject()).spec?.unschedulable).toBe(true);
    // Converged, but the restarted kubelet is not healthy: not Ready, still cordoned, and the error says why.
    healthy = false;
    await expect(afterWalk(g!, true, opts(true, { readyTimeoutMs: 1000 }))).rejects.toThrow(/Node worker-1 is not Ready after the change: kubelet http:\/\/127\.0\.0\.1:\d+\/healthz: HTTP 500: \[-\]syncloop failed; it stays cordoned/);
    expect((await nodeObject()).spec?.unschedulable).toBe(true);
    healthy = true;
    expect(await afterWalk(g!, true, opts(true))).toMatchObject({ drain: 'drained', uncordoned: true });
    const after = await nodeObject();
    expect(after.spec?.unschedulable).toBeUndefined();
    expect(after.metadata.annotations?.[cordonAnnotation]).toBeUndefined();
  });

  it("a cordon left by a run that died is lifted by the next run that converges, even one that restarts nothing", async () => {
    await node.cordon(new Date().toISOString());
    const g = await beforeWalk(opts(false));
    expect(g?.record).toEqual({ restarts: [], drain: 'none' });
    expect(await afterWalk(g!, true, opts(false))).toMatchObject({ uncordoned: true });
    expect((await nodeObject()).spec?.unschedulable).toBeUndefined();
    // With nothing to restart and no cordon of nodeup's: nothing to guard.
    expect(await beforeWalk(opts(false))).toBeUndefined();
  });

  it("an operator's cordon is kept: the node is drained but never uncordoned by nodeup", async () => {
    await pod('web-3', { labels: { app: 'web' }, owner: { kind: 'ReplicaSet', name: 'web' } });
    await budget(1);
    await admin('PATCH', '/api/v1/nodes/worker-1', { spec: { unschedulable: true } }, 'application/merge-patch+json');
    const g = await beforeWalk(opts(true));
    expect(g?.record.evicted).toEqual(['drain-test/web-3']);
    expect(g?.ours).toBe(false);
    expect(await afterWalk(g!, true, opts(true))).toMatchObject({ uncordoned: false });
    const n = await nodeObject();
    expect(n.spec?.unschedulable).toBe(true);
    expect(n.metadata.annotations?.[cordonAnnotation]).toBeUndefined();
    await admin('PATCH', '/api/v1/nodes/worker-1', { spec: { unschedulable: null } }, 'application/merge-patch+json');
  });

  it('no drain for a Node that is not registered, nor without a kubelet kubeconfig, nor off a live host; an API server that does not answer is said', async () => {
    // worker-9's own credentials, and no Node worker-9 yet (its kubelet has not registered it).
    expect(await beforeWalk(opts(true, { nodeName: 'worker-9', kubeconfigPath: '/etc/kubernetes/worker-9.conf' }))).toBeUndefined();
    expect(await beforeWalk(opts(true, { kubeconfigPath: '/etc/kubernetes/absent.conf' }))).toBeUndefined();
    expect(await beforeWalk(opts(true, { live: false }))).toBeUndefined();
    const g = await beforeWalk(opts(true, { kubeconfigPath: '/etc/kubernetes/unreachable.conf' }));
    expect(g?.record.drain).toBe('skipped');
    expect(g?.record.skippedBecause).toMatch(/^the API server does not answer \(https:\/\/127\.0\.0\.1:\d+/);
    // Credential files that cannot be read: this kubelet cannot reach the API server either.
    const noCert = await beforeWalk(opts(true, { kubeconfigPath: '/etc/kubernetes/no-cert.conf' }));
    expect(noCert?.record.drain).toBe('skipped');
    expect(noCert?.record.skippedBecause).toMatch(/^the kubelet's credentials cannot be read \(.*missing\.pem does not exist\)$/);
    // --no-drain: says so, touches nothing.
    const off = await beforeWalk(opts(true, { drain: false }));
    expect(off?.record).toEqual({ restarts: ['unit:kubelet.service (file:/var/lib/kubelet/kubelet-flags.env)'], drain: 'skipped', skippedBecause: '--no-drain' });
    expect((await nodeObject()).spec?.unschedulable).toBeUndefined();
  });
});
