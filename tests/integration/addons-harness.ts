// A throw-away control plane on 127.0.0.1 for the addons integration test and bench: etcd, and
// kube-apiserver (and, on request, kube-controller-manager) built from source
// (scripts/fixtures/build.sh kubernetes), with certificates from nodeup's own PKI code and state
// store, and the flags the control-plane component renders (node paths moved under a temp root,
// etcd over loopback HTTP). Every process is stopped by pid: SIGTERM, then SIGKILL after a timeout.
import 'reflect-metadata';
import { stopChild } from './process-util.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import { existsSync, openSync, closeSync, readdirSync, readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as x509 from '@peculiar/x509';
import * as yaml from 'js-yaml';
import { execute, type Mode, type RunReport } from '../../src/engine/executor.ts';
import { Graph } from '../../src/engine/graph.ts';
import type { HttpResponse } from '../../src/engine/host/host.ts';
import { NodeHost } from '../../src/engine/host/node-host.ts';
import { silentLogger } from '../../src/engine/log.ts';
import type { NodeModel } from '../../src/model/node-model.ts';
import { addonsComponent } from '../../src/addons/component.ts';
import { KubeApi, readCredentials } from '../../src/addons/kube-api.ts';
import type { KubeObject } from '../../src/addons/kube-object.ts';
import { controlPlaneInput } from '../../src/controlplane/component.ts';
import { adminKubeconfig, controllerManagerKubeconfig, paths, renderApiServerManifest, renderControllerManagerManifest } from '../../src/controlplane/render-manifests.ts';
import { cpModel } from '../support/controlplane-model.ts';
import { bootstrapTokenKey, ensureBootstrapToken, ensureClusterPki, readCa } from '../../src/engine/pki/cluster-pki.ts';
import { renderKubeconfig } from '../../src/engine/pki/kubeconfig.ts';
import { issueLeaf } from '../../src/engine/pki/x509.ts';
import { FileStore } from '../../src/statestore/file-store.ts';
import { storeLayout } from '../../src/engine/state-store.ts';
import { freePort } from './etcd-harness.ts';

x509.cryptoProvider.set(webcrypto);
const cacheDir = process.env.NODEUP_CACHE ?? path.join(os.homedir(), '.cache', 'nodeup');

/**
 * The bin folder of the kubernetes fixture (NODEUP_KUBERNETES_BIN overrides it); fails loudly,
 * naming the script that builds it, when a binary is missing.
 */
export function kubernetesBin(need: readonly string[]): string {
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
export function etcdBinary(): string {
  const fx = path.join(cacheDir, 'fixtures');
  const dir = existsSync(fx) ? readdirSync(fx).filter((d) => d.startsWith('etcd36-') && existsSync(path.join(fx, d, '.ok'))).sort().pop() : undefined;
  if (dir) return path.join(fx, dir, 'bin', 'etcd');
  if (existsSync('/usr/bin/etcd')) return '/usr/bin/etcd';
  throw new Error('no etcd binary: run scripts/setup-addons.sh (it runs scripts/setup-etcd.sh)');
}

export class Proc {
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
    await stopChild(this.child, this.exited, timeoutMs);
  }
}

/** The flags of a rendered static pod, as a map (the renderer's own order). */
export function podFlags(manifest: string): Map<string, string> {
  const pod = yaml.load(manifest) as { spec: { containers: { command: string[] }[] } };
  const flags = new Map<string, string>();
  for (const arg of pod.spec.containers[0]?.command.slice(1) ?? []) {
    const m = /^--([^=]+)=(.*)$/.exec(arg);
    if (m) flags.set(m[1] as string, m[2] as string);
  }
  return flags;
}

