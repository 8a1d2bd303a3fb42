// `nodeup launch`: creates the machines of one instance group, hands each its user-data, and shows
// progress until each node's receipt says converged (ready) or failed.
//  - qemu: the instance group's NodeConfig (and, from a file:// state store, the CA certificate and
//    bootstrap token) travel in the user-data as an embedded file:// store inside the guest; the
//    guest fetches nodeup from the SeedServer and POSTs progress and its receipt back to it.
//  - aws: the nodes read the state store named by --state-store; receipts are polled from there.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { apiVersion, configHash, parseNodeConfig, type BootConfig } from '../agent/config.ts';
import { AgentError } from '../agent/errors.ts';
import type { Logger } from '../agent/log.ts';
import type { Receipt } from '../agent/receipt.ts';
import { openStateStore } from '../statestore/open.ts';
import { storeLayout, type StateStore } from '../statestore/store.ts';
import { chooseAccel, type Accel } from './accel.ts';
import { instanceNames, type InstanceInfo, type InstanceRequest, type Provider } from './provider.ts';
import { QemuProvider, qemuAlive } from './qemu.ts';
import { renderUserData, type UserDataInput } from './render-user-data.ts';
import { SeedServer, type GuestReport } from './seed-server.ts';
import { joinNetwork, renderPrivateNetwork, type Attachment } from './private-net.ts';
import '../statestore/backends.ts';

/** Where the qemu guest keeps its embedded state store. */
export const embeddedStoreDir = '/var/lib/nodeup/launch-store';
/** QEMU user networking's address of the host loopback, as seen from a guest. */
export const hostFromGuest = '10.0.2.2';

export type NodePhase = 'booting' | 'fetching' | 'nodeup running' | 'ready' | 'failed';

export interface NodeTimings {
  readonly accel?: Accel;
  /** Host ms when the instance was created (qemu started / RunInstances returned). */
  readonly launchedAtMs: number;
  /** Host ms of the guest's first report (its launch script started) and guest uptime then. */
  bootedAtMs?: number;
  bootedUptimeS?: number;
  /** Host ms and guest uptime when nodeup was started. */
  startedAtMs?: number;
  startedUptimeS?: number;
  /** Host ms the receipt arrived. */
  receiptAtMs?: number;
  /** nodeup's own wall time from its receipt. */
  nodeupMs?: number;
}

export interface NodeStatus {
  readonly name: string;
  phase: NodePhase;
  phaseSinceMs: number;
  reason?: string;
  receipt?: Receipt;
  timings: NodeTimings;
}

export interface CommonLaunchOptions {
  readonly log: Logger;
  /** Progress lines for people. */
  readonly progress: (line: string) => void;
  readonly nodeConfigPath: string;
  readonly count: number;
  readonly names?: readonly string[];
  /** Arguments for the guest's `nodeup apply` (e.g. --only node-files). */
  readonly applyArgs: readonly string[];
  readonly wait: boolean;
  readonly timeoutSec: number;
  readonly progressEverySec?: number;
}

export interface QemuLaunchOptions extends CommonLaunchOptions {
  readonly provider: 'qemu';
  readonly stateDir: string;
  readonly baseImage: string;
  /** The nodeup binary served to guests; absent when the image has it (baked). */
  readonly binary?: string | undefined;
  readonly assetsDir?: string | undefined;
  /** A file:// state store on this machine whose pki/ca.crt and secrets/bootstrap-token guests get. */
  readonly stateStore?: string | undefined;
  readonly memoryMiB: number;
  readonly cpus: number;
  readonly accel?: string | undefined;
  readonly diskSize?: string | undefined;
  readonly extraAssetMirrors?: readonly string[];
  /** Joins the guests to a private two-guest link of this name (private-net.ts). */
  readonly network?: string | undefined;
}

export interface LaunchResult {
  readonly instances: readonly InstanceInfo[];
  readonly nodes: readonly NodeStatus[];
  readonly ok: boolean;
}

export interface NodeConfigInput {
  readonly raw: Buffer;
  readonly hash: string;
  readonly cluster: string;
  readonly instanceGroup: string;
  readonly role: 'control-plane' | 'worker';
}

