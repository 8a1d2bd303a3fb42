// The contract between the package tasks and a package manager (apt.ts, dnf.ts): one cheap query
// for every package of the run, a pure plan of what one batch would change, and the apply of that
// batch. Shared here: the lock wait and the transient-failure retry every command goes through.
import { AgentError } from '../engine/errors.ts';
import type { Host, RunOptions, RunResult } from '../engine/host/host.ts';
import type { Logger } from '../engine/log.ts';

export interface InstalledPackage {
  readonly name: string;
  /** apt: the Debian version ("1.8.9-2"); dnf: "<epoch>:<version>-<release>". */
  readonly version: string;
  /** apt-mark hold / dnf versionlock in place (at the pinned version, for dnf). */
  readonly held: boolean;
  /** false when dpkg left it unpacked or half-configured (needs `dpkg --configure -a`). */
  readonly healthy: boolean;
}

export interface PackageWant {
  readonly name: string;
  /** Exact version to install and hold. */
  readonly version?: string | undefined;
}

/** What one query saw: installed packages (absent = not installed) and, for apt, list freshness. */
export interface Snapshot {
  readonly installed: ReadonlyMap<string, InstalledPackage>;
  /** Why an install would first refresh the package lists; undefined when they are fresh. */
  readonly listsStale?: string | undefined;
}

/** What one batch changes. Pure data, printed by the plan. */
export interface BatchPlan {
  /** Packages to install (missing) or move to their pinned version, sorted by name. */
  readonly install: readonly PackageWant[];
  /** Pinned packages to hold / versionlock after the install. */
  readonly hold: readonly PackageWant[];
  /** Installed packages dpkg left broken (repaired first). */
  readonly repair: readonly string[];
  /** The command lines the batch would run, in order (for the plan). */
  readonly commands: readonly string[];
}

export interface PackageManager {
  readonly name: 'apt' | 'dnf';
  /** Names to query besides the wanted ones (dnf: the versionlock plugin when pins exist). */
  queryNames(wants: readonly PackageWant[]): readonly string[];
  /** One query for all names: no lock, no network. */
  snapshot(host: Host, names: readonly string[]): Promise<Snapshot>;
  /** Pure: the batch that makes `wants` true on top of `snap`. */
  plan(wants: readonly PackageWant[], snap: Snapshot): BatchPlan;
  /** Runs the batch: at most one list refresh, one install command (plus recovery), one hold. */
  apply(host: Host, batch: BatchPlan, snap: Snapshot, log: Logger): Promise<void>;
}

export interface ManagerOptions {
  /** How long to wait for a lock held by another process before failing. */
  readonly lockTimeoutMs: number;
  /** apt lists younger than this need no `apt-get update` before an install. */
  readonly listsMaxAgeMs: number;
  /** Tries of a command that fails on a transient mirror error. */
  readonly attempts: number;
  /** First retry delay; doubles per attempt. */
  readonly retryBaseMs: number;
  /** dnf's $releasever, needed when installing into a root that has no system-release yet. */
  readonly releaseVer: string;
  /** The package that provides `dnf versionlock`. */
  readonly versionlockPackage: string | null;
  /** Extra options for every apt-get update/install or dnf install: spec.packages.onlyRepositories (repositories.ts). */
  readonly repositoryOptions: readonly string[];
}

export const defaultManagerOptions: ManagerOptions = {
  lockTimeoutMs: 600_000,
  listsMaxAgeMs: 3_600_000,
  attempts: 4,
  retryBaseMs: 2_000,
  releaseVer: '',
  versionlockPackage: null,
  repositoryOptions: [],
};

/** How a failed (or suspicious) package-manager run reads. */
export type Outcome =
  | { readonly kind: 'ok' }
  | { readonly kind: 'lock'; readonly lock: string; readonly pid?: string | undefined; readonly holder?: string | undefined }
  | { readonly kind: 'interrupted' }
  | { readonly kind: 'transient'; readonly reason: string }
  | { readonly kind: 'unavailable'; readonly reason: string }
  | { readonly kind: 'failed'; readonly reason: string };

export interface ManagedCommand {
  readonly file: string;
  readonly args: readonly string[];
  /** Runs through chroot (apt) or on the host with --installroot (dnf). */
  readonly inRoot: boolean;
  readonly env?: Readonly<Record<string, string>>;
  /** Turns exit code and output into an outcome. */
  readonly classify: (res: RunResult) => Outcome;
}

export interface RunnerHooks {
  /** Called on `interrupted` (dpkg asked for --configure -a); return true to run the command again. */
  readonly onInterrupted?: () => Promise<boolean>;
}

const anyExitCode = Array.from({ length: 255 }, (_, i) => i + 1);