/** Node paths in flag values moved under the test root. */
export function rooted(flags: Map<string, string>, root: string): string[] {
  return [...flags].map(([k, v]) => `--${k}=${v.startsWith('/etc/kubernetes/') ? path.join(root, v) : v}`);
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, proc?: Proc): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (proc && !proc.running) throw new Error(`${what}: the process exited:\n${proc.logTail()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${proc ? `:\n${proc.logTail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

export const csrSigner = 'kubernetes.io/kube-apiserver-client-kubelet';

export interface NodeKey {
  readonly keyPem: string;
  readonly csrPem: string;
}

export async function nodeCsr(nodeName: string): Promise<NodeKey> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=system:node:${nodeName}, O=system:nodes`, keys, signingAlgorithm: alg });
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { keyPem: x509.PemConverter.encode(der, 'PRIVATE KEY') + '\n', csrPem: csr.toString('pem') + '\n' };
}

export function csrObject(name: string, csrPem: string): KubeObject {
  return {
    apiVersion: 'certificates.k8s.io/v1',
    kind: 'CertificateSigningRequest',
    metadata: { name },
    spec: { request: Buffer.from(csrPem).toString('base64'), signerName: csrSigner, usages: ['digital signature', 'client auth'] },
  };
}

export const csrPath = '/apis/certificates.k8s.io/v1/certificatesigningrequests';

export interface StartOptions {
  /** Progress lines (default: console.log). */
  readonly say?: (line: string) => void;
}

/** A state store with the cluster PKI and a bootstrap token, a node root, etcd and kube-apiserver. */
export class ControlPlaneWorld {
  readonly dir: string;
  readonly root: string;
  readonly store: FileStore;
  readonly host: NodeHost;
  readonly procs: Proc[] = [];
  model!: NodeModel;
  server = '';
  caPem = '';
  admin!: KubeApi;
  private kubeBin = '';
  private readonly say: (line: string) => void;

  private constructor(dir: string, say: (line: string) => void) {
    this.dir = dir;
    this.root = path.join(dir, 'root');
    this.store = new FileStore(pathToFileURL(path.join(dir, 'store')).href);
    this.host = new NodeHost({ root: this.root });
    this.say = say;
  }

  static async start(opts: StartOptions = {}): Promise<ControlPlaneWorld> {
    const bin = kubernetesBin(['kube-apiserver', 'kube-controller-manager']); // first: a missing fixture fails with the script to run
    const etcd = etcdBinary();
    const w = new ControlPlaneWorld(await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-addons-')), opts.say ?? ((l) => console.log(l)));
    w.kubeBin = bin;
    try {
      await w.boot(etcd);
    } catch (err: unknown) {
      await w.stop();
      throw err;
    }
    return w;
  }

  private async put(p: string, data: string | Buffer, mode = 0o644): Promise<void> {
    await this.host.fs.mkdirp(path.posix.dirname(p), 0o755);
    await this.host.fs.writeAtomic(p, data, { mode });
  }

  private async boot(etcd: string): Promise<void> {
    const { host, store, root, dir } = this;
    await ensureClusterPki(store, { holder: 'addons-test' });
    await ensureBootstrapToken(store);
    const port = await freePort();
    this.server = `https://127.0.0.1:${port}`;
    this.model = { ...cpModel({ store, nodeName: 'cp-1', facts: { ipv4: ['127.0.0.1'] }, spec: { controlPlane: { apiServer: { port } } } }), live: true };

    // The control plane's files, issued with nodeup's PKI code from the store's CAs.
    const ca = await readCa(store, 'ca');
    const fp = await readCa(store, 'front-proxy-ca');
    this.caPem = ca.certPem;
    await this.put(paths.ca, ca.certPem);
    await this.put(paths.caKey, ca.keyPem, 0o600);
    await this.put(paths.frontProxyCa, fp.certPem);
    await this.put(paths.saKey, (await store.read(storeLayout.pki('sa.key'))) as Buffer, 0o600);
    await this.put(paths.saPub, (await store.read(storeLayout.pki('sa.pub'))) as Buffer);
    const leaf = async (certPath: string, keyPath: string, signer: typeof ca, commonName: string, usages: ('server' | 'client')[], more: { organizations?: string[]; dnsNames?: string[]; ips?: string[] } = {}): Promise<void> => {
      const l = await issueLeaf(signer, { commonName, usages, validityDays: 2, ...more });
      await this.put(keyPath, l.keyPem, 0o600);
      await this.put(certPath, l.certPem);
    };
    await leaf(paths.apiserverCert, paths.apiserverKey, ca, 'kube-apiserver', ['server'], { dnsNames: ['localhost'], ips: ['127.0.0.1'] });
    await leaf(paths.kubeletClientCert, paths.kubeletClientKey, ca, 'kube-apiserver-kubelet-client', ['client'], { organizations: ['system:masters'] });
    await leaf(paths.frontProxyClientCert, paths.frontProxyClientKey, fp, 'front-proxy-client', ['client']);
    const kubeconfig = async (p: string, user: string, organizations: string[] = []): Promise<void> => {
      const l = await issueLeaf(ca, { commonName: user, usages: ['client'], validityDays: 2, organizations });
      await this.put(p, renderKubeconfig({ clusterName: 'test', server: this.server, caPem: ca.certPem, user, certPem: l.certPem, keyPem: l.keyPem }), 0o600);
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
    this.procs.push(etcdProc);
    await waitFor('etcd /health', async () => ((await host.http({ url: `${etcdUrl}/health` })).status === 200 ? true : undefined), 60_000, etcdProc);

    // kube-apiserver with the control-plane component's flags.
    const apiFlags = podFlags(renderApiServerManifest(controlPlaneInput(this.model)));
    if (apiFlags.get('enable-bootstrap-token-auth') !== 'true' || apiFlags.get('authorization-mode') !== 'Node,RBAC') {
      throw new Error('the control-plane component no longer renders --enable-bootstrap-token-auth=true and --authorization-mode=Node,RBAC');
    }
    for (const f of ['etcd-cafile', 'etcd-certfile', 'etcd-keyfile', 'etcd-servers-overrides']) apiFlags.delete(f);
    apiFlags.set('etcd-servers', etcdUrl);
    apiFlags.set('advertise-address', '127.0.0.1');
    apiFlags.set('bind-address', '127.0.0.1');
    apiFlags.set('secure-port', String(port));
    const apiProc = new Proc(path.join(this.kubeBin, 'kube-apiserver'), rooted(apiFlags, root), path.join(dir, 'kube-apiserver.log'));
    this.procs.push(apiProc);
    const creds = (await readCredentials(host, adminKubeconfig)) as NonNullable<Awaited<ReturnType<typeof readCredentials>>>;
    this.admin = new KubeApi(host, this.server, creds);
    this.say(`[addons] waiting for kube-apiserver on ${this.server} (log ${apiProc.logFile})`);
    await waitFor('kube-apiserver /readyz', async () => ((await this.admin.notReady()) === undefined ? true : undefined), 180_000, apiProc);
    this.say('[addons] kube-apiserver ready');
  }

  /** kube-controller-manager with the control-plane component's flags (csrapproving, csrsigning). */
  startControllerManager(): Promise<Proc> {
    return (async () => {
      const flags = podFlags(renderControllerManagerManifest(controlPlaneInput(this.model)));
      flags.set('bind-address', '127.0.0.1');
      flags.set('secure-port', String(await freePort()));
      flags.set('leader-elect', 'false');
      flags.set('cert-dir', path.join(this.dir, 'kcm-certs'));
      const cm = new Proc(path.join(this.kubeBin, 'kube-controller-manager'), rooted(flags, this.root), path.join(this.dir, 'kube-controller-manager.log'));
      this.procs.push(cm);
      this.say(`[addons] kube-controller-manager started (log ${cm.logFile})`);
      return cm;
    })();
  }

  /** The addons component's tasks on this node, through the executor. */
  runAddons(mode: Mode = 'apply'): Promise<RunReport> {
    const g = new Graph();
    g.setOwner('addons');
    addonsComponent.build(this.model, g);
    return execute(g.finish(), this.host, { mode, log: silentLogger, owner: g.owner, notReadyDeadlineMs: 120_000, store: this.store });
  }

  async storeToken(): Promise<string> {
    return ((await this.store.read(bootstrapTokenKey)) as Buffer).toString('utf8').trim();
  }

  /** POST a CSR as a client holding only this bearer token (and the CA to check the server). */
  postCsrWithToken(token: string, name: string, csrPem: string): Promise<HttpResponse> {
    return this.host.http({
      url: this.server + csrPath,
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(csrObject(name, csrPem)),
      tls: { ca: this.caPem },
    });
  }

  /** A request with a client certificate (a node's). */
  asClient(certPem: string, keyPem: string, method: string, p: string, body?: unknown): Promise<HttpResponse> {
    return this.host.http({
      url: this.server + p,
      method,
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      tls: { ca: this.caPem, cert: certPem, key: keyPem },
    });
  }

  async stop(): Promise<void> {
    for (const p of [...this.procs].reverse()) await p.stop();
    await fsp.rm(this.dir, { recursive: true, force: true });
  }
}
