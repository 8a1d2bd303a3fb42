// dnf (4) on RHEL 8-10, Rocky, AlmaLinux, CentOS Stream and Amazon Linux 2023. On a live node it
// runs as is; into another root (image bake, tests) it runs on this machine with --installroot.
// The same contract as apt: one `rpm -q` for every package; one batched `dnf install` of the missing
// ones (installed packages are never upgraded unless pinned; dnf refreshes its metadata only when
// it installs, per metadata_expire); pinned versions installed as name-version and locked in the
// versionlock plugin's list; a held rpmdb lock waited for (bounded, holder logged, exit_on_lock so
// dnf never waits unbounded); transient mirror failures retried with backoff; a package dnf cannot
// find retried once with --refresh.
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

export const versionlockList = '/etc/dnf/plugins/versionlock.list';
const queryFormat = '%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\n';
const dnfEnv: Readonly<Record<string, string>> = { LC_ALL: 'C' };

/** Parses `rpm -q --qf '%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\n'` (and versionlock.list). Pure. */
export function parseRpmQuery(stdout: string, locklist = ''): Map<string, InstalledPackage> {
  const locks = parseVersionlock(locklist);
  const out = new Map<string, InstalledPackage>();
  for (const line of stdout.split('\n')) {
    const [name, epoch, version, release] = line.split('\t');
    if (!name || epoch === undefined || !version || !release) continue;
    const evr = `${epoch}:${version}-${release}`;
    if (out.has(name)) continue; // multilib: the first is enough to say "installed"
    out.set(name, { name, version: evr, held: locks.get(name) === evr, healthy: true });
  }
  return out;
}

/** versionlock.list lines "name-epoch:version-release.*" -> name -> "epoch:version-release". Pure. */
export function parseVersionlock(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('!')) continue;
    const m = /^(.+)-(\d+):([^-]+)-(.+?)(?:\.\*)?$/.exec(line);
    if (m?.[1]) out.set(m[1], `${m[2]}:${m[3]}-${m[4]}`);
  }
  return out;
}

/** Whether an installed "epoch:version-release" satisfies a pin ("1.2-3", "0:1.2-3" or "1.2"). Pure. */
export function rpmVersionMatches(installed: string, pin: string): boolean {
  const [epoch, vr] = installed.split(/:(.*)/s) as [string, string];
  if (pin.includes(':')) return installed === pin;
  if (pin.includes('-')) return vr === pin;
  return vr.slice(0, vr.lastIndexOf('-')) === pin && epoch !== undefined;
}

/** Rewrites versionlock.list so each pinned package has exactly its lock line. Pure. */
export function renderVersionlock(current: string, locks: ReadonlyMap<string, string>): string {
  const kept = current
    .split('\n')
    .filter((raw) => {
      const line = raw.trim();
      if (!line) return false;
      if (line.startsWith('#') || line.startsWith('!')) return !line.startsWith('# nodeup:');
      const name = /^(.+)-\d+:/.exec(line)?.[1];
      return name === undefined || !locks.has(name);
    });
  const added = [...locks].sort(([a], [b]) => (a < b ? -1 : 1)).flatMap(([name, evr]) => [`# nodeup: pinned by spec.packages.pin`, `${name}-${evr}.*`]);
  return [...kept, ...added].join('\n') + '\n';
}

/** Reads dnf / rpm output. Pure. */
export function classifyDnf(res: RunResult): Outcome {
  const text = `${res.stdout}\n${res.stderr}`;
  const lock = /(RPMDB|Metadata cache|Log|\S+) (?:is )?already locked by (\d+)/.exec(text);
  if (lock) {
    const holder = /The application with PID \d+ is: (\S+)/.exec(text)?.[1];
    return { kind: 'lock', lock: `dnf ${lock[1] ?? ''} lock`, pid: lock[2], holder };
  }
  if (res.exitCode === 0) return { kind: 'ok' };
  const missing = /(?:No match for argument|Unable to find a match):? (\S+)/.exec(text);
  if (missing) return { kind: 'unavailable', reason: `package ${missing[1] ?? ''} is not in any enabled repository` };
  const transient =
    /(Curl error[^\n]*|Cannot download [^\n]*|Failed to download metadata[^\n]*|Cannot prepare internal mirrorlist[^\n]*|Errors during downloading metadata[^\n]*|Status code: 5\d\d[^\n]*|Timeout was reached[^\n]*|Could not resolve host[^\n]*|Failed to download packages[^\n]*|Librepo error[^\n]*)/.exec(
      text,
    );
  if (transient) return { kind: 'transient', reason: (transient[1] ?? '').trim() };
  const err = text.split('\n').find((l) => /^Error:/.test(l.trim()));
  return { kind: 'failed', reason: err ? err.trim().slice(6).trim() : `exit code ${res.exitCode}` };
}