export async function readNodeConfigFile(file: string): Promise<NodeConfigInput> {
  const raw = await fsp.readFile(file).catch((err: unknown) => {
    throw new AgentError('USAGE', `--node-config ${file}: cannot read it (${(err as { code?: string }).code ?? String(err)})`, { cause: err, details: { file } });
  });
  const cfg = parseNodeConfig(raw, file);
  return { raw, hash: configHash(raw), cluster: cfg.metadata.cluster, instanceGroup: cfg.metadata.instanceGroup, role: cfg.spec.role };
}

/** The BootConfig YAML a launched node gets. Pure. */
export function renderBootConfig(b: Omit<BootConfig, 'apiVersion' | 'kind' | 'assetMirrors'> & { readonly assetMirrors: readonly string[] }): string {
  const doc: Record<string, unknown> = {
    apiVersion,
    kind: 'BootConfig',
    stateStore: b.stateStore,
    clusterName: b.clusterName,
    instanceGroup: b.instanceGroup,
    nodeConfigHash: b.nodeConfigHash,
    ...(b.nodeName ? { nodeName: b.nodeName } : {}),
    ...(b.assetMirrors.length > 0 ? { assetMirrors: [...b.assetMirrors] } : {}),
    ...(b.s3 ? { s3: b.s3 } : {}),
  };
  return '# managed by nodeup launch\n' + yaml.dump(doc, { lineWidth: -1 });
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  const fh = await fsp.open(file);
  try {
    for await (const chunk of fh.createReadStream()) h.update(chunk as Buffer);
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/** Node names for the request: --name wins, else `<instanceGroup>-1..N`. */
export function namesFor(ig: string, count: number, names?: readonly string[]): string[] {
  if (names && names.length > 0) return [...names];
  return instanceNames(ig, count);
}

export interface RenderOnlyOptions {
  readonly nodeConfigPath: string;
  readonly count: number;
  readonly names?: readonly string[];
  readonly applyArgs: readonly string[];
  readonly outDir: string;
  /** A host-side file:// store whose CA certificate and bootstrap token are embedded. */
  readonly stateStore?: string | undefined;
  readonly binary?: { readonly url: string; readonly sha256: string } | undefined;
  readonly assetMirrors?: readonly string[];
  readonly log: Logger;
}

/** Files of an embedded file:// store for a node: its NodeConfig and, from a file:// store, its secrets. */
async function embeddedStoreFiles(cfg: NodeConfigInput, stateStore: string | undefined, log: Logger): Promise<{ path: string; content: Buffer; mode: string }[]> {
  const files = [{ path: `${embeddedStoreDir}/${storeLayout.nodeConfig(cfg.instanceGroup)}`, content: cfg.raw, mode: '0600' }];
  if (stateStore) {
    const store = openStateStore(stateStore, { log });
    const keys = [storeLayout.pki('ca.crt'), ...(cfg.role === 'worker' ? [storeLayout.secret('bootstrap-token')] : [])];
    for (const k of keys) {
      const data = await store.read(k);
      if (data) files.push({ path: `${embeddedStoreDir}/${k}`, content: data, mode: '0600' });
    }
  }
  return files;
}

/**
 * The store keys a node of this role may read over HTTP: workers get their NodeConfig, the CA
 * certificate and the bootstrap token, never a key; control-plane nodes get the whole store. Pure.
 */
export function storeAllowFor(cfg: Pick<NodeConfigInput, 'role' | 'instanceGroup'>): (key: string) => boolean {
  if (cfg.role === 'control-plane') return () => true;
  const allowed = new Set([storeLayout.nodeConfig(cfg.instanceGroup), storeLayout.pki('ca.crt'), storeLayout.secret('bootstrap-token')]);
  return (key) => allowed.has(key);
}

/** The directory of a file:// store to serve; its NodeConfig must be the file's bytes (published). */
export async function servedStoreDir(stateStore: string, cfg: NodeConfigInput): Promise<string> {
  if (!stateStore.startsWith('file://')) {
    throw new AgentError('USAGE', `--state-store: the qemu provider serves a file:// store to its guests, got ${stateStore}`, { details: { field: '--state-store' } });
  }
  const dir = fileURLToPath(stateStore);
  const key = storeLayout.nodeConfig(cfg.instanceGroup);
  const stored = await fsp.readFile(path.join(dir, key)).catch(() => undefined);
  if (!stored || configHash(stored) !== cfg.hash) {
    throw new AgentError('USAGE', `--state-store ${stateStore}: ${key} ${stored ? 'differs from' : 'is missing, not'} --node-config; publish the NodeConfig to the store first`, {
      details: { field: '--state-store', key },
    });
  }
  return dir;
}

/** Writes `<outDir>/<name>.user-data` (mode 0600) for each node and returns the paths: for Vagrant and other tools. */
export async function renderOnly(o: RenderOnlyOptions): Promise<string[]> {
  const cfg = await readNodeConfigFile(o.nodeConfigPath);
  const files = await embeddedStoreFiles(cfg, o.stateStore, o.log);
  await fsp.mkdir(o.outDir, { recursive: true, mode: 0o700 });
  const out: string[] = [];
  for (const name of namesFor(cfg.instanceGroup, o.count, o.names)) {
    const boot = renderBootConfig({
      stateStore: `file://${embeddedStoreDir}`,
      clusterName: cfg.cluster,
      instanceGroup: cfg.instanceGroup,
      nodeConfigHash: cfg.hash,
      nodeName: name,
      assetMirrors: o.assetMirrors ?? [],
    });
    const file = path.join(o.outDir, `${name}.user-data`);
    await fsp.writeFile(file, renderUserData({ nodeName: name, bootConfig: boot, files, applyArgs: o.applyArgs, ...(o.binary ? { binary: o.binary } : {}) }), { mode: 0o600 });
    out.push(file);
  }
  return out;
}

export { sha256File };

/** Copies a file into dir under a name unique to this run, so later changes to the source do not reach guests. */
export async function snapshotFile(src: string, dir: string): Promise<string> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  for (const old of await fsp.readdir(dir)) {
    const st = await fsp.stat(path.join(dir, old)).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > 24 * 3600_000) await fsp.rm(path.join(dir, old), { force: true });
  }
  const dest = path.join(dir, `${path.basename(src)}-${process.pid}-${Date.now().toString(36)}`);
  await fsp.copyFile(src, dest).catch((err: unknown) => {
    throw new AgentError('USAGE', `--binary ${src}: cannot read it (${(err as { code?: string }).code ?? String(err)}); build it with npm run build`, { cause: err, details: { file: src } });
  });
  return dest;
}