/** The last lines of output that say what went wrong (for error messages). */
export function tailOf(res: RunResult, max = 6): string {
  const lines = `${res.stdout}\n${res.stderr}`.split('\n').map((l) => l.trimEnd()).filter(Boolean);
  const telling = lines.filter((l) => /^(E:|W:|Error)|error|fail|not found|no match|unable/i.test(l));
  return (telling.length > 0 ? telling : lines).slice(-max).join('\n');
}

/** Logs install progress: a few milestone lines at info, everything at debug. */
function progress(log: Logger, file: string): NonNullable<RunOptions['onLine']> {
  return (line, stream) => {
    const text = line.trimEnd();
    if (!text) return;
    if (/^(Setting up |Installing\s*:|Upgrading\s*:|Downgrading\s*:|Get:\d+ |Hit:\d+ |Running transaction|Complete!)/.test(text.trim())) {
      log.info({ command: file, line: text.trim() }, 'package manager progress');
    } else log.debug({ command: file, stream, line: text }, 'package manager output');
  };
}

/**
 * Runs one package-manager command until it succeeds: waits (bounded) while another process holds
 * the lock, logging who; retries transient mirror failures with exponential backoff; lets the
 * caller repair an interrupted dpkg. Throws AgentError LOCKED, COMMAND_FAILED, or the
 * `unavailable` outcome as COMMAND_FAILED with details.outcome = 'unavailable'.
 */
export async function runManaged(host: Host, cmd: ManagedCommand, opts: ManagerOptions, log: Logger, hooks: RunnerHooks = {}): Promise<RunResult> {
  const argv = [cmd.file, ...cmd.args];
  const started = host.now();
  let attempt = 0;
  let lockWaits = 0;
  let repaired = false;
  for (;;) {
    const runOpts: RunOptions = { okExitCodes: anyExitCode, onLine: progress(log, cmd.file), ...(cmd.env ? { env: cmd.env } : {}) };
    log.debug({ argv }, 'package manager command');
    const res = cmd.inRoot ? await host.runInRoot(cmd.file, cmd.args, runOpts) : await host.run(cmd.file, cmd.args, runOpts);
    const out = cmd.classify(res);
    switch (out.kind) {
      case 'ok':
        return res;
      case 'lock': {
        const waitedMs = host.now() - started;
        if (waitedMs >= opts.lockTimeoutMs) {
          throw new AgentError(
            'LOCKED',
            `${out.lock} is still held${out.pid ? ` by process ${out.pid}${out.holder ? ` (${out.holder})` : ''}` : ''} after ${Math.round(waitedMs / 1000)}s: stop that process or raise spec.packages.lockTimeoutSeconds`,
            { details: { argv, lock: out.lock, pid: out.pid, holder: out.holder, waitedMs } },
          );
        }
        const waitMs = Math.min(1000 * 2 ** Math.min(lockWaits, 3), 10_000);
        lockWaits++;
        log.info({ lock: out.lock, holderPid: out.pid, holder: out.holder, waitedMs, waitMs, timeoutMs: opts.lockTimeoutMs }, 'package manager lock held by another process, waiting');
        await host.sleep(waitMs);
        continue;
      }
      case 'interrupted':
        if (!repaired && hooks.onInterrupted) {
          repaired = true;
          if (await hooks.onInterrupted()) continue;
        }
        throw new AgentError('COMMAND_FAILED', `${cmd.file} failed: dpkg was interrupted and dpkg --configure -a did not fix it`, {
          details: { argv, exitCode: res.exitCode, stderrTail: tailOf(res) },
        });
      case 'transient': {
        attempt++;
        if (attempt >= opts.attempts) {
          throw new AgentError('COMMAND_FAILED', `${cmd.file} failed ${attempt} times on a mirror error: ${out.reason}`, {
            details: { argv, exitCode: res.exitCode, attempts: attempt, stderrTail: tailOf(res) },
          });
        }
        const waitMs = opts.retryBaseMs * 2 ** (attempt - 1);
        log.warn({ argv, attempt, waitMs, reason: out.reason }, 'transient package mirror failure, retrying');
        await host.sleep(waitMs);
        continue;
      }
      case 'unavailable':
        throw new AgentError('COMMAND_FAILED', `${cmd.file}: ${out.reason}`, {
          details: { argv, exitCode: res.exitCode, outcome: 'unavailable', stderrTail: tailOf(res) },
        });
      case 'failed':
        throw new AgentError('COMMAND_FAILED', `${cmd.file} exited with ${res.exitCode}: ${out.reason}`, {
          details: { argv, exitCode: res.exitCode, stderrTail: tailOf(res) },
        });
    }
  }
}

export function isUnavailable(err: unknown): boolean {
  return err instanceof AgentError && err.details.outcome === 'unavailable';
}

/** "name" or "name=version" style argument lists, sorted. Pure. */
export function sortedWants(wants: Iterable<PackageWant>): PackageWant[] {
  return [...wants].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
