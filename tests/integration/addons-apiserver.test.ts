// The addons component against a REAL kube-apiserver (and kube-controller-manager), both built from
// source (scripts/fixtures/build.sh kubernetes), on etcd, all on 127.0.0.1. Certificates come from
// nodeup's own PKI code and state store; the API server and controller-manager flags are the ones
// the control-plane component renders (paths moved under a temp root, etcd over loopback HTTP).
// Proves: the objects exist, a second run changes nothing, and what it is all for: a client holding
// only the bootstrap token can create a node CSR, which the controller-manager approves and signs;
// the node's certificate then renews itself and may do what kube-proxy does; the API server's
// kubelet client may use the kubelet API; a rotated token replaces the old one.
// Every process started here is stopped by pid: SIGTERM, then SIGKILL after a timeout.
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import { existsSync, openSync, closeSync, readdirSync, readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as x509 from '@peculiar/x509';
import * as yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execute, type RunReport } from '../../src/agent/executor.ts';
import { Graph } from '../../src/agent/graph.ts';
import type { HttpResponse } from '../../src/agent/host/host.ts';
import { NodeHost } from '../../src/agent/host/node-host.ts';
import { silentLogger } from '../../src/agent/log.ts';
import type { NodeModel } from '../../src/agent/model.ts';
import { addonsComponent, apiTarget } from '../../src/addons/component.ts';
import { KubeApi, isUnreachable, readCredentials } from '../../src/addons/kube-api.ts';
import { objectPath, type KubeObject } from '../../src/addons/kube-object.ts';
import { renderBootstrapRbac } from '../../src/addons/render-bootstrap.ts';
import { controlPlaneInput } from '../../src/controlplane/component.ts';
import { adminKubeconfig, controllerManagerKubeconfig, paths, renderApiServerManifest, renderControllerManagerManifest } from '../../src/controlplane/render-manifests.ts';
import { cpModel } from '../../src/controlplane/test-model.ts';
import { bootstrapTokenKey, ensureBootstrapToken, ensureClusterPki, readCa } from '../../src/pki/cluster-pki.ts';
import { renderKubeconfig } from '../../src/pki/kubeconfig.ts';
import { certInfo, issueLeaf, signedBy } from '../../src/pki/x509.ts';
import { FileStore } from '../../src/statestore/file-store.ts';
import { storeLayout } from '../../src/statestore/store.ts';
import { freePort } from './etcd-harness.ts';

x509.cryptoProvider.set(webcrypto);
const cacheDir = process.env.NODEUP_CACHE ?? path.join(os.homedir(), '.cache', 'nodeup');

/**
 * The bin folder of the kubernetes fixture (NODEUP_KUBERNETES_BIN overrides it); fails loudly,
 * naming the script that builds it, when a binary is missing.
 */
function kubernetesBin(need: readonly string[]): string {
  const fx = path.join(cacheDir, 'fixtures');
  const dir = existsSync(fx) ? readdirSync(fx).filter((d) => d.startsWith('kubernetes-') && existsSync(path.join(fx, d, '.ok'))).sort().pop() : undefined;
  const bin = process.env.NODEUP_KUBERNETES_BIN ?? (dir ? path.join(fx, dir, 'bin') : undefined);
  const missing = need.filter((b) => !bin || !existsSync(path.join(bin, b)));
  if (missing.length > 0) {
    throw new Error(`${missing.join(', ')} not built under ${bin ?? `${fx}/kubernetes-*/bin`}: run \`bash scripts/fixtures/build.sh kubernetes\` (or scripts/setup-addons.sh)`);
  }
  return bin as string;
}

/** etcd 3.6 (fixture) when built, else Debian's 3.4. */
function etcdBinary(): string {
  const fx = path.join(cacheDir, 'fixtures');
  const dir = existsSync(fx) ? readdirSync(fx).filter((d) => d.startsWith('etcd36-') && existsSync(path.join(fx, d, '.ok'))).sort().pop() : undefined;
  if (dir) return path.join(fx, dir, 'bin', 'etcd');
  if (existsSync('/usr/bin/etcd')) return '/usr/bin/etcd';
  throw new Error('no etcd binary: run scripts/setup-addons.sh (it runs scripts/setup-etcd.sh)');
}