export async function launchQemu(o: QemuLaunchOptions): Promise<LaunchResult> {
  const cfg = await readNodeConfigFile(o.nodeConfigPath);
  const names = namesFor(cfg.instanceGroup, o.count, o.names);
  const nodes = new Map<string, NodeStatus>();
  const t0 = Date.now();
  const provider0 = new QemuProvider({ stateDir: o.stateDir, baseImage: o.baseImage, log: o.log });

  // A host-side file:// store is served to the guests over HTTP (they read their config, PKI and
  // secrets there, as cloud nodes read s3://); without one, the NodeConfig travels in the user-data.
  const storeDir = o.stateStore ? await servedStoreDir(o.stateStore, cfg) : undefined;
  const storeFiles = storeDir ? [] : await embeddedStoreFiles(cfg, undefined, o.log);

  // Serve a private copy: the build may replace dist/ while guests download, and they check the hash.
  const binaryCopy = o.binary ? await snapshotFile(o.binary, path.join(o.stateDir, '.files')) : undefined;
  const server = new SeedServer({
    log: o.log,
    ...(binaryCopy ? { files: { nodeup: binaryCopy } } : {}),
    assetsDir: o.assetsDir,
    storeDir,
    storeAllow: storeAllowFor(cfg),
    onReport: (r) => void onReport(r),
  });
  const onReport = async (r: GuestReport): Promise<void> => {
    const n = nodes.get(r.name);
    if (!n) return;
    const dir = provider0.dirOf(r.name);
    await fsp.appendFile(path.join(dir, 'events.jsonl'), JSON.stringify({ at: new Date(r.at).toISOString(), phase: r.phase, body: r.body }) + '\n').catch(() => undefined);
    const uptime = Number((r.body as { uptime?: unknown } | undefined)?.uptime);
    if (r.phase === 'booted') {
      n.timings.bootedAtMs = r.at;
      if (Number.isFinite(uptime)) n.timings.bootedUptimeS = uptime;
    } else if (r.phase === 'fetching') {
      setPhase(n, 'fetching');
    } else if (r.phase === 'started') {
      n.timings.startedAtMs = r.at;
      if (Number.isFinite(uptime)) n.timings.startedUptimeS = uptime;
      setPhase(n, 'nodeup running');
    } else if (r.phase === 'failed') {
      const reason = (r.body as { reason?: unknown } | undefined)?.reason;
      n.reason = typeof reason === 'string' ? reason : 'the launch script failed';
      setPhase(n, 'failed');
    } else if (r.phase === 'receipt') {
      const receipt = r.body as Receipt;
      await fsp.writeFile(path.join(dir, 'receipt.json'), JSON.stringify(receipt, null, 2) + '\n').catch(() => undefined);
      n.receipt = receipt;
      n.timings.receiptAtMs = r.at;
      if (typeof receipt.durationMs === 'number') n.timings.nodeupMs = receipt.durationMs;
      if (receipt.result === 'converged') {
        setPhase(n, 'ready');
      } else {
        n.reason = receipt.error ? `${receipt.error.code}: ${receipt.error.message}` : `${receipt.failed} task(s) failed, ${receipt.blocked} blocked`;
        setPhase(n, 'failed');
      }
    }
    await writeTimings(dir, n);
  };
  const setPhase = (n: NodeStatus, p: NodePhase): void => {
    if (n.phase === p || n.phase === 'ready' || n.phase === 'failed') return;
    n.phase = p;
    n.phaseSinceMs = Date.now();
    o.progress(progressLine(n, Date.now()));
  };

  await server.listen();
  try {
    const baseUrl = `http://${hostFromGuest}:${server.port}`;
    const kernel = path.join(o.baseImage, 'vmlinuz');
    const accel = await chooseAccel({ kernel, log: o.log, forced: o.accel ?? process.env.NODEUP_QEMU_ACCEL, cacheFile: path.join(o.stateDir, 'accel.json') });
    o.progress(`accelerator: ${accel}\n`);
    const binary = o.binary ? { url: `${baseUrl}/files/nodeup`, sha256: await sha256File(binaryCopy!) } : undefined;
    const attachments = new Map<string, Attachment>();
    if (o.network) {
      const alive = async (inst: string): Promise<boolean> => attachments.has(inst) || (!names.includes(inst) && (await provider0.record(inst)) !== undefined);
      for (const name of names) attachments.set(name, await joinNetwork(o.stateDir, o.network, name, alive));
    }
    const requests: InstanceRequest[] = names.map((name) => {
      const att = attachments.get(name);
      const netFiles = att ? [{ path: '/etc/systemd/network/05-nodeup-private.network', content: renderPrivateNetwork(att), mode: '0644' }] : [];
      const boot = renderBootConfig({
        stateStore: storeDir ? `${baseUrl}/store` : `file://${embeddedStoreDir}`,
        clusterName: cfg.cluster,
        instanceGroup: cfg.instanceGroup,
        nodeConfigHash: cfg.hash,
        nodeName: name,
        assetMirrors: [...(o.assetsDir ? [`${baseUrl}/assets`] : []), ...(o.extraAssetMirrors ?? [])],
      });
      const input: UserDataInput = {
        nodeName: name,
        bootConfig: boot,
        files: [...storeFiles, ...netFiles],
        reportUrl: baseUrl,
        applyArgs: o.applyArgs,
        ...(att ? { preCommands: ['networkctl reload', `networkctl reconfigure eth1 || true`] } : {}),
        ...(binary ? { binary } : {}),
      };
      return { name, cluster: cfg.cluster, instanceGroup: cfg.instanceGroup, userData: renderUserData(input) };
    });
    const provider = new QemuProvider({
      stateDir: o.stateDir,
      baseImage: o.baseImage,
      log: o.log,
      memoryMiB: o.memoryMiB,
      cpus: o.cpus,
      accel,
      seed: server,
      attachments,
      ...(o.diskSize ? { diskSize: o.diskSize } : {}),
    });
    const instances = await provider.launch(requests);
    for (const i of instances) {
      const n: NodeStatus = { name: i.name, phase: 'booting', phaseSinceMs: Date.now(), timings: { accel, launchedAtMs: Date.parse(i.createdAt) } };
      nodes.set(i.name, n);
      await writeTimings(provider.dirOf(i.name), n);
      o.progress(`node ${i.name}: started (${i.address ?? ''}, pid ${i.id})\n`);
    }
    if (!o.wait) return { instances, nodes: [...nodes.values()], ok: true };
    await waitForNodes({
      nodes: [...nodes.values()],
      timeoutSec: o.timeoutSec,
      everySec: o.progressEverySec ?? 15,
      progress: o.progress,
      alive: async (name) => qemuAlive(await provider.pid(name)),
    });
    const list = [...nodes.values()];
    for (const n of list) await writeTimings(provider.dirOf(n.name), n);
    o.log.info({ nodes: list.length, ready: list.filter((n) => n.phase === 'ready').length, seconds: Math.round((Date.now() - t0) / 1000) }, 'launch finished');
    return { instances, nodes: list, ok: list.every((n) => n.phase === 'ready') };
  } finally {
    await server.close();
    if (binaryCopy) await fsp.rm(binaryCopy, { force: true });
  }
}