export class DnfManager implements PackageManager {
  readonly name = 'dnf' as const;
  private readonly opts: ManagerOptions;
  private refreshed = false;

  constructor(opts: ManagerOptions) {
    this.opts = opts;
  }

  queryNames(wants: readonly PackageWant[]): readonly string[] {
    const names = wants.map((w) => w.name);
    if (this.opts.versionlockPackage && wants.some((w) => w.version !== undefined)) names.push(this.opts.versionlockPackage);
    return names;
  }

  /** rpm and dnf run on this machine; into another root they are pointed at it. */
  private rootArgs(host: Host, tool: 'rpm' | 'dnf'): string[] {
    if (host.root === '/') return [];
    return tool === 'rpm' ? ['--root', host.root] : [`--installroot=${host.root}`, `--releasever=${this.opts.releaseVer}`];
  }

  async snapshot(host: Host, names: readonly string[]): Promise<Snapshot> {
    const res = await host.run('rpm', [...this.rootArgs(host, 'rpm'), '-q', '--qf', queryFormat, ...names], {
      env: dnfEnv,
      okExitCodes: Array.from({ length: 255 }, (_, i) => i + 1),
    });
    const locklist = (await host.fs.read(versionlockList))?.toString('utf8') ?? '';
    return { installed: parseRpmQuery(res.stdout, locklist) };
  }

  plan(wants: readonly PackageWant[], snap: Snapshot): BatchPlan {
    const install: PackageWant[] = [];
    const hold: PackageWant[] = [];
    for (const w of sortedWants(wants)) {
      const have = snap.installed.get(w.name);
      const pinOk = w.version === undefined || (have !== undefined && rpmVersionMatches(have.version, w.version));
      if (!have || !pinOk) install.push(w);
      if (w.version !== undefined && (!have?.held || !pinOk)) hold.push(w);
    }
    const plugin = this.opts.versionlockPackage;
    if (hold.length > 0 && plugin && !snap.installed.has(plugin) && !install.some((w) => w.name === plugin)) {
      install.push({ name: plugin });
      install.sort((a, b) => (a.name < b.name ? -1 : 1));
    }
    const commands: string[] = [];
    if (install.length > 0) commands.push(['dnf', ...this.installArgs(install)].join(' '));
    if (hold.length > 0) commands.push(`versionlock ${hold.map((w) => `${w.name}-${w.version ?? ''}`).join(' ')}  # writes ${versionlockList}`);
    return { install, hold, repair: [], commands };
  }

  private installArgs(install: readonly PackageWant[]): string[] {
    return [
      'install',
      '--assumeyes',
      ...this.opts.repositoryOptions,
      '--setopt=install_weak_deps=False',
      '--setopt=exit_on_lock=True',
      ...install.map((w) => (w.version !== undefined ? `${w.name}-${w.version}` : w.name)),
    ];
  }

  async apply(host: Host, batch: BatchPlan, _snap: Snapshot, log: Logger): Promise<void> {
    if (batch.install.length > 0) await this.install(host, batch.install, log);
    if (batch.hold.length > 0) await this.lock(host, batch.hold, log);
  }

  private async install(host: Host, install: readonly PackageWant[], log: Logger): Promise<void> {
    log.info({ packages: install.map((w) => (w.version !== undefined ? `${w.name}-${w.version}` : w.name)) }, 'installing packages');
    const args = this.installArgs(install);
    try {
      await this.run(host, args, log);
    } catch (err: unknown) {
      // Cached metadata may predate the package or version: refresh it once, then try again.
      if (!isUnavailable(err) || this.refreshed) throw err;
      this.refreshed = true;
      log.info({ reason: 'dnf cannot find a package or version in its cached metadata' }, 'refreshing package metadata');
      await this.run(host, [...args, '--refresh'], log);
    }
  }

  private async run(host: Host, args: readonly string[], log: Logger): Promise<void> {
    await runManaged(host, { file: 'dnf', args: [...this.rootArgs(host, 'dnf'), ...args], inRoot: false, env: dnfEnv, classify: classifyDnf }, this.opts, log);
  }

  /** Locks each pinned package at the version now installed, in the versionlock plugin's own list. */
  private async lock(host: Host, hold: readonly PackageWant[], log: Logger): Promise<void> {
    const after = (await this.snapshot(host, hold.map((w) => w.name))).installed;
    const locks = new Map<string, string>();
    for (const w of hold) {
      const have = after.get(w.name);
      if (have) locks.set(w.name, have.version);
    }
    const current = (await host.fs.read(versionlockList))?.toString('utf8') ?? '';
    log.info({ packages: [...locks].map(([n, v]) => `${n}-${v}`), file: versionlockList }, 'locking pinned package versions');
    await host.fs.mkdirp('/etc/dnf/plugins', 0o755);
    await host.fs.writeAtomic(versionlockList, renderVersionlock(current, locks), { mode: 0o644 });
  }
}
