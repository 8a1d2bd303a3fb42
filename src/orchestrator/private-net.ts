// A private L2 network between qemu guests (control planes, workers, a replacement...), so they
// reach each other at fixed addresses while each keeps QEMU user networking for the host and the
// internet. Up to `networkCapacity` members, at <subnet>.11, .12, .13 ... (a deleted member's slot
// and address go to the next guest that joins).
//
// The switch is a hub QEMU process with no machine (`-machine none`): one UDP socket netdev per
// slot, all joined to one QEMU hub (`-netdev hubport,netdev=...`), which repeats every frame to the
// other slots. Guest i's second NIC is a UDP socket netdev between its own loopback port and slot
// i's hub port. Frames travel only over 127.0.0.1 (no host interface changes, no multicast, no
// extra package: QEMU is already there); UDP is connectionless, so a restarted hub or guest simply
// carries on. The hub is started detached (-daemonize) by the first join, survives `nodeup launch`
// exiting like the guests do, and is stopped when its last member is deleted.
//   <stateDir>/networks/<name>.json      {name, subnet, hub: {pid, ports}, memberPorts, members: [{instance, index}]}
//   <stateDir>/networks/<name>.hub.pid   the hub's pid (QEMU writes it)
import { execFile } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { AgentError, errorMessage } from '../engine/errors.ts';
import { sleep } from '../engine/retry.ts';

const run = promisify(execFile);

/** Members one network holds: three control planes, a replacement, workers. */
export const networkCapacity = 8;

export interface NetworkMember {
  readonly instance: string;
  readonly index: number;
}

export interface NetworkRecord {
  readonly name: string;
  /** The first three octets of the guests' /24, e.g. "192.168.77". */
  readonly subnet: string;
  /** The hub process and its UDP port per slot. */
  readonly hub: { readonly pid?: number; readonly ports: readonly number[] };
  /** The guest-side UDP port per slot. */
  readonly memberPorts: readonly number[];
  readonly members: readonly NetworkMember[];
}

export interface Attachment {
  readonly network: string;
  readonly index: number;
  /** The guest's UDP port on 127.0.0.1. */
  readonly localPort: number;
  /** Its slot's port on the hub. */
  readonly remotePort: number;
  readonly mac: string;
  /** The guest's address with prefix length, e.g. 192.168.77.11/24. */
  readonly address: string;
}

/** The attachment of slot `index` of a network. Pure. */
export function attachmentOf(net: NetworkRecord, index: number): Attachment {
  return {
    network: net.name,
    index,
    localPort: net.memberPorts[index]!,
    remotePort: net.hub.ports[index]!,
    mac: `52:54:00:77:00:${(0x11 + index).toString(16).padStart(2, '0')}`,
    address: `${net.subnet}.${11 + index}/24`,
  };
}

/** QEMU arguments for a guest's second NIC. Pure. */
export function privateNetArgs(a: Attachment): string[] {
  return ['-netdev', `socket,id=p0,udp=127.0.0.1:${a.remotePort},localaddr=127.0.0.1:${a.localPort}`, '-device', `virtio-net-pci,netdev=p0,mac=${a.mac}`];
}

/** The process name of a network's hub (`-name`), also how a live hub is told from a recycled pid. */
export function hubProcessName(network: string): string {
  return `nodeup-net-${network}`;
}

/** QEMU arguments of the hub: no machine, one socket netdev per slot joined to hub 0. Pure. */
export function hubArgs(net: NetworkRecord, pidFile: string): string[] {
  const slots = net.hub.ports.flatMap((port, i) => [
    '-netdev', `socket,id=s${i},udp=127.0.0.1:${net.memberPorts[i]},localaddr=127.0.0.1:${port}`,
    '-netdev', `hubport,id=h${i},hubid=0,netdev=s${i}`,
  ]);
  return ['-name', hubProcessName(net.name), '-machine', 'none', '-nodefaults', '-display', 'none', ...slots, '-pidfile', pidFile, '-daemonize'];
}

