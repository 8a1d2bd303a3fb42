import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NotReadyError } from '../engine/errors.ts';
import { execute } from '../engine/executor.ts';
import { Graph } from '../engine/graph.ts';
import { createTestHost, type TestHost } from '../../tests/support/test-host.ts';
import { silentLogger } from '../engine/log.ts';
import type { NodeModel } from '../model/node-model.ts';
import { nodeRoutesOn } from '../model/config.ts';
import { controlPlaneComponent } from '../controlplane/component.ts';
import { adminKubeconfig } from '../model/paths/controlplane.ts';
import { etcdComponent } from '../etcd/component.ts';
import { cpModel, type CpModelOptions } from '../../tests/support/controlplane-model.ts';
import { bootstrapTokenKey } from '../engine/pki/cluster-pki.ts';
import { renderKubeconfig } from '../engine/pki/kubeconfig.ts';
import { FileStore } from '../statestore/file-store.ts';
import { addonsComponent, apiServerManifestKey, bootstrapTokenSecretId, corednsInput, objectId, loadTokenSecret } from './component.ts';
import { collectionPath, driftedFields, hashAnnotation, managedByLabel, objectPath, objectsYaml, stampObject, type KubeObject } from './kube-object.ts';
import { ManifestTask, manifestKey } from './manifest-task.ts';
import { bootstrapGroup, renderBootstrapRbac, renderBootstrapTokenSecret } from './render-bootstrap.ts';
import { renderCoredns } from './render-coredns.ts';
import { FakeApiServer } from '../../tests/support/kube-api.ts';
import { kubeletConfigInput } from '../kubelet/component.ts';
import { defaultClusterDnsIp } from '../model/service-addresses.ts';
import { taskContext } from '../../tests/support/task-context.ts';

const token = 'abcdef.0123456789abcdef';
const liveModel = (o: CpModelOptions = {}): NodeModel => ({ ...cpModel(o), live: true });

const cases: [string, Record<string, unknown>][] = [
  ['default', { kubernetesVersion: 'v1.35.1' }],
  [
    'private-registry-1.33',
    {
      kubernetesVersion: 'v1.33.5',
      controlPlane: { imageRegistry: 'mirror.internal:5000/k8s' },
      networking: { serviceCIDR: '172.20.0.0/16' },
      kubelet: { clusterDomain: 'corp.local' },
      addons: { nodeProxierForNodes: false, coredns: { replicas: 3, version: 'v1.11.3' } },
    },
  ],
];

describe.each(cases)('addons objects: %s', (name, spec) => {
  it('match the golden files', async () => {
    const m = liveModel({ spec });
    const dir = `testdata/${name}/expected`;
    await expect(objectsYaml([stampObject(renderBootstrapTokenSecret(token))])).toMatchFileSnapshot(`${dir}/bootstrap-token.yaml`);
    await expect(objectsYaml(renderBootstrapRbac({ nodeProxierForNodes: m.spec.addons.nodeProxierForNodes, nodeRoutes: nodeRoutesOn(m.spec.networking) }).map(stampObject))).toMatchFileSnapshot(`${dir}/rbac.yaml`);
    await expect(objectsYaml(renderCoredns(corednsInput(m)).map(stampObject))).toMatchFileSnapshot(`${dir}/coredns.yaml`);
  });
});