class Proc {
  readonly child: ChildProcess;
  readonly logFile: string;
  private readonly exited: Promise<void>;
  constructor(file: string, args: readonly string[], logFile: string) {
    const fd = openSync(logFile, 'a');
    this.child = spawn(file, args, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.logFile = logFile;
    this.exited = new Promise((r) => this.child.once('exit', () => r()));
  }
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  logTail(): string {
    return readFileSync(this.logFile, 'utf8').split('\n').slice(-25).join('\n');
  }
  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs));
    if ((await Promise.race([this.exited.then(() => 'exited' as const), timer])) === 'timeout') {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

/** The flags of a rendered static pod, as a map (the renderer's own order). */
function podFlags(manifest: string): Map<string, string> {
  const pod = yaml.load(manifest) as { spec: { containers: { command: string[] }[] } };
  const flags = new Map<string, string>();
  for (const arg of pod.spec.containers[0]?.command.slice(1) ?? []) {
    const m = /^--([^=]+)=(.*)$/.exec(arg);
    if (m) flags.set(m[1] as string, m[2] as string);
  }
  return flags;
}

/** Node paths in flag values moved under the test root. */
function rooted(flags: Map<string, string>, root: string): string[] {
  return [...flags].map(([k, v]) => `--${k}=${v.startsWith('/etc/kubernetes/') ? path.join(root, v) : v}`);
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, proc?: Proc): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (proc && !proc.running) throw new Error(`${what}: the process exited:\n${proc.logTail()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${proc ? `:\n${proc.logTail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const csrSigner = 'kubernetes.io/kube-apiserver-client-kubelet';

interface NodeKey {
  readonly keyPem: string;
  readonly csrPem: string;
}

async function nodeCsr(nodeName: string): Promise<NodeKey> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=system:node:${nodeName}, O=system:nodes`, keys, signingAlgorithm: alg });
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { keyPem: x509.PemConverter.encode(der, 'PRIVATE KEY') + '\n', csrPem: csr.toString('pem') + '\n' };
}

function csrObject(name: string, csrPem: string): KubeObject {
  return {
    apiVersion: 'certificates.k8s.io/v1',
    kind: 'CertificateSigningRequest',
    metadata: { name },
    spec: { request: Buffer.from(csrPem).toString('base64'), signerName: csrSigner, usages: ['digital signature', 'client auth'] },
  };
}

const csrPath = '/apis/certificates.k8s.io/v1/certificatesigningrequests';

describe('addons against a real kube-apiserver', () => {
  let dir: string;
  let root: string;
  let store: FileStore;
  let model: NodeModel;
  let host: NodeHost;
  let server: string;
  let caPem: string;
  let admin: KubeApi;
  const procs: Proc[] = [];

  const runAddons = async (): Promise<RunReport> => {
    const g = new Graph();
    g.setOwner('addons');
    addonsComponent.build(model, g);
    return execute(g.finish(), host, { mode: 'apply', log: silentLogger, owner: g.owner, notReadyDeadlineMs: 120_000 });
  };
  const storeToken = async (): Promise<string> => ((await store.read(bootstrapTokenKey)) as Buffer).toString('utf8').trim();
  /** POST a CSR as a client holding only this bearer token (and the CA to check the server). */
  const postCsrWithToken = (tokenValue: string, name: string, csrPem: string): Promise<HttpResponse> =>
    host.http({
      url: server + csrPath,
      method: 'POST',
      headers: { authorization: `Bearer ${tokenValue}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(csrObject(name, csrPem)),
      tls: { ca: caPem },
    });
  const asNode = async (certPem: string, keyPem: string, method: string, p: string, body?: unknown): Promise<HttpResponse> =>
    host.http({
      url: server + p,
      method,
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      tls: { ca: caPem, cert: certPem, key: keyPem },
    });
  const adminPost = async (p: string, body: unknown): Promise<Record<string, unknown>> => {
    const creds = await readCredentials(host, adminKubeconfig);
    const res = await host.http({ url: server + p, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), tls: creds as { ca: string; cert: string; key: string } });
    expect(res.status, res.body.toString()).toBeLessThan(300);
    return JSON.parse(res.body.toString()) as Record<string, unknown>;
  };
  const issuedCert = (name: string, proc: Proc): Promise<string> =>
    waitFor(
      `CSR ${name} to be approved and signed`,
      async () => {
        const res = await admin.request('GET', `${csrPath}/${name}`);
        if (isUnreachable(res) || res.status !== 200) return undefined;
        const csr = JSON.parse(res.body.toString()) as { status?: { certificate?: string } };
        return csr.status?.certificate ? Buffer.from(csr.status.certificate, 'base64').toString() : undefined;
      },
      90_000,
      proc,
    );

  beforeAll(async () => {
    const bin = kubernetesBin(['kube-apiserver', 'kube-controller-manager']); // first: a missing fixture fails with the script to run
    const etcd = etcdBinary();
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-addons-'));
    root = path.join(dir, 'root');
    store = new FileStore(pathToFileURL(path.join(dir, 'store')).href);
    await ensureClusterPki(store, { holder: 'addons-test' });
    await ensureBootstrapToken(store);
    host = new NodeHost({ root });

    const port = await freePort();
    server = `https://127.0.0.1:${port}`;
    model = { ...cpModel({ store, nodeName: 'cp-1', facts: { ipv4: ['127.0.0.1'] }, spec: { controlPlane: { apiServer: { port } } } }), live: true };
    expect(apiTarget(model).server).toBe(server);

    // The control plane's files, issued with nodeup's PKI code from the store's CAs.
    const ca = await readCa(store, 'ca');
    const fp = await readCa(store, 'front-proxy-ca');
    caPem = ca.certPem;
    const put = async (p: string, data: string | Buffer, mode = 0o644): Promise<void> => {
      await host.fs.mkdirp(path.posix.dirname(p), 0o755);
      await host.fs.writeAtomic(p, data, { mode });
    };
    await put(paths.ca, ca.certPem);
    await put(paths.caKey, ca.keyPem, 0o600);
    await put(paths.frontProxyCa, fp.certPem);
    await put(paths.saKey, (await store.read(storeLayout.pki('sa.key'))) as Buffer, 0o600);
    await put(paths.saPub, (await store.read(storeLayout.pki('sa.pub'))) as Buffer);
    const leaf = async (certPath: string, keyPath: string, signer: typeof ca, commonName: string, usages: ('server' | 'client')[], more: { organizations?: string[]; dnsNames?: string[]; ips?: string[] } = {}): Promise<void> => {
      const l = await issueLeaf(signer, { commonName, usages, validityDays: 2, ...more });
      await put(keyPath, l.keyPem, 0o600);
      await put(certPath, l.certPem);
    };
    await leaf(paths.apiserverCert, paths.apiserverKey, ca, 'kube-apiserver', ['server'], { dnsNames: ['localhost'], ips: ['127.0.0.1'] });
    await leaf(paths.kubeletClientCert, paths.kubeletClientKey, ca, 'kube-apiserver-kubelet-client', ['client'], { organizations: ['system:masters'] });
    await leaf(paths.frontProxyClientCert, paths.frontProxyClientKey, fp, 'front-proxy-client', ['client']);
    const kubeconfig = async (p: string, user: string, organizations: string[] = []): Promise<void> => {
      const l = await issueLeaf(ca, { commonName: user, usages: ['client'], validityDays: 2, organizations });
      await put(p, renderKubeconfig({ clusterName: 'test', server, caPem: ca.certPem, user, certPem: l.certPem, keyPem: l.keyPem }), 0o600);
    };
    await kubeconfig(adminKubeconfig, 'kubernetes-admin', ['system:masters']);
    await kubeconfig(controllerManagerKubeconfig, 'system:kube-controller-manager');

    // etcd on loopback (plain HTTP: the test is about the API server's objects, not etcd's TLS).
    const [etcdClient, etcdPeer] = [await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const etcdProc = new Proc(
      etcd,
      [
        '--name=addons',
        `--data-dir=${path.join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=addons=http://127.0.0.1:${etcdPeer}`,
      ],
      path.join(dir, 'etcd.log'),
    );
    procs.push(etcdProc);
    await waitFor('etcd /health', async () => ((await host.http({ url: `${etcdUrl}/health` })).status === 200 ? true : undefined), 60_000, etcdProc);

    // kube-apiserver with the control-plane component's flags.
    const apiFlags = podFlags(renderApiServerManifest(controlPlaneInput(model)));
    for (const f of ['etcd-cafile', 'etcd-certfile', 'etcd-keyfile', 'etcd-servers-overrides']) apiFlags.delete(f);
    apiFlags.set('etcd-servers', etcdUrl);
    apiFlags.set('advertise-address', '127.0.0.1');
    apiFlags.set('bind-address', '127.0.0.1');
    apiFlags.set('secure-port', String(port));
    expect(apiFlags.get('enable-bootstrap-token-auth')).toBe('true');
    expect(apiFlags.get('authorization-mode')).toBe('Node,RBAC');
    const apiProc = new Proc(path.join(bin, 'kube-apiserver'), rooted(apiFlags, root), path.join(dir, 'kube-apiserver.log'));
    procs.push(apiProc);
    const creds = (await readCredentials(host, adminKubeconfig)) as NonNullable<Awaited<ReturnType<typeof readCredentials>>>;
    admin = new KubeApi(host, server, creds);
    console.log(`[addons-test] waiting for kube-apiserver on ${server} (log ${apiProc.logFile})`);
    await waitFor('kube-apiserver /readyz', async () => ((await admin.notReady()) === undefined ? true : undefined), 180_000, apiProc);
    console.log('[addons-test] kube-apiserver ready');
  }, 300_000);

  afterAll(async () => {
    for (const p of procs.reverse()) await p.stop();
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  it('before the addons run, the bootstrap token is not accepted', async () => {
    const { csrPem } = await nodeCsr('early');
    const res = await postCsrWithToken(await storeToken(), 'node-csr-early', csrPem);
    expect(res.status).toBe(401);
  });

  it('applies every object, and a second run changes nothing', async () => {
    const first = await runAddons();
    expect(first.results.filter((r) => r.status === 'failed').map((r) => r.error)).toEqual([]);
    expect(first.ok).toBe(true);
    expect(first.changed).toBe(12);
    const tokenId = (await storeToken()).split('.')[0] as string;
    const secret = await admin.get({ apiVersion: 'v1', kind: 'Secret', metadata: { name: `bootstrap-token-${tokenId}`, namespace: 'kube-system' } });
    expect((secret as KubeObject).type).toBe('bootstrap.kubernetes.io/token');
    expect((secret as KubeObject).metadata.labels?.['app.kubernetes.io/managed-by']).toBe('nodeup');
    for (const b of renderBootstrapRbac({ nodeProxierForNodes: true })) {
      const live = (await admin.get(b)) as KubeObject;
      expect(live.roleRef, objectPath(b)).toEqual(b.roleRef);
    }
    const svc = (await admin.get({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'kube-dns', namespace: 'kube-system' } })) as KubeObject;
    expect((svc.spec as { clusterIP: string }).clusterIP).toBe('10.96.0.10');
    expect(await admin.get({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'coredns', namespace: 'kube-system' } })).toMatchObject({ metadata: { name: 'coredns' } });

    const second = await runAddons();
    expect(second.ok).toBe(true);
    expect(second.results.filter((r) => r.status !== 'unchanged').map((r) => [r.key, r.changes])).toEqual([]);
  });

  it('a client holding only the bootstrap token creates a node CSR, which the controller-manager approves and signs', async () => {
    const bin = kubernetesBin(['kube-controller-manager']);
    const { csrPem, keyPem } = await nodeCsr('worker-1');
    const wrong = await postCsrWithToken(`${(await storeToken()).split('.')[0]}.0000000000000000`, 'node-csr-wrong', csrPem);
    expect(wrong.status).toBe(401);
    const res = await postCsrWithToken(await storeToken(), 'node-csr-worker-1', csrPem);
    expect(res.status, res.body.toString()).toBe(201);
    const created = JSON.parse(res.body.toString()) as { spec: { username: string; groups: string[] } };
    expect(created.spec.groups).toContain('system:bootstrappers:nodeup:default-node-token');

    // kube-controller-manager with the control-plane component's flags: csrapproving + csrsigning.
    const cmFlags = podFlags(renderControllerManagerManifest(controlPlaneInput(model)));
    expect(cmFlags.get('cluster-signing-cert-file')).toBe(paths.ca);
    cmFlags.set('bind-address', '127.0.0.1');
    cmFlags.set('secure-port', String(await freePort()));
    cmFlags.set('leader-elect', 'false');
    cmFlags.set('cert-dir', path.join(dir, 'kcm-certs'));
    const cm = new Proc(path.join(bin, 'kube-controller-manager'), rooted(cmFlags, root), path.join(dir, 'kube-controller-manager.log'));
    procs.push(cm);
    console.log(`[addons-test] waiting for kube-controller-manager to approve and sign (log ${cm.logFile})`);
    const certPem = await issuedCert('node-csr-worker-1', cm);
    const info = certInfo(certPem);
    expect(info.subject).toContain('CN=system:node:worker-1');
    expect(signedBy(certPem, caPem)).toBe(true);

    // Renewal: the node's own certificate asks for a new one (selfnodeclient auto-approval).
    const renew = await nodeCsr('worker-1');
    const r2 = await asNode(certPem, keyPem, 'POST', csrPath, csrObject('node-csr-worker-1-renew', renew.csrPem));
    expect(r2.status, r2.body.toString()).toBe(201);
    expect(certInfo(await issuedCert('node-csr-worker-1-renew', cm)).subject).toContain('CN=system:node:worker-1');

    // kube-proxy on workers runs as the node: system:node-proxier lets it list EndpointSlices.
    const ssar = await asNode(certPem, keyPem, 'POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: { resourceAttributes: { group: 'discovery.k8s.io', resource: 'endpointslices', verb: 'watch' } },
    });
    expect((JSON.parse(ssar.body.toString()) as { status: { allowed: boolean } }).status.allowed).toBe(true);
    const slices = await asNode(certPem, keyPem, 'GET', '/apis/discovery.k8s.io/v1/endpointslices');
    expect(slices.status).toBe(200);
  });

  it("the API server's kubelet client may use the kubelet API (without system:masters)", async () => {
    const review = (user: string): Promise<Record<string, unknown>> =>
      adminPost('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: { user, groups: ['system:authenticated'], resourceAttributes: { resource: 'nodes', subresource: 'proxy', verb: 'create' } },
      });
    expect(((await review('kube-apiserver-kubelet-client')).status as { allowed: boolean }).allowed).toBe(true);
    expect(((await review('someone-else')).status as { allowed: boolean }).allowed).toBe(false);
  });

  it('a rotated token replaces the old Secret: the old token stops working, the new one works', async () => {
    const old = await storeToken();
    const rotated = 'zyxwvu.0123456789zyxwvu';
    await store.write(bootstrapTokenKey, rotated + '\n', { secret: true });
    const r = await runAddons();
    expect(r.ok).toBe(true);
    expect(r.results.filter((x) => x.status === 'changed').map((x) => x.key)).toEqual(['manifest:kube-system/secret/bootstrap-token']);
    const { csrPem } = await nodeCsr('worker-2');
    // The API server caches successful token authentications for a few seconds: poll for the 401.
    let n = 0;
    await waitFor('the old token to be refused', async () => ((await postCsrWithToken(old, `node-csr-old-token-${++n}`, csrPem)).status === 401 ? true : undefined), 30_000);
    expect((await postCsrWithToken(rotated, 'node-csr-worker-2', csrPem)).status).toBe(201);
    expect(await admin.get({ apiVersion: 'v1', kind: 'Secret', metadata: { name: `bootstrap-token-${old.split('.')[0]}`, namespace: 'kube-system' } })).toBeNull();
    expect((await runAddons()).changed).toBe(0);
  });
});