/** The guest's systemd-networkd file for the link. Pure. */
export function renderPrivateNetwork(a: Attachment): string {
  return ['# managed by nodeup launch: the private network between the guests', '[Match]', `MACAddress=${a.mac}`, '', '[Network]', `Address=${a.address}`, 'LinkLocalAddressing=no', ''].join('\n');
}

/**
 * Adds `instance` to `net` in the lowest free slot; `live` are the members that still exist (the
 * others, and an earlier entry of `instance`, free their slot). Pure; throws when the network is full.
 */
export function planJoin(net: NetworkRecord, instance: string, live: readonly NetworkMember[]): { readonly next: NetworkRecord; readonly index: number } {
  const members = live.filter((m) => m.instance !== instance);
  const used = new Set(members.map((m) => m.index));
  const capacity = net.hub.ports.length;
  const index = Array.from({ length: capacity }, (_, i) => i).find((i) => !used.has(i));
  if (index === undefined) {
    throw new AgentError('ORCHESTRATOR', `network ${net.name} is full (${capacity} guests: ${members.map((m) => m.instance).join(', ')}): delete one or use another --network`, {
      details: { network: net.name, members: members.map((m) => m.instance) },
    });
  }
  return { next: { ...net, members: [...members, { instance, index }].sort((a, b) => a.index - b.index) }, index };
}

/** Removes `instance`; `empty` says the hub should stop and the record go. Pure. */
export function planLeave(net: NetworkRecord, instance: string): { readonly next: NetworkRecord; readonly empty: boolean } {
  const members = net.members.filter((m) => m.instance !== instance);
  return { next: { ...net, members }, empty: members.length === 0 };
}

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => resolve());
  });
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

const validName = /^[a-z0-9][a-z0-9-]{0,30}$/;

function filesOf(stateDir: string, name: string): { record: string; pid: string; lock: string } {
  const dir = path.join(stateDir, 'networks');
  return { record: path.join(dir, `${name}.json`), pid: path.join(dir, `${name}.hub.pid`), lock: path.join(dir, `${name}.lock`) };
}

/** Serializes launches and deletes that touch one network (a lock directory; a stale one is broken after a minute). */
async function withLock<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  await fsp.mkdir(path.dirname(lock), { recursive: true });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const made = await fsp.mkdir(lock).then(
      () => true,
      (err: unknown) => {
        if ((err as { code?: string }).code !== 'EEXIST') throw err;
        return false;
      },
    );
    if (made) break;
    const st = await fsp.stat(lock).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > 60_000) {
      await fsp.rm(lock, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new AgentError('ORCHESTRATOR', `${lock} is held by another nodeup launch; remove it if none runs`, { details: { lock } });
    await sleep(100);
  }
  try {
    return await fn();
  } finally {
    await fsp.rm(lock, { recursive: true, force: true });
  }
}

async function readRecord(file: string): Promise<Record<string, unknown> | undefined> {
  const raw = await fsp.readFile(file, 'utf8').catch(() => undefined);
  return raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
}

async function writeRecord(file: string, net: NetworkRecord): Promise<void> {
  await fsp.writeFile(`${file}.tmp`, JSON.stringify(net, null, 2) + '\n');
  await fsp.rename(`${file}.tmp`, file);
}

/** Whether `pid` is this network's hub (not a recycled pid). */
export async function hubAlive(pid: number | undefined, network: string): Promise<boolean> {
  if (!pid || !Number.isInteger(pid) || pid <= 0) return false;
  const cmd = await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmd.includes('qemu-system') && cmd.split('\0').includes(hubProcessName(network));
}

export interface NetworkOptions {
  readonly subnet?: string;
  /** The QEMU binary of the hub. */
  readonly qemu?: string;
}

