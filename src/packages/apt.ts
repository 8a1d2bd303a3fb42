// apt on Debian and Ubuntu, run inside the root (chroot when --root is not "/").
// The contract: one dpkg-query for every package; `apt-get update` only right before an install
// that needs it (lists missing, older than listsMaxAge, or older than the sources), at most once
// per run, and again only when apt cannot find a package or a version with the lists it has (then,
// if it still cannot, the lists are removed and fetched anew: damaged index files); one
// batched `apt-get install` of the missing packages (installed ones are never upgraded unless
// pinned); pinned versions installed with name=version and held with apt-mark; the dpkg lock
// waited for (bounded, with the holder logged); `dpkg --configure -a` when dpkg asks for it;
// transient mirror failures retried with backoff.
import * as path from 'node:path/posix';
import type { Host, RunResult } from '../engine/host/host.ts';
import type { Logger } from '../engine/log.ts';
import {
  isUnavailable,
  runManaged,
  sortedWants,
  type BatchPlan,
  type InstalledPackage,
  type ManagerOptions,
  type Outcome,
  type PackageManager,
  type PackageWant,
  type Snapshot,
} from './manager.ts';

/** Every apt and dpkg command runs with these: no prompts, English output (we read it), no restarts. */
export const aptEnv: Readonly<Record<string, string>> = {
  DEBIAN_FRONTEND: 'noninteractive',
  LC_ALL: 'C',
  // Ubuntu's needrestart would otherwise restart services (nodeup's own unit among them) mid-run.
  NEEDRESTART_SUSPEND: '1',
  APT_LISTCHANGES_FRONTEND: 'none',
};

export const aptInstallFlags: readonly string[] = [
  '--yes',
  '--no-install-recommends',
  '-o',
  'Dpkg::Options::=--force-confdef',
  '-o',
  'Dpkg::Options::=--force-confold',
];

const queryFormat = '${Package}\\t${db:Status-Abbrev}\\t${Version}\\n';
const listsDir = '/var/lib/apt/lists';
const policyRcD = '/usr/sbin/policy-rc.d';

/** Parses `dpkg-query -W -f '${Package}\t${db:Status-Abbrev}\t${Version}\n'` output. Pure. */
export function parseDpkgQuery(stdout: string): Map<string, InstalledPackage> {
  const out = new Map<string, InstalledPackage>();
  for (const line of stdout.split('\n')) {
    const [name, abbrev, version] = line.split('\t');
    if (!name || !abbrev || version === undefined) continue;
    // Status-Abbrev: want (u/i/h/r/p), status (n/c/i/U/F/H/W/t), error flag (' ' or R).
    const want = abbrev[0];
    const status = abbrev[1];
    if (!status || status === 'n' || status === 'c') continue; // not installed (maybe config files)
    const pkg: InstalledPackage = { name, version, held: want === 'h', healthy: status === 'i' && abbrev[2] !== 'R' };
    if (!out.has(name) || (!out.get(name)?.healthy && pkg.healthy)) out.set(name, pkg);
  }
  return out;
}

