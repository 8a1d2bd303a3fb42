// Host facts, read once per run into the NodeModel. Builders never read the host themselves.
import * as os from 'node:os';
import * as fsp from 'node:fs/promises';
import type { Host } from './host.ts';

export type Arch = 'amd64' | 'arm64';

export interface OsRelease {
  readonly id: string;
  readonly idLike: readonly string[];
  readonly versionId: string;
  readonly prettyName: string;
}

export interface HostFacts {
  readonly osRelease: OsRelease | undefined;
  readonly arch: Arch;
  readonly hostname: string;
  /** Every non-loopback IPv4 address, in the order the kernel lists interfaces. */
  readonly ipv4: readonly string[];
  /** The same addresses by interface name (eth1 -> [192.168.77.11]). */
  readonly interfaces: Readonly<Record<string, readonly string[]>>;
  /** The interface holding the IPv4 default route (lowest metric), from /proc/net/route; undefined when none. */
  readonly defaultRouteInterface: string | undefined;
  /** 2 for the unified hierarchy, 1 for legacy/hybrid, undefined when not visible (offline root). */
  readonly cgroupVersion: 1 | 2 | undefined;
  readonly memoryBytes: number;
  readonly cpus: number;
  readonly kernel: string;
  /** Swap currently active, in bytes (0 when none). */
  readonly swapBytes: number;
  /** The Kubernetes version this node last converged to, from the last run's receipt; undefined on a new node. */
  readonly convergedKubernetesVersion?: string;
  /**
   * The cluster's control planes and the version each last converged to (the state store's
   * `cluster/control-planes/`); read by a worker's apply for the version-skew check.
   */
  readonly controlPlaneVersions?: readonly { readonly node: string; readonly version: string }[];
}

/** Where every run leaves its receipt (src/app/receipt.ts writes it). */
export const receiptFile = '/var/lib/nodeup/status.json';

/** The last converged Kubernetes version a receipt carries (undefined when unreadable or absent). Pure. */
export function convergedVersionOf(text: string | undefined): string | undefined {
  if (!text) return undefined;
  try {
    const v = (JSON.parse(text) as { convergedKubernetesVersion?: unknown }).convergedKubernetesVersion;
    return typeof v === 'string' && /^v\d+\.\d+\.\d+/.test(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Parses /etc/os-release text (shell-style KEY=value lines). Pure. */
export function parseOsRelease(text: string): OsRelease {
  const kv = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    let v = line.slice(eq + 1).trim();
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    kv.set(line.slice(0, eq), v.replace(/\\(.)/g, '$1'));
  }
  return {
    id: (kv.get('ID') ?? '').toLowerCase(),
    idLike: (kv.get('ID_LIKE') ?? '').toLowerCase().split(/\s+/).filter(Boolean),
    versionId: kv.get('VERSION_ID') ?? '',
    prettyName: kv.get('PRETTY_NAME') ?? kv.get('NAME') ?? '',
  };
}

/**
 * The interface of the IPv4 default route in /proc/net/route text: destination and mask 0, route
 * up, lowest metric first (ties: the first listed, as the kernel would pick). Pure.
 */
export function parseDefaultRouteInterface(text: string): string | undefined {
  let best: { iface: string; metric: number } | undefined;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface = '', dest, , flags = '0', , , metric = '0', mask] = f;
    if (dest !== '00000000' || mask !== '00000000' || (parseInt(flags, 16) & 1) === 0) continue;
    const m = Number(metric);
    if (best === undefined || m < best.metric) best = { iface, metric: m };
  }
  return best?.iface;
}

export function archOf(nodeArch: string): Arch {
  if (nodeArch === 'x64' || nodeArch === 'x86_64' || nodeArch === 'amd64') return 'amd64';
  if (nodeArch === 'arm64' || nodeArch === 'aarch64') return 'arm64';
  throw new Error(`unsupported architecture ${nodeArch}: nodeup supports amd64 and arm64`);
}

export async function readHostFacts(host: Host): Promise<HostFacts> {
  const osText = (await host.fs.read('/etc/os-release')) ?? (await host.fs.read('/usr/lib/os-release'));
  const live = host.root === '/';
  const hostnameFile = (await host.fs.read('/etc/hostname'))?.toString().trim();
  let cgroupVersion: 1 | 2 | undefined;
  if (live) {
    cgroupVersion = await fsp
      .stat('/sys/fs/cgroup/cgroup.controllers')
      .then(() => 2 as const)
      .catch(() => 1 as const);
  }
  let memoryBytes = os.totalmem();
  let swapBytes = 0;
  let cpus = os.cpus().length;
  if (live) {
    // Imported here: only a live root reads it, and a scratch-root plan need not evaluate it.
    const { default: si } = await import('systeminformation');
    const mem = await si.mem();
    memoryBytes = mem.total;
    swapBytes = mem.swaptotal;
    const cpu = await si.cpu();
    cpus = cpu.cores || cpus;
  }
  const ipv4: string[] = [];
  const interfaces: Record<string, string[]> = {};
  for (const [name, addrs] of Object.entries(os.networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family !== 'IPv4' || a.internal) continue;
      ipv4.push(a.address);
      (interfaces[name] ??= []).push(a.address);
    }
  }
  // Addresses come from the running kernel even for an offline root, so the route does too.
  const routes = await fsp.readFile('/proc/net/route', 'utf8').catch(() => undefined);
  const converged = convergedVersionOf((await host.fs.read(receiptFile))?.toString('utf8'));
  return {
    osRelease: osText ? parseOsRelease(osText.toString('utf8')) : undefined,
    arch: archOf(process.arch),
    hostname: live ? os.hostname() : (hostnameFile ?? os.hostname()),
    ipv4,
    interfaces,
    defaultRouteInterface: routes === undefined ? undefined : parseDefaultRouteInterface(routes),
    cgroupVersion,
    memoryBytes,
    cpus,
    kernel: os.release(),
    swapBytes,
    ...(converged ? { convergedKubernetesVersion: converged } : {}),
  };
}
