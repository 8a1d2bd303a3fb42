// `nodeup launch`: creates the machines of one instance group, hands each its user-data
// (user-data.ts), and shows progress (progress.ts) until each node's receipt says converged (ready)
// or failed. What it reads and serves on this machine is in launch-inputs.ts.
// Every machine runs the bootstrap script of `nodeup userdata` (src/bootstrap/render-userdata.ts),
// wrapped in a small cloud-config (render-user-data.ts).
//  - qemu: the guest reads its NodeConfig from an embedded file:// store (no --state-store), from a
//    host file:// store served over HTTP, or from an s3:// store (a lab S3 server); it fetches
//    nodeup from the SeedServer (`<seed>/files` is its mirror) and POSTs progress and its receipt back.
//  - aws: the nodes read the state store named by --state-store; receipts are polled from there.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { BootConfig } from '../model/config.ts';
import { AgentError } from '../engine/errors.ts';
import type { Logger } from '../engine/log.ts';
import type { Receipt } from '../app/receipt.ts';
import { openStateStore } from '../statestore/open.ts';
import type { StateStore } from '../engine/state-store.ts';
import { chooseAccel } from './accel.ts';
import { instanceNames, type InstanceInfo, type InstanceRequest, type Provider } from './provider.ts';
import { QemuProvider, qemuAlive } from './qemu.ts';
import { assertUserDataSize } from '../bootstrap/render-userdata.ts';
import { SeedServer, type GuestReport } from './seed-server.ts';
import { joinNetwork, leaveNetwork, renderPrivateNetwork, type Attachment } from './private-net.ts';
import { embeddedStoreDir, embeddedStoreFiles, readNodeConfigFile, servedStoreDir, sha256File, snapshotFile, storeAllowFor, xzUnpacksTo, type NodeConfigInput } from './launch-inputs.ts';
import { progressLine, recordReceipt, storeReceiptPoller, waitForNodes, writeTimings, type NodePhase, type NodeStatus } from './progress.ts';
import { launchBootConfig, launchEnvironment, machineUserData, type BinaryPins } from './user-data.ts';
import '../statestore/backends.ts';

/** QEMU user networking's address of the host loopback, as seen from a guest. */
export const hostFromGuest = '10.0.2.2';

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
  /**
   * The nodeup binary (linux amd64) served to guests, with `<binary>.xz` beside it when that is
   * present and unpacks to the same bytes. Its SHA-256 is pinned in the bootstrap script: a guest
   * whose image already holds that binary (baked) does not download it.
   */
  readonly binary: string;
  readonly assetsDir?: string | undefined;
  /**
   * Where guests read their NodeConfig and write what control planes create: a file:// store on
   * this machine (served read-only over HTTP), or an s3:// store (a lab S3 server; see `s3`).
   * Absent: the NodeConfig travels in the user-data as an embedded file:// store.
   */
  readonly stateStore?: string | undefined;
  /** S3 settings of an s3:// store, as the guests reach it (endpoint http://10.0.2.2:PORT for a server on this machine). */
  readonly s3?: BootConfig['s3'];
  /** Credentials for a lab S3 server (AWS_* variables), written to the guests' /etc/nodeup/environment (0600). */
  readonly s3Credentials?: readonly (readonly [string, string])[] | undefined;
  readonly memoryMiB: number;
  readonly cpus: number;
  readonly accel?: string | undefined;
  readonly diskSize?: string | undefined;
  readonly extraAssetMirrors?: readonly string[];
  /** Joins the guests to the private network of this name (private-net.ts; up to 8 guests at <subnet>.11, .12, ...). */
  readonly network?: string | undefined;
  /** Guest TCP ports each guest forwards from a free port on the host's loopback (--forward). */
  readonly forwardPorts?: readonly number[];
}

export interface LaunchResult {
  readonly instances: readonly InstanceInfo[];
  readonly nodes: readonly NodeStatus[];
  readonly ok: boolean;
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
  /** Where the machines fetch nodeup (e.g. file:///vagrant/dist for Vagrant) and its hashes. */
  readonly pins: BinaryPins;
  readonly assetMirrors?: readonly string[];
  readonly log: Logger;
}

