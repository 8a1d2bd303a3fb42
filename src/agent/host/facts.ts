// Host facts, read once per run into the NodeModel. Builders never read the host themselves.
import * as os from 'node:os';
import * as fsp from 'node:fs/promises';
import si from 'systeminformation';
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
  readonly ipv4: readonly string[];
  /** 2 for the unified hierarchy, 1 for legacy/hybrid, undefined when not visible (offline root). */
  readonly cgroupVersion: 1 | 2 | undefined;
  readonly memoryBytes: number;
  readonly cpus: number;
  readonly kernel: string;
  /** Swap currently active, in bytes (0 when none). */
  readonly swapBytes: number;
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
    const mem = await si.mem();
    memoryBytes = mem.total;
    swapBytes = mem.swaptotal;
    const cpu = await si.cpu();
    cpus = cpu.cores || cpus;
  }
  const ipv4: string[] = [];
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) ipv4.push(a.address);
  }
  return {
    osRelease: osText ? parseOsRelease(osText.toString('utf8')) : undefined,
    arch: archOf(process.arch),
    hostname: live ? os.hostname() : (hostnameFile ?? os.hostname()),
    ipv4,
    cgroupVersion,
    memoryBytes,
    cpus,
    kernel: os.release(),
    swapBytes,
  };
}