/**
 * Joins `instance` to the named network, creating it (and starting its hub) when absent, and
 * restarting a hub that is gone (the host rebooted). Members whose instance no longer exists
 * (`alive` says false) free their slot.
 */
export async function joinNetwork(stateDir: string, name: string, instance: string, alive: (instance: string) => Promise<boolean>, opts: NetworkOptions = {}): Promise<Attachment> {
  if (!validName.test(name)) throw new AgentError('USAGE', `--network ${name}: expected lowercase letters, digits and dashes`, { details: { field: '--network' } });
  const f = filesOf(stateDir, name);
  return withLock(f.lock, async () => {
    const raw = await readRecord(f.record);
    let net: NetworkRecord | undefined;
    if (raw && !('hub' in raw)) {
      // A record of the older two-guest link: usable only once its guests are gone.
      const old = (raw.members ?? []) as NetworkMember[];
      const live: string[] = [];
      for (const m of old) if (m.instance !== instance && (await alive(m.instance))) live.push(m.instance);
      if (live.length > 0) {
        throw new AgentError('ORCHESTRATOR', `network ${name} was made by an older nodeup (a two-guest link): delete ${live.join(', ')} first (nodeup launch --delete)`, {
          details: { network: name, members: live },
        });
      }
    } else if (raw) {
      net = raw as unknown as NetworkRecord;
    }
    if (!net) {
      const hubPorts: number[] = [];
      const memberPorts: number[] = [];
      for (let i = 0; i < networkCapacity; i++) {
        hubPorts.push(await freeUdpPort());
        memberPorts.push(await freeUdpPort());
      }
      net = { name, subnet: opts.subnet ?? '192.168.77', hub: { ports: hubPorts }, memberPorts, members: [] };
    }
    const live: NetworkMember[] = [];
    for (const m of net.members) if (m.instance !== instance && (await alive(m.instance))) live.push(m);
    const { next, index } = planJoin(net, instance, live);
    let joined = next;
    if (!(await hubAlive(next.hub.pid, name))) joined = { ...next, hub: { ...next.hub, pid: await startHub(next, f.pid, opts.qemu) } };
    await writeRecord(f.record, joined);
    return attachmentOf(joined, index);
  });
}

/** Removes `instance` from the network; the last one out stops the hub and removes the record. */
export async function leaveNetwork(stateDir: string, name: string, instance: string): Promise<void> {
  if (!validName.test(name)) return;
  const f = filesOf(stateDir, name);
  await withLock(f.lock, async () => {
    const raw = await readRecord(f.record);
    if (!raw || !('hub' in raw)) return;
    const { next, empty } = planLeave(raw as unknown as NetworkRecord, instance);
    if (!empty) return writeRecord(f.record, next);
    await stopHub(next.hub.pid, name);
    await fsp.rm(f.record, { force: true });
    await fsp.rm(f.pid, { force: true });
  });
}

async function startHub(net: NetworkRecord, pidFile: string, qemu = 'qemu-system-x86_64'): Promise<number> {
  await fsp.rm(pidFile, { force: true });
  try {
    await run(qemu, hubArgs(net, pidFile), { timeout: 30_000 });
  } catch (err: unknown) {
    const stderr = ((err as { stderr?: string }).stderr ?? '').trim();
    throw new AgentError('ORCHESTRATOR', `cannot start the hub of network ${net.name}: ${stderr.split('\n').pop() || errorMessage(err)} (a port of ${pidFile.replace(/\.hub\.pid$/, '.json')} may be taken: delete the network's guests to start afresh)`, {
      cause: err,
      details: { network: net.name, stderr: stderr.slice(-2000) },
    });
  }
  return Number((await fsp.readFile(pidFile, 'utf8')).trim());
}

async function stopHub(pid: number | undefined, network: string): Promise<void> {
  if (!pid || !(await hubAlive(pid, network))) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && (await hubAlive(pid, network)); i++) await sleep(100);
  if (await hubAlive(pid, network)) process.kill(pid, 'SIGKILL');
}