/** Writes `<outDir>/<name>.user-data` (mode 0600) for each node and returns the paths: for Vagrant and other tools. */
export async function renderOnly(o: RenderOnlyOptions): Promise<string[]> {
  const cfg = await readNodeConfigFile(o.nodeConfigPath);
  const files = await embeddedStoreFiles(cfg, o.stateStore, o.log);
  await fsp.mkdir(o.outDir, { recursive: true, mode: 0o700 });
  const out: string[] = [];
  for (const name of namesFor(cfg.instanceGroup, o.count, o.names)) {
    const boot = launchBootConfig({
      stateStore: `file://${embeddedStoreDir}`,
      clusterName: cfg.cluster,
      instanceGroup: cfg.instanceGroup,
      nodeConfigHash: cfg.hash,
      nodeName: name,
      assetMirrors: o.assetMirrors ?? [],
    });
    const file = path.join(o.outDir, `${name}.user-data`);
    await fsp.writeFile(file, machineUserData({ name, boot, pins: o.pins, files, environment: launchEnvironment(o.applyArgs) }), { mode: 0o600 });
    out.push(file);
  }
  return out;
}

export async function launchQemu(o: QemuLaunchOptions): Promise<LaunchResult> {
  const cfg = await readNodeConfigFile(o.nodeConfigPath);
  const names = namesFor(cfg.instanceGroup, o.count, o.names);
  const nodes = new Map<string, NodeStatus>();
  const t0 = Date.now();
  const provider0 = new QemuProvider({ stateDir: o.stateDir, baseImage: o.baseImage, log: o.log });

  // A host-side file:// store is served to the guests over HTTP (they read their config, PKI and
  // secrets there, as cloud nodes read s3://); an s3:// store they reach themselves; without a
  // store, the NodeConfig travels in the user-data.
  const s3Store = o.stateStore?.startsWith('s3://') ?? false;
  if (o.s3Credentials && !s3Store) {
    throw new AgentError('USAGE', '--s3-credentials-file goes with --state-store s3://bucket/prefix (a lab S3 server)', { details: { field: '--s3-credentials-file' } });
  }
  const storeDir = o.stateStore && !s3Store ? await servedStoreDir(o.stateStore, cfg) : undefined;
  const storeFiles = o.stateStore ? [] : await embeddedStoreFiles(cfg, undefined, o.log);
  const environment = launchEnvironment(o.applyArgs, o.s3Credentials);

  // Serve private copies: the build may replace dist/ while guests download, and they check the hash.
  const filesDir = path.join(o.stateDir, '.files');
  const binaryCopy = await snapshotFile(o.binary, filesDir);
  const sha256 = await sha256File(binaryCopy);
  const served: Record<string, string> = { 'nodeup-linux-amd64': binaryCopy };
  if (await fsp.stat(`${o.binary}.xz`).then((st) => st.isFile(), () => false)) {
    const xzCopy = await snapshotFile(`${o.binary}.xz`, filesDir);
    if (await xzUnpacksTo(xzCopy, sha256)) served['nodeup-linux-amd64.xz'] = xzCopy;
    else {
      o.log.warn({ file: `${o.binary}.xz` }, 'the .xz beside the binary does not unpack to it (stale, or no xz here): guests fetch the plain binary');
      await fsp.rm(xzCopy, { force: true });
    }
  }
  const server = new SeedServer({
    log: o.log,
    files: served,
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
      setPhase(n, recordReceipt(n, receipt, r.at));
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
    const pins: BinaryPins = { mirrors: [`${baseUrl}/files`], sha256: { amd64: sha256 } };
    const attachments = new Map<string, Attachment>();
    if (o.network) {
      const alive = async (inst: string): Promise<boolean> => attachments.has(inst) || (!names.includes(inst) && (await provider0.record(inst)) !== undefined);
      for (const name of names) attachments.set(name, await joinNetwork(o.stateDir, o.network, name, alive));
    }
    const requests: InstanceRequest[] = names.map((name) => {
      const att = attachments.get(name);
      const netFiles = att ? [{ path: '/etc/systemd/network/05-nodeup-private.network', content: renderPrivateNetwork(att), mode: '0644' }] : [];
      const boot = launchBootConfig({
        stateStore: storeDir ? `${baseUrl}/store` : s3Store ? o.stateStore! : `file://${embeddedStoreDir}`,
        clusterName: cfg.cluster,
        instanceGroup: cfg.instanceGroup,
        nodeConfigHash: cfg.hash,
        nodeName: name,
        assetMirrors: [...(o.assetsDir ? [`${baseUrl}/assets`] : []), ...(o.extraAssetMirrors ?? [])],
        s3: s3Store ? o.s3 : undefined,
      });
      const userData = machineUserData({
        name,
        boot,
        pins,
        files: [...storeFiles, ...netFiles],
        environment,
        reportUrl: baseUrl,
        preCommands: att ? ['networkctl reload', 'networkctl reconfigure eth1 || true'] : undefined,
      });
      return { name, cluster: cfg.cluster, instanceGroup: cfg.instanceGroup, role: cfg.role, userData };
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
      ...(o.forwardPorts?.length ? { forwardPorts: o.forwardPorts } : {}),
    });
    const instances = await provider.launch(requests).catch(async (err: unknown) => {
      // Guests that never started leave the network again, so its hub does not outlive its last guest.
      for (const [name, att] of attachments) if (!(await provider.record(name))) await leaveNetwork(o.stateDir, att.network, name).catch(() => undefined);
      throw err;
    });
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
    for (const f of Object.values(served)) await fsp.rm(f, { force: true });
  }
}

export interface AwsLaunchOptions extends CommonLaunchOptions {
  readonly provider: Provider;
  /** s3:// or https:// state store the nodes read (the NodeConfig must be published there). */
  readonly stateStore: string;
  readonly s3?: BootConfig['s3'];
  /** Where nodes fetch nodeup (--mirror) and its pinned hashes; an AMI that has this binary skips the download. */
  readonly pins: BinaryPins;
  readonly assetMirrors?: readonly string[];
  /** Opens the store to poll receipts (tests pass a fake). */
  readonly openStore?: (url: string) => StateStore;
}

/** The user-data requests for cloud nodes: config from the state store, no report URL. */
export function cloudRequests(o: AwsLaunchOptions, cfg: NodeConfigInput): InstanceRequest[] {
  if (!/^(s3|https?):\/\//.test(o.stateStore)) {
    throw new AgentError('USAGE', `--state-store must be an s3:// or https:// URL cloud nodes can read, got ${o.stateStore}`, { details: { field: '--state-store' } });
  }
  if (o.pins.mirrors.length === 0) {
    throw new AgentError('USAGE', 'aws: --mirror URL is required (where nodes fetch nodeup-linux-<arch>.xz, e.g. a public bucket or release folder)', { details: { field: '--mirror' } });
  }
  if (!o.pins.sha256.amd64 && !o.pins.sha256.arm64) {
    throw new AgentError('USAGE', 'aws: the binary hash is required: --dist DIR (with nodeup-linux-<arch>.sha256), --sha256-amd64/--sha256-arm64, or --binary PATH', { details: { field: '--sha256-amd64' } });
  }
  return namesFor(cfg.instanceGroup, o.count, o.names).map((name) => {
    const boot = launchBootConfig({
      stateStore: o.stateStore,
      clusterName: cfg.cluster,
      instanceGroup: cfg.instanceGroup,
      nodeConfigHash: cfg.hash,
      nodeName: name,
      assetMirrors: o.assetMirrors ?? [],
      s3: o.s3,
    });
    // No credentials here: cloud nodes reach their store through the instance profile.
    const userData = machineUserData({ name, boot, pins: o.pins, files: [], environment: launchEnvironment(o.applyArgs) });
    assertUserDataSize(Buffer.byteLength(userData));
    return { name, cluster: cfg.cluster, instanceGroup: cfg.instanceGroup, role: cfg.role, userData };
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
      n.phase = recordReceipt(n, r, Date.now());
      o.progress(progressLine(n, Date.now()));
    }),
  });
  return { instances, nodes, ok: nodes.every((n) => n.phase === 'ready') };
}
