// Real etcd processes on 127.0.0.1 for the integration tests and the bench: TLS from nodeup's own
// PKI code, flags from nodeup's own renderer (etcdArgs), membership from nodeup's own join code.
// Every process started here is stopped by pid: SIGTERM, then SIGKILL after a timeout.
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './process-util.ts';
import { stopChild } from './process-util.ts';
import { existsSync, openSync, closeSync, readdirSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { NodeHost } from '../../src/engine/host/node-host.ts';
import { EtcdClient, type EtcdTls } from '../../src/etcd/client.ts';
import type { Logger } from '../../src/engine/log.ts';
import type { ReplaceDeadOptions } from '../../src/etcd/join.ts';
import { ensureMember, type EnsureMemberResult, type StartParams } from '../../src/etcd/join.ts';
import type { MemberIdentity } from '../../src/etcd/membership.ts';
import { clientUrl, etcdArgs, peerUrl, type EtcdTlsPaths } from '../../src/etcd/render-manifest.ts';
import { createCa, issueLeaf, type KeyPairPem } from '../../src/engine/pki/x509.ts';
import { FileStore } from '../../src/statestore/file-store.ts';

export interface EtcdBinaries {
  readonly label: string;
  readonly etcd: string;
  /** etcdutl (3.5+) or etcdctl (3.4) for snapshot restore. */
  readonly restoreTool: string;
}

const cacheDir = process.env.NODEUP_CACHE ?? path.join(os.homedir(), '.cache', 'nodeup');

/** Debian's etcd 3.4 (etcd-server, etcd-client). Fails loudly, naming the setup script, when missing. */
export function debianEtcd(): EtcdBinaries {
  if (!existsSync('/usr/bin/etcd') || !existsSync('/usr/bin/etcdctl')) {
    throw new Error("Debian's etcd 3.4 is missing (/usr/bin/etcd, /usr/bin/etcdctl): run scripts/setup-etcd.sh");
  }
  return { label: 'etcd 3.4 (Debian)', etcd: '/usr/bin/etcd', restoreTool: '/usr/bin/etcdctl' };
}

/** etcd 3.6 built from the Go module proxy by scripts/fixtures/build.sh etcd36. */
export function etcd36(): EtcdBinaries {
  const fx = path.join(cacheDir, 'fixtures');
  const dir = existsSync(fx) ? readdirSync(fx).filter((d) => d.startsWith('etcd36-') && existsSync(path.join(fx, d, '.ok'))).sort().pop() : undefined;
  if (!dir) throw new Error(`etcd 3.6 is not built under ${fx}/etcd36-*/: run scripts/setup-etcd.sh (it runs scripts/fixtures/build.sh etcd36)`);
  const bin = path.join(fx, dir, 'bin');
  return { label: `etcd 3.6 (${dir})`, etcd: path.join(bin, 'etcd'), restoreTool: path.join(bin, 'etcdutl') };
}

export { freePort };

export interface TestPki {
  readonly tlsPaths: EtcdTlsPaths;
  readonly clientTls: EtcdTls;
  /** The client pair on disk (for the CLI's --ca/--cert/--key). */
  readonly clientFiles: { readonly ca: string; readonly cert: string; readonly key: string };
  /** The CAs, for tests that renew a leaf. */
  readonly ca: KeyPairPem;
  readonly peerCa: KeyPairPem;
}

/** Issues etcd CAs and loopback server, peer and client certificates with nodeup's x509 code. */
export async function makeTestPki(dir: string): Promise<TestPki> {
  await fsp.mkdir(dir, { recursive: true });
  const ca = await createCa('etcd-ca');
  const peerCa = await createCa('etcd-peer-ca');
  const names = { dnsNames: ['localhost'], ips: ['127.0.0.1'] };
  const server = await issueLeaf(ca, { commonName: 'etcd-server', ...names, usages: ['server', 'client'], validityDays: 30 });
  const peer = await issueLeaf(peerCa, { commonName: 'etcd-peer', ...names, usages: ['server', 'client'], validityDays: 30 });
  const client = await issueLeaf(ca, { commonName: 'nodeup-etcd-client', usages: ['client'], validityDays: 30 });
  const w = async (name: string, data: string, mode: number): Promise<string> => {
    const p = path.join(dir, name);
    await fsp.writeFile(p, data, { mode });
    return p;
  };
  const tlsPaths: EtcdTlsPaths = {
    serverCert: await w('server.crt', server.certPem, 0o644),
    serverKey: await w('server.key', server.keyPem, 0o600),
    peerCert: await w('peer.crt', peer.certPem, 0o644),
    peerKey: await w('peer.key', peer.keyPem, 0o600),
    clientCa: await w('ca.crt', ca.certPem, 0o644),
    peerCa: await w('peer-ca.crt', peerCa.certPem, 0o644),
  };
  const clientFiles = { ca: tlsPaths.clientCa, cert: await w('client.crt', client.certPem, 0o644), key: await w('client.key', client.keyPem, 0o600) };
  return { tlsPaths, clientTls: { ca: ca.certPem, cert: client.certPem, key: client.keyPem }, clientFiles, ca, peerCa };
}

export class EtcdProcess {
  readonly child: ChildProcess;
  readonly logFile: string;
  private exited: Promise<void>;
  constructor(child: ChildProcess, logFile: string) {
    this.child = child;
    this.logFile = logFile;
    this.exited = new Promise((r) => child.once('exit', () => r()));
  }
  get pid(): number {
    return this.child.pid ?? -1;
  }
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  /** SIGTERM, then SIGKILL after timeoutMs (a member without quorum may ignore SIGTERM). */
  async stop(timeoutMs = 5000): Promise<void> {
    await stopChild(this.child, this.exited, timeoutMs);
  }
  /** Abrupt death, as a crashed node. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

export interface TestNode {
  readonly self: MemberIdentity;
  readonly dataDir: string;
  proc?: EtcdProcess;
  start?: StartParams;
}

/** A throw-away world: a file:// state store, a PKI, a work dir, and the etcd processes in it. */
export class EtcdWorld {
  readonly dir: string;
  readonly store: FileStore;
  readonly host = new NodeHost();
  readonly bin: EtcdBinaries;
  readonly cluster: string;
  pki!: TestPki;
  readonly nodes = new Map<string, TestNode>();

  private constructor(dir: string, bin: EtcdBinaries, cluster: string) {
    this.dir = dir;
    this.bin = bin;
    this.cluster = cluster;
    this.store = new FileStore(pathToFileURL(path.join(dir, 'store')).toString());
  }

  static async create(bin: EtcdBinaries, cluster = 'main'): Promise<EtcdWorld> {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-etcd-'));
    const w = new EtcdWorld(dir, bin, cluster);
    w.pki = await makeTestPki(path.join(dir, 'pki'));
    return w;
  }

  client(endpoints: readonly string[]): EtcdClient {
    return new EtcdClient(this.host, endpoints, this.pki.clientTls);
  }

  /** A client aimed at every running member. */
  clusterClient(): EtcdClient {
    return this.client([...this.nodes.values()].filter((n) => n.proc?.running).map((n) => n.self.clientUrl));
  }

  async newNode(name: string): Promise<TestNode> {
    const clientPort = await freePort();
    let peerPort = await freePort();
    while (peerPort === clientPort) peerPort = await freePort();
    const node: TestNode = {
      self: { name, clientUrl: clientUrl('127.0.0.1', clientPort), peerUrl: peerUrl('127.0.0.1', peerPort) },
      dataDir: path.join(this.dir, `data-${name}`),
    };
    this.nodes.set(name, node);
    return node;
  }

  /** Starts etcd for a node with nodeup's flags. */
  spawn(node: TestNode, p: StartParams): EtcdProcess {
    const port = (u: string): number => Number(new URL(u).port);
    const args = etcdArgs({
      cluster: this.cluster,
      name: node.self.name,
      dataDir: node.dataDir,
      advertiseIp: '127.0.0.1',
      clientPort: port(node.self.clientUrl),
      peerPort: port(node.self.peerUrl),
      initialCluster: p.initialCluster,
      initialClusterState: p.initialClusterState,
      initialClusterToken: p.initialClusterToken,
      tls: this.pki.tlsPaths,
    });
    const logFile = path.join(this.dir, `etcd-${node.self.name}.log`);
    const fd = openSync(logFile, 'a');
    const child = spawn(this.bin.etcd, args, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const proc = new EtcdProcess(child, logFile);
    node.proc = proc;
    node.start = p;
    return proc;
  }

  /** Runs nodeup's join logic for a node, starting etcd as a process (or as `opts.start` says). */
  async join(
    node: TestNode,
    opts: { promoteTimeoutMs?: number; replaceDead?: ReplaceDeadOptions; log?: Logger; start?: (p: StartParams) => Promise<void> } = {},
  ): Promise<EnsureMemberResult> {
    const res = await ensureMember({
      cluster: this.cluster,
      self: node.self,
      store: this.store,
      client: (eps) => this.client(eps),
      hasData: async () => existsSync(path.join(node.dataDir, 'member', 'snap', 'db')),
      start:
        opts.start ??
        (async (p) => {
          this.spawn(node, p);
        }),
      startTimeoutMs: 60_000,
      ...(opts.promoteTimeoutMs ? { promoteTimeoutMs: opts.promoteTimeoutMs } : {}),
      ...(opts.replaceDead ? { replaceDead: opts.replaceDead } : {}),
      ...(opts.log ? { log: opts.log } : {}),
    });
    if (res.action === 'existing' && node.start) this.spawn(node, node.start);
    return res;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => n.proc?.stop() ?? Promise.resolve()));
  }

  async dispose(): Promise<void> {
    await this.stopAll();
    if (!process.env.NODEUP_KEEP_TEST_DIRS) await fsp.rm(this.dir, { recursive: true, force: true });
  }

  /** The last lines of a node's etcd log, for failure messages. */
  async logTail(name: string, lines = 20): Promise<string> {
    const n = this.nodes.get(name);
    if (!n?.proc) return '';
    const text = await fsp.readFile(n.proc.logFile, 'utf8').catch(() => '');
    return text.split('\n').slice(-lines).join('\n');
  }
}

/** Writes n keys under prefix ("<prefix>000042" = "value-42"), 100 per transaction, 4 transactions at a time. */
export async function writeKeys(client: EtcdClient, prefix: string, n: number, concurrency = 4): Promise<void> {
  const batches: [string, string][][] = [];
  for (let i = 0; i < n; i += 100) {
    batches.push(Array.from({ length: Math.min(100, n - i) }, (_, j) => [`${prefix}${String(i + j).padStart(6, '0')}`, `value-${i + j}`] as [string, string]));
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < batches.length) {
      const batch = batches[next++] as [string, string][];
      await client.putMany(batch);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}