/** Reads apt-get / apt-mark / dpkg output. Pure. */
export function classifyApt(res: RunResult): Outcome {
  const text = `${res.stdout}\n${res.stderr}`;
  const lock =
    /Could not get lock (\S+?)\.? It is held by process (\d+) \(([^)]*)\)/.exec(text) ??
    /Could not get lock (\S+?)\.?(?:\s|$)/.exec(text);
  if (lock) return { kind: 'lock', lock: lock[1] ?? 'the dpkg lock', pid: lock[2], holder: lock[3] };
  const dpkgLock = /dpkg(?: frontend)? lock (?:\(\S+\) )?(?:was |is )?locked by another process(?: with pid (\d+))?/.exec(text);
  if (dpkgLock) return { kind: 'lock', lock: '/var/lib/dpkg/lock-frontend', pid: dpkgLock[1] };
  if (/dpkg was interrupted, you must manually run '(?:sudo )?dpkg --configure -a'/.test(text)) return { kind: 'interrupted' };
  const missing =
    /Unable to locate package (\S+)/.exec(text) ??
    /Package '?([^'\s]+)'? has no installation candidate/.exec(text) ??
    /Version '([^']+)' for '([^']+)' was not found/.exec(text);
  if (missing) {
    const what = missing[2] ? `version ${missing[1]} of ${missing[2]}` : `package ${missing[1]}`;
    return { kind: 'unavailable', reason: `${what} is not in the package lists` };
  }
  // A 404 for a .deb means the lists name a version the mirror no longer has: refresh, retry.
  if (/Failed to fetch \S+\.deb\s+404/.test(text)) return { kind: 'unavailable', reason: 'the package lists are out of date (404 for a .deb)' };
  const transient =
    /(Failed to fetch [^\n]*|Temporary failure resolving[^\n]*|Could not connect to[^\n]*|Connection failed[^\n]*|Connection timed out[^\n]*|Hash Sum mismatch[^\n]*|Some index files failed to download[^\n]*|Unable to fetch some archives[^\n]*|Undetermined Error[^\n]*)/.exec(
      text,
    );
  // `apt-get update` exits 0 when some index failed to download: the output says so.
  if (transient) return { kind: 'transient', reason: (transient[1] ?? '').trim() };
  if (res.exitCode === 0) return { kind: 'ok' };
  const e = text.split('\n').find((l) => l.startsWith('E: '));
  return { kind: 'failed', reason: e ? e.slice(3) : `exit code ${res.exitCode}` };
}

/** The list and index files apt keeps, without its lock and working folders. */
async function listFiles(host: Host): Promise<readonly string[]> {
  return (await host.fs.list(listsDir)).filter((n) => n !== 'lock' && n !== 'partial' && n !== 'auxfiles');
}

/** Why the lists need a refresh before installing, or undefined when fresh. Pure. */
export function listsStaleReason(newestListMs: number | undefined, newestSourceMs: number | undefined, nowMs: number, maxAgeMs: number): string | undefined {
  if (newestListMs === undefined) return 'no package lists';
  if (newestSourceMs !== undefined && newestSourceMs > newestListMs) return 'apt sources changed after the last update';
  const age = nowMs - newestListMs;
  if (age > maxAgeMs) return `package lists are ${Math.round(age / 60_000)} min old`;
  return undefined;
}

export class AptManager implements PackageManager {
  readonly name = 'apt' as const;
  private readonly opts: ManagerOptions;
  /** At most one `apt-get update` per run (one manager per run). */
  private updated = false;
  /** At most one start-over of the lists per run. */
  private rebuilt = false;

  constructor(opts: ManagerOptions) {
    this.opts = opts;
  }

  queryNames(wants: readonly PackageWant[]): readonly string[] {
    return wants.map((w) => w.name);
  }

  async snapshot(host: Host, names: readonly string[]): Promise<Snapshot> {
    const res = await host.runInRoot('dpkg-query', ['-W', '-f', queryFormat, ...names], { env: aptEnv, okExitCodes: [1] });
    return { installed: parseDpkgQuery(res.stdout), listsStale: await this.listsStale(host) };
  }

  /**
   * When apt last updated its lists. List files carry the mirror's dates (apt sets their mtime from
   * Last-Modified / the Release date), so the update time comes from the lists directory itself and
   * its partial/ folder (apt downloads there and renames into place on every update), and from the
   * stamp Debian's periodic update hook touches. Undefined when there are no lists at all.
   */
  private async lastUpdate(host: Host): Promise<number | undefined> {
    const names = await listFiles(host);
    if (names.length === 0) return undefined;
    const stamps = await Promise.all(
      [listsDir, `${listsDir}/partial`, '/var/lib/apt/periodic/update-success-stamp'].map(async (p) => (await host.fs.stat(p))?.mtimeMs ?? 0),
    );
    return Math.max(...stamps);
  }

  private async listsStale(host: Host): Promise<string | undefined> {
    const updated = await this.lastUpdate(host);
    let sources: number | undefined;
    for (const p of ['/etc/apt/sources.list', ...(await host.fs.list('/etc/apt/sources.list.d')).map((n) => `/etc/apt/sources.list.d/${n}`)]) {
      const st = await host.fs.stat(p);
      if (st?.kind === 'file' && (sources === undefined || st.mtimeMs > sources)) sources = st.mtimeMs;
    }
    return listsStaleReason(updated, sources, host.now(), this.opts.listsMaxAgeMs);
  }

  plan(wants: readonly PackageWant[], snap: Snapshot): BatchPlan {
    const install: PackageWant[] = [];
    const hold: PackageWant[] = [];
    for (const w of sortedWants(wants)) {
      const have = snap.installed.get(w.name);
      if (!have || (w.version !== undefined && have.version !== w.version)) install.push(w);
      if (w.version !== undefined && (!have?.held || have.version !== w.version)) hold.push(w);
    }
    const repair = sortedWants(wants)
      .map((w) => snap.installed.get(w.name))
      .filter((p): p is InstalledPackage => p !== undefined && !p.healthy)
      .map((p) => p.name);
    const commands: string[] = [];
    if (repair.length > 0) commands.push('dpkg --configure -a');
    if (install.length > 0) {
      if (snap.listsStale) commands.push(`${['apt-get update', ...this.opts.repositoryOptions].join(' ')}  # ${snap.listsStale}`);
      commands.push(['apt-get install', ...this.installArgs(install)].join(' '));
    }
    if (hold.length > 0) commands.push(['apt-mark hold', ...hold.map((w) => w.name)].join(' '));
    return { install, hold, repair, commands };
  }

  private installArgs(install: readonly PackageWant[]): string[] {
    const pinned = install.some((w) => w.version !== undefined);
    return [
      ...aptInstallFlags,
      ...this.opts.repositoryOptions,
      ...(pinned ? ['--allow-downgrades', '--allow-change-held-packages'] : []),
      ...install.map((w) => (w.version !== undefined ? `${w.name}=${w.version}` : w.name)),
    ];
  }

  async apply(host: Host, batch: BatchPlan, snap: Snapshot, log: Logger): Promise<void> {
    const offline = host.root !== '/';
    // In an image or test root, package scripts must not start services on the machine building it.
    const ownPolicy = offline && batch.install.length > 0 && !(await host.fs.stat(policyRcD));
    if (ownPolicy) {
      await host.fs.mkdirp(path.dirname(policyRcD), 0o755);
      await host.fs.writeAtomic(policyRcD, '#!/bin/sh\n# Managed by nodeup while it installs packages into this root: start no services.\nexit 101\n', { mode: 0o755 });
    }
    try {
      if (batch.repair.length > 0) await this.configurePending(host, log);
      if (batch.install.length > 0) await this.install(host, batch.install, snap, log);
      if (batch.hold.length > 0) {
        log.info({ packages: batch.hold.map((w) => `${w.name}=${w.version ?? ''}`) }, 'holding pinned packages');
        await this.run(host, 'apt-mark', ['hold', ...batch.hold.map((w) => w.name)], log);
      }
    } finally {
      if (ownPolicy) await host.fs.remove(policyRcD);
    }
  }

  private async install(host: Host, install: readonly PackageWant[], snap: Snapshot, log: Logger): Promise<void> {
    if (snap.listsStale && !this.updated) await this.update(host, snap.listsStale, log);
    const args = ['install', ...this.installArgs(install)];
    log.info({ packages: install.map((w) => (w.version !== undefined ? `${w.name}=${w.version}` : w.name)) }, 'installing packages');
    try {
      await this.run(host, 'apt-get', args, log);
      return;
    } catch (err: unknown) {
      if (!isUnavailable(err) || this.rebuilt) throw err;
      if (!this.updated) {
        // The lists we trusted as fresh lack a package or version: refresh once, then try again.
        await this.update(host, 'apt cannot find a package or version in the current lists', log);
        try {
          await this.run(host, 'apt-get', args, log);
          return;
        } catch (again: unknown) {
          if (!isUnavailable(again)) throw again;
        }
      }
    }
    // Fresh lists and still missing: the index files themselves may be damaged. apt writes them
    // without syncing, so a power cut can leave them empty, and `apt-get update` does not fetch
    // them again while the Release file is unchanged. Start the lists over, once per run.
    await this.rebuildLists(host, log);
    await this.run(host, 'apt-get', args, log);
  }

  private async rebuildLists(host: Host, log: Logger): Promise<void> {
    this.rebuilt = true;
    const names = await listFiles(host);
    const empty: string[] = [];
    for (const n of names) if ((await host.fs.stat(`${listsDir}/${n}`))?.size === 0) empty.push(n);
    log.warn({ files: names.length, empty }, 'apt still cannot find a package after an update: removing its package lists and fetching them again');
    for (const n of names) await host.fs.remove(`${listsDir}/${n}`);
    for (const n of await host.fs.list(`${listsDir}/partial`)) await host.fs.remove(`${listsDir}/partial/${n}`);
    await this.update(host, 'package lists removed', log);
  }

  private async update(host: Host, reason: string, log: Logger): Promise<void> {
    log.info({ reason }, 'refreshing package lists');
    this.updated = true;
    await this.run(host, 'apt-get', ['update', ...this.opts.repositoryOptions], log);
  }

  private async configurePending(host: Host, log: Logger): Promise<void> {
    log.warn({}, 'dpkg has unfinished work: running dpkg --configure -a');
    await runManaged(
      host,
      { file: 'dpkg', args: ['--configure', '-a', '--force-confdef', '--force-confold'], inRoot: true, env: aptEnv, classify: classifyApt },
      this.opts,
      log,
    );
  }

  private async run(host: Host, file: string, args: readonly string[], log: Logger): Promise<void> {
    await runManaged(host, { file, args, inRoot: true, env: aptEnv, classify: classifyApt }, this.opts, log, {
      onInterrupted: async () => {
        await this.configurePending(host, log);
        return true;
      },
    });
  }
}
