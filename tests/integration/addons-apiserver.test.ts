// The addons component against a REAL kube-apiserver and kube-controller-manager, built from source
// (scripts/fixtures/build.sh kubernetes), on etcd, all on 127.0.0.1 (see addons-harness.ts).
// Proves: the objects exist, a second run changes nothing, and what it is all for: a client holding
// only the bootstrap token can create a node CSR, which the controller-manager approves and signs;
// the node's certificate then renews itself and may do what kube-proxy does; the API server's
// kubelet client may use the kubelet API; a rotated token replaces the old one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminKubeconfig, paths } from '../../src/controlplane/render-manifests.ts';
import { isUnreachable, readCredentials } from '../../src/addons/kube-api.ts';
import { objectPath, type KubeObject } from '../../src/addons/kube-object.ts';
import { bootstrapGroup, renderBootstrapRbac } from '../../src/addons/render-bootstrap.ts';
import { bootstrapTokenKey } from '../../src/engine/pki/cluster-pki.ts';
import { certInfo, signedBy } from '../../src/engine/pki/x509.ts';
import { ControlPlaneWorld, csrObject, csrPath, kubernetesBin, nodeCsr, waitFor, type Proc } from './addons-harness.ts';

describe('addons against a real kube-apiserver', () => {
  let w: ControlPlaneWorld;
  let cm: Proc | undefined;

  const issuedCert = (name: string, proc: Proc): Promise<string> =>
    waitFor(
      `CSR ${name} to be approved and signed`,
      async () => {
        const res = await w.admin.request('GET', `${csrPath}/${name}`);
        if (isUnreachable(res) || res.status !== 200) return undefined;
        const csr = JSON.parse(res.body.toString()) as { status?: { certificate?: string } };
        return csr.status?.certificate ? Buffer.from(csr.status.certificate, 'base64').toString() : undefined;
      },
      90_000,
      proc,
    );

  beforeAll(async () => {
    w = await ControlPlaneWorld.start();
  }, 300_000);

  afterAll(async () => {
    await w?.stop();
  });

  it('before the addons run, the bootstrap token is not accepted', async () => {
    const { csrPem } = await nodeCsr('early');
    const res = await w.postCsrWithToken(await w.storeToken(), 'node-csr-early', csrPem);
    expect(res.status).toBe(401);
  });

  it('plans every object against the live server, applies them, and a second run changes nothing', async () => {
    const plan = await w.runAddons('plan');
    expect(plan.ok).toBe(true);
    expect(plan.changed).toBe(14); // 12 + the nodeup:node-routes ClusterRole and its binding
    expect(plan.results.every((r) => r.changes.every((c) => c.field === 'create'))).toBe(true);

    const first = await w.runAddons();
    expect(first.results.filter((r) => r.status === 'failed').map((r) => r.error)).toEqual([]);
    expect(first.ok).toBe(true);
    expect(first.changed).toBe(14);
    const tokenId = (await w.storeToken()).split('.')[0] as string;
    const secret = (await w.admin.get({ apiVersion: 'v1', kind: 'Secret', metadata: { name: `bootstrap-token-${tokenId}`, namespace: 'kube-system' } })) as KubeObject;
    expect(secret.type).toBe('bootstrap.kubernetes.io/token');
    expect(secret.metadata.labels?.['app.kubernetes.io/managed-by']).toBe('nodeup');
    for (const b of renderBootstrapRbac({ nodeProxierForNodes: true, nodeRoutes: true })) {
      const live = (await w.admin.get(b)) as KubeObject;
      expect(live.roleRef, objectPath(b)).toEqual(b.roleRef);
      expect(live.subjects, objectPath(b)).toEqual(b.subjects);
    }
    const svc = (await w.admin.get({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'kube-dns', namespace: 'kube-system' } })) as KubeObject;
    expect((svc.spec as { clusterIP: string }).clusterIP).toBe('10.96.0.10');
    expect(await w.admin.get({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'coredns', namespace: 'kube-system' } })).toMatchObject({ metadata: { name: 'coredns' } });

    const second = await w.runAddons();
    expect(second.ok).toBe(true);
    expect(second.results.filter((r) => r.status !== 'unchanged').map((r) => [r.key, r.changes])).toEqual([]);
  });

  it('repairs an edited binding (drift) on the next run', async () => {
    const b = renderBootstrapRbac({ nodeProxierForNodes: true })[0] as KubeObject;
    const res = await w.admin.request('PATCH', `${objectPath(b)}?fieldManager=someone-else`, {
      body: JSON.stringify({ subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:authenticated' }] }),
      contentType: 'application/merge-patch+json',
    });
    expect(isUnreachable(res) ? res : res.status).toBe(200);
    const plan = await w.runAddons('plan');
    expect(plan.results.filter((r) => r.status === 'planned').map((r) => [r.key, r.changes.map((c) => `${c.field}: ${c.from ?? ''}`)])).toEqual([
      ['manifest:clusterrolebinding/nodeup:kubelet-bootstrap', ['drift: subjects[0].name']],
    ]);
    expect((await w.runAddons()).changed).toBe(1);
    expect(((await w.admin.get(b)) as KubeObject).subjects).toEqual(b.subjects);
    expect((await w.runAddons()).changed).toBe(0);
  });

  it('a client holding only the bootstrap token creates a node CSR, which the controller-manager approves and signs', async () => {
    kubernetesBin(['kube-controller-manager']);
    const { csrPem, keyPem } = await nodeCsr('worker-1');
    const wrong = await w.postCsrWithToken(`${(await w.storeToken()).split('.')[0]}.0000000000000000`, 'node-csr-wrong', csrPem);
    expect(wrong.status).toBe(401);
    const res = await w.postCsrWithToken(await w.storeToken(), 'node-csr-worker-1', csrPem);
    expect(res.status, res.body.toString()).toBe(201);
    const created = JSON.parse(res.body.toString()) as { spec: { username: string; groups: string[] } };
    expect(created.spec.groups).toContain(bootstrapGroup);
    expect(created.spec.username).toMatch(/^system:bootstrap:[a-z0-9]{6}$/);

    cm = await w.startControllerManager();
    const certPem = await issuedCert('node-csr-worker-1', cm);
    expect(certInfo(certPem).subject).toContain('CN=system:node:worker-1');
    expect(signedBy(certPem, w.caPem)).toBe(true);

    // Renewal: the node's own certificate asks for a new one (selfnodeclient auto-approval).
    const renew = await nodeCsr('worker-1');
    const r2 = await w.asClient(certPem, keyPem, 'POST', csrPath, csrObject('node-csr-worker-1-renew', renew.csrPem));
    expect(r2.status, r2.body.toString()).toBe(201);
    expect(certInfo(await issuedCert('node-csr-worker-1-renew', cm)).subject).toContain('CN=system:node:worker-1');

    // kube-proxy on workers runs as the node: system:node-proxier lets it watch EndpointSlices.
    const ssar = await w.asClient(certPem, keyPem, 'POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: { resourceAttributes: { group: 'discovery.k8s.io', resource: 'endpointslices', verb: 'watch' } },
    });
    expect((JSON.parse(ssar.body.toString()) as { status: { allowed: boolean } }).status.allowed).toBe(true);
    expect((await w.asClient(certPem, keyPem, 'GET', '/apis/discovery.k8s.io/v1/endpointslices')).status).toBe(200);
  });

  it("the API server's kubelet client may use the kubelet API (even without system:masters)", async () => {
    const creds = (await readCredentials(w.host, adminKubeconfig)) as { ca: string; cert: string; key: string };
    const review = async (user: string): Promise<boolean> => {
      const res = await w.host.http({
        url: `${w.server}/apis/authorization.k8s.io/v1/subjectaccessreviews`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: { user, groups: ['system:authenticated'], resourceAttributes: { resource: 'nodes', subresource: 'proxy', verb: 'create' } },
        }),
        tls: creds,
      });
      expect(res.status, res.body.toString()).toBe(201);
      return (JSON.parse(res.body.toString()) as { status: { allowed: boolean } }).status.allowed;
    };
    expect(await review('kube-apiserver-kubelet-client')).toBe(true);
    expect(await review('someone-else')).toBe(false);
    expect(paths.kubeletClientCert).toBe('/etc/kubernetes/pki/apiserver-kubelet-client.crt');
  });

  it('a rotated token replaces the old Secret: the old token stops working, the new one works', async () => {
    const old = await w.storeToken();
    const rotated = 'zyxwvu.0123456789zyxwvu';
    await w.store.write(bootstrapTokenKey, rotated + '\n', { secret: true });
    const r = await w.runAddons();
    expect(r.ok).toBe(true);
    expect(r.results.filter((x) => x.status === 'changed').map((x) => [x.key, x.changes.map((c) => c.field)])).toEqual([['manifest:kube-system/secret/bootstrap-token', ['create', 'delete']]]);
    const { csrPem } = await nodeCsr('worker-2');
    // The API server caches successful token authentications for a few seconds: poll for the 401.
    let n = 0;
    await waitFor('the old token to be refused', async () => ((await w.postCsrWithToken(old, `node-csr-old-token-${++n}`, csrPem)).status === 401 ? true : undefined), 30_000);
    expect((await w.postCsrWithToken(rotated, 'node-csr-worker-2', csrPem)).status).toBe(201);
    expect(await w.admin.get({ apiVersion: 'v1', kind: 'Secret', metadata: { name: `bootstrap-token-${old.split('.')[0]}`, namespace: 'kube-system' } })).toBeNull();
    expect((await w.runAddons()).changed).toBe(0);
  });
});