async function writeTimings(dir: string, n: NodeStatus): Promise<void> {
  await fsp.writeFile(path.join(dir, 'timings.json'), JSON.stringify({ phase: n.phase, ...n.timings }, null, 2) + '\n').catch(() => undefined);
}

/** "node w-1: booting 35s". Pure. */
export function progressLine(n: NodeStatus, nowMs: number): string {
  const s = Math.round((nowMs - n.timings.launchedAtMs) / 1000);
  if (n.phase === 'ready') return `node ${n.name}: ready (converged, ${n.receipt?.changed ?? 0} changed, nodeup ${fmtS(n.timings.nodeupMs)}) after ${s}s\n`;
  if (n.phase === 'failed') return `node ${n.name}: failed after ${s}s: ${n.reason ?? 'unknown'}\n`;
  return `node ${n.name}: ${n.phase} ${s}s\n`;
}

function fmtS(ms: number | undefined): string {
  return ms === undefined ? '?' : `${(ms / 1000).toFixed(1)}s`;
}

export interface WaitOptions {
  readonly nodes: readonly NodeStatus[];
  readonly timeoutSec: number;
  readonly everySec: number;
  readonly progress: (line: string) => void;
  /** False when the machine is gone (qemu exited). */
  readonly alive?: (name: string) => Promise<boolean>;
  /** Polls for receipts (aws: the state store). */
  readonly poll?: (n: NodeStatus) => Promise<void>;
  readonly pollEverySec?: number;
}