describe('renderers', () => {
  it('puts the token id and secret in a bootstrap.kubernetes.io/token Secret named after the id', () => {
    const s = renderBootstrapTokenSecret(token);
    expect(s.metadata).toMatchObject({ name: 'bootstrap-token-abcdef', namespace: 'kube-system' });
    expect(s.type).toBe('bootstrap.kubernetes.io/token');
    const data = Object.fromEntries(Object.entries(s.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
    expect(data).toMatchObject({
      'token-id': 'abcdef',
      'token-secret': '0123456789abcdef',
      'usage-bootstrap-authentication': 'true',
      'usage-bootstrap-signing': 'true',
      'auth-extra-groups': bootstrapGroup,
    });
    expect(data).not.toHaveProperty('expiration');
  });

  it.each(['abcdef0123456789abcdef', 'ABCDEF.0123456789abcdef', 'abcdef.0123', ''])('refuses a malformed token %j, naming the store key', (bad) => {
    expect(() => renderBootstrapTokenSecret(bad, 'secrets/bootstrap-token')).toThrow(/secrets\/bootstrap-token is not a bootstrap token/);
  });

  it('binds the roles kubeadm binds, to nodeup groups', () => {
    const byName = Object.fromEntries(renderBootstrapRbac({ nodeProxierForNodes: true }).map((b) => [b.metadata.name, b]));
    expect(Object.keys(byName).sort()).toEqual([
      'nodeup:apiserver-kubelet-client',
      'nodeup:kubelet-bootstrap',
      'nodeup:node-autoapprove-bootstrap',
      'nodeup:node-autoapprove-certificate-rotation',
      'nodeup:node-proxier',
    ]);
    const role = (n: string): unknown => (byName[n]?.roleRef as { name: string }).name;
    expect(role('nodeup:kubelet-bootstrap')).toBe('system:node-bootstrapper');
    expect(role('nodeup:node-autoapprove-bootstrap')).toBe('system:certificates.k8s.io:certificatesigningrequests:nodeclient');
    expect(role('nodeup:node-autoapprove-certificate-rotation')).toBe('system:certificates.k8s.io:certificatesigningrequests:selfnodeclient');
    expect(role('nodeup:apiserver-kubelet-client')).toBe('system:kubelet-api-admin');
    expect(byName['nodeup:apiserver-kubelet-client']?.subjects).toEqual([{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'kube-apiserver-kubelet-client' }]);
    expect(renderBootstrapRbac({ nodeProxierForNodes: false }).map((b) => b.metadata.name)).not.toContain('nodeup:node-proxier');
  });

  it('lets nodes list Nodes only when nodes route pod subnets themselves', () => {
    const objs = renderBootstrapRbac({ nodeProxierForNodes: false, nodeRoutes: true });
    const role = objs.find((o) => o.kind === 'ClusterRole' && o.metadata.name === 'nodeup:node-routes');
    expect(role?.rules).toEqual([{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] }]);
    const binding = objs.find((o) => o.kind === 'ClusterRoleBinding' && o.metadata.name === 'nodeup:node-routes');
    expect(binding?.subjects).toEqual([{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:nodes' }]);
    // the role is applied before the binding that names it
    expect(objs.indexOf(role!)).toBeLessThan(objs.indexOf(binding!));
    expect(renderBootstrapRbac({ nodeProxierForNodes: false, nodeRoutes: false }).map((o) => o.metadata.name)).not.toContain('nodeup:node-routes');
  });

  it('cluster DNS: the ClusterIP kubelet points pods at (one rule: clusterDNS, else the 10th service address)', () => {
    for (const serviceCIDR of ['10.96.0.0/12', '172.20.0.0/16', '10.0.0.240/28']) {
      const m = liveModel({ spec: { networking: { serviceCIDR } } });
      expect(corednsInput(m).clusterIP).toBe(kubeletConfigInput(m).clusterDNS[0]);
    }
    expect(corednsInput(liveModel({ spec: { networking: { serviceCIDR: '10.0.0.240/28' } } })).clusterIP).toBe('10.0.0.250');
    expect(corednsInput(liveModel({ spec: { kubelet: { clusterDNS: ['10.96.0.53'] } } })).clusterIP).toBe('10.96.0.53');
    expect(defaultClusterDnsIp('fd00::/108')).toBe('fd00::a');
  });

  it('CoreDNS image: own registry, else the control plane registry; version from the release table', () => {
    expect(corednsInput(liveModel({ spec: { kubernetesVersion: 'v1.35.1' } }))).toMatchObject({ imageRegistry: 'registry.k8s.io', version: 'v1.12.1' });
    expect(corednsInput(liveModel({ spec: { addons: { coredns: { imageRegistry: 'reg.example/dns' } } } })).imageRegistry).toBe('reg.example/dns');
  });
});

describe('kube objects', () => {
  it('REST paths for core, grouped, namespaced and cluster-scoped kinds', () => {
    expect(objectPath(renderBootstrapTokenSecret(token))).toBe('/api/v1/namespaces/kube-system/secrets/bootstrap-token-abcdef');
    expect(objectPath({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'nodeup:x' } })).toBe(
      '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/nodeup%3Ax',
    );
    expect(collectionPath('apps/v1', 'Deployment', 'kube-system')).toBe('/apis/apps/v1/namespaces/kube-system/deployments');
    expect(() => objectPath({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } })).toThrow(/does not know the REST path/);
    expect(() => collectionPath('v1', 'Secret')).toThrow(/namespaced/);
  });

  it('every object the component renders has a known REST path', () => {
    for (const o of [renderBootstrapTokenSecret(token), ...renderBootstrapRbac({ nodeProxierForNodes: true }), ...renderCoredns(corednsInput(liveModel()))]) {
      expect(() => objectPath(o)).not.toThrow();
    }
  });

  it('stamps the managed-by label and a hash that changes with the content only', () => {
    const a = stampObject(renderBootstrapTokenSecret(token));
    expect(a.metadata.labels?.[managedByLabel]).toBe('nodeup');
    expect(a.metadata.annotations?.[hashAnnotation]).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(stampObject(renderBootstrapTokenSecret(token)).metadata.annotations).toEqual(a.metadata.annotations);
    expect(stampObject(renderBootstrapTokenSecret('abcdef.0123456789abcdee')).metadata.annotations).not.toEqual(a.metadata.annotations);
  });

  it('drift: only the fields nodeup sets, lists item by item, server additions ignored', () => {
    const want = { spec: { a: 1, list: [{ x: 1 }, { x: 2 }] } };
    expect(driftedFields(want, { spec: { a: 1, extra: true, list: [{ x: 1, d: 0 }, { x: 2 }] }, status: {} })).toEqual([]);
    expect(driftedFields(want, { spec: { a: 2, list: [{ x: 1 }, { x: 3 }] } })).toEqual(['spec.a', 'spec.list[1].x']);
    expect(driftedFields(want, { spec: { a: 1, list: [{ x: 1 }] } })).toEqual(['spec.list']);
  });
});

describe('addons component', () => {
  it('is enabled only on live control planes outside a bake', () => {
    expect(addonsComponent.enabled(liveModel())).toBe(true);
    expect(addonsComponent.enabled(cpModel())).toBe(false); // offline root (tests, image mounts)
    expect(addonsComponent.enabled({ ...liveModel(), bake: true })).toBe(false);
    expect(addonsComponent.enabled(liveModel({ role: 'worker' }))).toBe(false);
  });

  it('builds one manifest task per object, after the API server manifest, the admin kubeconfig and the token', () => {
    const m = liveModel();
    const g = new Graph();
    g.setOwner('control-plane');
    controlPlaneComponent.build(m, g);
    g.setOwner('addons');
    addonsComponent.build(m, g);
    const graph = g.finish();
    const mine = [...graph.tasks.keys()].filter((k) => k.startsWith('manifest:')).sort();
    expect(mine).toEqual([
      'manifest:clusterrole/nodeup:node-routes',
      'manifest:clusterrole/system:coredns',
      'manifest:clusterrolebinding/nodeup:apiserver-kubelet-client',
      'manifest:clusterrolebinding/nodeup:kubelet-bootstrap',
      'manifest:clusterrolebinding/nodeup:node-autoapprove-bootstrap',
      'manifest:clusterrolebinding/nodeup:node-autoapprove-certificate-rotation',
      'manifest:clusterrolebinding/nodeup:node-proxier',
      'manifest:clusterrolebinding/nodeup:node-routes',
      'manifest:clusterrolebinding/system:coredns',
      'manifest:kube-system/configmap/coredns',
      'manifest:kube-system/deployment/coredns',
      'manifest:kube-system/secret/bootstrap-token',
      'manifest:kube-system/service/kube-dns',
      'manifest:kube-system/serviceaccount/coredns',
    ]);
    const gate = 'manifest:clusterrolebinding/nodeup:kubelet-bootstrap';
    expect(graph.deps.get(gate)).toEqual(expect.arrayContaining([apiServerManifestKey, 'cert:kubeconfig-admin']));
    expect(graph.deps.get(gate)?.some((d) => d.startsWith('etcd-member:')), 'no etcd component in this graph').toBe(false);
    // Only the gate waits for the API server; everything else runs after it (directly or in a chain).
    const reaches = (k: string, target: string): boolean => k === target || (graph.deps.get(k as never) ?? []).some((d) => reaches(d, target));
    for (const k of mine) expect(reaches(k, gate), k).toBe(true);
    for (const k of mine.filter((k) => k !== gate)) expect(graph.deps.get(k)?.some((d) => d.startsWith('manifest:')), k).toBe(true);
    expect(graph.deps.get(manifestKey(bootstrapTokenSecretId))).toContain('pki:bootstrap-token');
    expect(graph.deps.get('manifest:kube-system/deployment/coredns')).toContain('manifest:kube-system/configmap/coredns');
  });

  it('the gate waits for this node\'s etcd members: a joining control plane\'s API server needs its own member first', () => {
    const m = liveModel();
    const g = new Graph();
    for (const c of [etcdComponent, controlPlaneComponent, addonsComponent]) {
      g.setOwner(c.name);
      c.build(m, g);
    }
    const members = m.spec.etcd.clusters.map((c) => `etcd-member:${c.name}`);
    expect(members.length).toBeGreaterThan(0);
    expect(g.finish().deps.get('manifest:clusterrolebinding/nodeup:kubelet-bootstrap')).toEqual(expect.arrayContaining(members));
  });

  it('builds alone (--only addons): no edges to tasks that are not in the run', () => {
    const g = new Graph();
    addonsComponent.build(liveModel({ spec: { addons: { coredns: { enabled: false } } } }), g);
    const graph = g.finish();
    expect([...graph.tasks.keys()]).toHaveLength(8);
    for (const deps of graph.deps.values()) expect(deps.every((d) => d.startsWith('manifest:'))).toBe(true);
  });

  it('object ids are stable task keys', () => {
    expect(objectId(renderBootstrapTokenSecret(token))).toBe('kube-system/secret/bootstrap-token-abcdef');
  });
});

describe('manifest task on a test host', () => {
  let host: TestHost;
  let api: FakeApiServer;
  let storeDir: string;
  let store: FileStore;
  const target = { server: 'https://127.0.0.1:6443', kubeconfigPath: adminKubeconfig };
  const binding = renderBootstrapRbac({ nodeProxierForNodes: true })[0] as KubeObject;

  const writeAdmin = async (): Promise<void> => {
    const pem = (t: string): string => `-----BEGIN ${t}-----\nAAAA\n-----END ${t}-----\n`;
    await host.fs.mkdirp('/etc/kubernetes', 0o755);
    await host.fs.writeAtomic(
      adminKubeconfig,
      renderKubeconfig({ clusterName: 't', server: 'https://api:6443', caPem: pem('CERTIFICATE'), user: 'kubernetes-admin', certPem: pem('CERTIFICATE'), keyPem: pem('PRIVATE KEY') }),
      { mode: 0o600 },
    );
  };
  const graphOf = (...tasks: ManifestTask[]): ReturnType<Graph['finish']> => {
    const g = new Graph();
    for (const t of tasks) g.add(t);
    return g.finish();
  };
  const run = (mode: 'plan' | 'apply', ...tasks: ManifestTask[]): ReturnType<typeof execute> =>
    execute(graphOf(...tasks), host, { mode, log: silentLogger, notReadyDeadlineMs: 60_000, store });

  beforeEach(async () => {
    api = new FakeApiServer();
    host = await createTestHost({ http: api.handler });
    storeDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-addons-store-'));
    store = new FileStore(pathToFileURL(storeDir).href);
  });
  afterEach(async () => {
    await host.dispose();
    await fsp.rm(storeDir, { recursive: true, force: true });
  });

  it('plan without an admin kubeconfig or API server: prints the apply, asks nothing', async () => {
    api.state = 'down';
    const r = await run('plan', new ManifestTask({ id: objectId(binding), api: target, object: binding }));
    expect(r.results[0]?.status).toBe('planned');
    expect(r.results[0]?.changes[0]?.to).toMatch(/^ClusterRoleBinding\/nodeup:kubelet-bootstrap sha256:[0-9a-f]{16} \(api server not answering yet\)$/);
    expect(api.requests).toEqual([]);
    await writeAdmin();
    const again = await run('plan', new ManifestTask({ id: objectId(binding), api: target, object: binding }));
    expect(again.results[0]?.changes[0]?.to).toMatch(/api server not answering yet/);
  });

  it('apply waits (NotReadyError) while the API server is down or not ready, then applies', async () => {
    await writeAdmin();
    api.state = 'down';
    const task = new ManifestTask({ id: objectId(binding), api: target, object: binding });
    await expect(task.apply(host, [{ field: 'create', to: 'x' }], taskContext())).rejects.toBeInstanceOf(NotReadyError);
    api.state = 'not-ready';
    await expect(task.apply(host, [{ field: 'create', to: 'x' }], taskContext())).rejects.toThrow(/not ready yet/);
    // Through the executor: comes up after a few retries.
    let calls = 0;
    const flaky = new FakeApiServer();
    const h2 = await createTestHost({
      http: (req) => {
        calls++;
        flaky.state = calls < 4 ? 'down' : 'up';
        return flaky.handler(req);
      },
    });
    await h2.fs.mkdirp('/etc/kubernetes', 0o755);
    await h2.fs.writeAtomic(adminKubeconfig, (await host.fs.read(adminKubeconfig)) as Buffer, { mode: 0o600 });
    const r = await execute(graphOf(task), h2, { mode: 'apply', log: silentLogger, notReadyDeadlineMs: 60_000 });
    await h2.dispose();
    expect(r.ok).toBe(true);
    expect(r.results[0]?.status).toBe('changed');
    expect(flaky.objects.has(objectPath(binding))).toBe(true);
  });

  it('fails the task once the deadline passes with the API server still down', async () => {
    await writeAdmin();
    api.state = 'down';
    const r = await execute(graphOf(new ManifestTask({ id: objectId(binding), api: target, object: binding })), host, { mode: 'apply', log: silentLogger, notReadyDeadlineMs: 30_000 });
    expect(r.ok).toBe(false);
    expect(r.results[0]?.error?.code).toBe('NOT_READY');
  });

  it('creates with server-side apply, then converges: a second run changes nothing', async () => {
    await writeAdmin();
    const tasks = (): ManifestTask[] => renderCoredns(corednsInput(liveModel())).map((o) => new ManifestTask({ id: objectId(o), api: target, object: o }));
    const first = await run('apply', ...tasks());
    expect(first.ok).toBe(true);
    expect(first.changed).toBe(6);
    const patches = api.requests.filter((r) => r.method === 'PATCH');
    expect(patches).toHaveLength(6);
    for (const p of patches) {
      expect(p.contentType).toBe('application/apply-patch+yaml');
      expect(p.query).toBe('?fieldManager=nodeup&force=true');
    }
    const svc = api.objects.get('/api/v1/namespaces/kube-system/services/kube-dns');
    expect(svc?.metadata.labels?.[managedByLabel]).toBe('nodeup');
    expect((svc?.spec as { clusterIP: string }).clusterIP).toBe('10.96.0.10');
    api.requests.length = 0;
    const second = await run('apply', ...tasks());
    expect(second.changed).toBe(0);
    expect(api.requests.filter((r) => r.method !== 'GET')).toEqual([]);
  });

  it('reports drift by field path when someone edits a managed field, and repairs it', async () => {
    await writeAdmin();
    const t = (): ManifestTask => new ManifestTask({ id: objectId(binding), api: target, object: binding });
    await run('apply', t());
    const p = objectPath(binding);
    const live = api.objects.get(p) as KubeObject;
    api.objects.set(p, { ...live, subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:authenticated' }] });
    const plan = await run('plan', t());
    expect(plan.results[0]?.changes).toEqual([{ field: 'drift', from: 'subjects[0].name', to: expect.stringMatching(/^sha256:/) }]);
    await run('apply', t());
    expect((api.objects.get(p)?.subjects as { name: string }[])[0]?.name).toBe(bootstrapGroup);
    expect((await run('plan', t())).changed).toBe(0);
  });

  it('adopts an object someone else created, and replaces a binding whose roleRef differs', async () => {
    await writeAdmin();
    const p = objectPath(binding);
    api.objects.set(p, { ...binding, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' } });
    const t = (): ManifestTask => new ManifestTask({ id: objectId(binding), api: target, object: binding });
    const plan = await run('plan', t());
    expect(plan.results[0]?.changes.map((c) => c.field)).toEqual(['adopt', 'hash']);
    const r = await run('apply', t());
    expect(r.ok).toBe(true);
    expect(api.log()).toContain(`DELETE ${p}`);
    expect((api.objects.get(p)?.roleRef as { name: string }).name).toBe('system:node-bootstrapper');
  });

  it('namespace missing: NotReady (404 on apply), not a failure', async () => {
    await writeAdmin();
    api.namespaces.delete('kube-system');
    const o = renderBootstrapTokenSecret(token);
    const task = new ManifestTask({ id: 'x', api: target, object: o });
    await expect(task.apply(host, [{ field: 'create', to: 'x' }], taskContext())).rejects.toBeInstanceOf(NotReadyError);
  });

  it('a rejected admin credential is an error that says what to check', async () => {
    await writeAdmin();
    api.state = 'forbidden';
    const r = await run('plan', new ManifestTask({ id: objectId(binding), api: target, object: binding }));
    expect(r.results[0]?.status).toBe('failed');
    expect(r.results[0]?.error?.code).toBe('KUBE_API');
    expect(r.results[0]?.error?.message).toMatch(/HTTP 403.*admin kubeconfig is not accepted/);
  });

  it('bootstrap token: from the state store, rotated when the store changes, the old Secret deleted, never printed', async () => {
    await writeAdmin();
    const t = (): ManifestTask => new ManifestTask({ id: bootstrapTokenSecretId, api: target, object: loadTokenSecret, prune: { labelSelector: 'app.kubernetes.io/managed-by=nodeup,nodeup.dev/bootstrap-token=true' } });
    const pending = await run('plan', t());
    expect(pending.results[0]?.changes[0]?.to).toBe('kube-system/secret/bootstrap-token once secrets/bootstrap-token exists in the state store');
    const failed = await run('apply', t());
    expect(failed.results[0]?.error?.message).toMatch(/cannot render kube-system\/secret\/bootstrap-token: secrets\/bootstrap-token exists/);

    await store.write(bootstrapTokenKey, token + '\n', { secret: true });
    const first = await run('apply', t());
    expect(first.ok).toBe(true);
    expect(api.objects.has('/api/v1/namespaces/kube-system/secrets/bootstrap-token-abcdef')).toBe(true);
    expect((await run('plan', t())).changed).toBe(0);

    const rotated = 'uvwxyz.fedcba9876543210';
    await store.write(bootstrapTokenKey, rotated + '\n', { secret: true });
    const plan = await run('plan', t());
    expect(plan.results[0]?.changes.map((c) => c.field)).toEqual(['create', 'delete']);
    const text = JSON.stringify([pending, plan]);
    for (const s of ['0123456789abcdef', 'fedcba9876543210', Buffer.from('fedcba9876543210').toString('base64')]) expect(text).not.toContain(s);
    await run('apply', t());
    expect([...api.objects.keys()].filter((k) => k.includes('/secrets/'))).toEqual(['/api/v1/namespaces/kube-system/secrets/bootstrap-token-uvwxyz']);
    expect((await run('plan', t())).changed).toBe(0);
  });
});