export async function waitForNodes(w: WaitOptions): Promise<void> {
  const deadline = Date.now() + w.timeoutSec * 1000;
  let lastProgress = Date.now();
  let lastPoll = 0;
  const pending = (): NodeStatus[] => w.nodes.filter((n) => n.phase !== 'ready' && n.phase !== 'failed');
  while (pending().length > 0) {
    if (Date.now() > deadline) {
      for (const n of pending()) {
        n.reason = `no receipt within ${w.timeoutSec}s (last phase: ${n.phase})`;
        n.phase = 'failed';
        w.progress(progressLine(n, Date.now()));
      }
      break;
    }
    await new Promise((r) => setTimeout(r, 500));
    if (w.poll && Date.now() - lastPoll >= (w.pollEverySec ?? 10) * 1000) {
      lastPoll = Date.now();
      for (const n of pending()) await w.poll(n);
    }
    if (w.alive) {
      for (const n of pending()) {
        if (!(await w.alive(n.name))) {
          n.reason = 'the machine stopped before its receipt arrived';
          n.phase = 'failed';
          w.progress(progressLine(n, Date.now()));
        }
      }
    }
    if (Date.now() - lastProgress >= w.everySec * 1000) {
      lastProgress = Date.now();
      for (const n of pending()) w.progress(progressLine(n, Date.now()));
    }
  }
}

/** aws: receipts come from the state store the nodes publish to. */
export function storeReceiptPoller(store: StateStore, setDone: (n: NodeStatus, r: Receipt) => void): (n: NodeStatus) => Promise<void> {
  return async (n) => {
    const raw = await store.read(storeLayout.receipt(n.name)).catch(() => undefined);
    if (!raw) return;
    try {
      const r = JSON.parse(raw.toString('utf8')) as Receipt;
      if (Date.parse(r.startedAt) >= n.timings.launchedAtMs - 60_000) setDone(n, r);
    } catch {
      // a half-written receipt: read it again next time
    }
  };
}

export interface AwsLaunchOptions extends CommonLaunchOptions {
  readonly provider: Provider;
  /** s3:// or https:// state store the nodes read (the NodeConfig must be published there). */
  readonly stateStore: string;
  readonly s3?: BootConfig['s3'];
  /** Where nodes fetch nodeup (absent: the image has it). */
  readonly binaryUrl?: string | undefined;
  readonly binarySha256?: string | undefined;
  readonly assetMirrors?: readonly string[];
  /** Opens the store to poll receipts (tests pass a fake). */
  readonly openStore?: (url: string) => StateStore;
}

/** The user-data requests for cloud nodes: config from the state store, no report URL. */
export function cloudRequests(o: AwsLaunchOptions, cfg: NodeConfigInput): InstanceRequest[] {
  if (!/^(s3|https?):\/\//.test(o.stateStore)) {
    throw new AgentError('USAGE', `--state-store must be an s3:// or https:// URL cloud nodes can read, got ${o.stateStore}`, { details: { field: '--state-store' } });
  }
  if ((o.binaryUrl === undefined) !== (o.binarySha256 === undefined)) {
    throw new AgentError('USAGE', '--binary-url and --binary-sha256 go together (or neither, when the image has nodeup)', { details: { field: '--binary-sha256' } });
  }
  return namesFor(cfg.instanceGroup, o.count, o.names).map((name) => {
    const boot = renderBootConfig({
      stateStore: o.stateStore,
      clusterName: cfg.cluster,
      instanceGroup: cfg.instanceGroup,
      nodeConfigHash: cfg.hash,
      nodeName: name,
      assetMirrors: o.assetMirrors ?? [],
      ...(o.s3 ? { s3: o.s3 } : {}),
    });
    const input: UserDataInput = {
      nodeName: name,
      bootConfig: boot,
      files: [],
      applyArgs: o.applyArgs,
      ...(o.binaryUrl && o.binarySha256 ? { binary: { url: o.binaryUrl, sha256: o.binarySha256 } } : {}),
    };
    return { name, cluster: cfg.cluster, instanceGroup: cfg.instanceGroup, userData: renderUserData(input) };
  });
}

export async function launchCloud(o: AwsLaunchOptions): Promise<LaunchResult> {
  const cfg = await readNodeConfigFile(o.nodeConfigPath);
  const requests = cloudRequests(o, cfg);
  const instances = await o.provider.launch(requests);
  const nodes: NodeStatus[] = instances.map((i) => ({ name: i.name, phase: 'booting', phaseSinceMs: Date.now(), timings: { launchedAtMs: Date.parse(i.createdAt) } }));
  for (const i of instances) o.progress(`node ${i.name}: created (${i.id})\n`);
  if (!o.wait) return { instances, nodes, ok: true };
  const store = (o.openStore ?? ((u: string) => openStateStore(u, { s3: o.s3, log: o.log })))(o.stateStore);
  await waitForNodes({
    nodes,
    timeoutSec: o.timeoutSec,
    everySec: o.progressEverySec ?? 15,
    progress: o.progress,
    poll: storeReceiptPoller(store, (n, r) => {
      n.receipt = r;
      n.timings.nodeupMs = r.durationMs;
      n.timings.receiptAtMs = Date.now();
      if (r.result !== 'converged') n.reason = r.error ? `${r.error.code}: ${r.error.message}` : `${r.failed} task(s) failed`;
      n.phase = r.result === 'converged' ? 'ready' : 'failed';
      o.progress(progressLine(n, Date.now()));
    }),
  });
  return { instances, nodes, ok: nodes.every((n) => n.phase === 'ready') };
}
