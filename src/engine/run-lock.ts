// One nodeup run at a time on a node. `apply` and `bake` (so the boot-time nodeup.service, a manual
// apply and an apply over SSH alike) take <root>/run/nodeup/apply.lock before they read anything;
// a second run waits, logging who holds the lock, or with --no-wait stops at once (LOCKED, exit 1).
// `plan` only reads and takes no lock.
//
// The lock is proper-lockfile's: an atomic mkdir of the lock directory, whose mtime the holder
// refreshes; a holder that died without releasing it (SIGKILL) leaves a directory that turns stale
// after `staleMs` without a refresh, and the next run takes it over. /run is a tmpfs, so a power
// cut leaves no lock behind at all. Beside the directory, apply.lock.json names the holder (pid,
// mode, command line, start), written atomically after the lock is taken: only for the waiting
// run's log line, never to decide anything.
import * as path from 'node:path';
import { AgentError, errorMessage } from './errors.ts';
import type { Host } from './host/host.ts';
import type { Logger } from './log.ts';

export const runLockPath = '/run/nodeup/apply.lock';

export interface RunLockHolder {
  readonly pid: number;
  readonly mode: string;
  readonly command: string;
  readonly since: string;
}

export interface RunLockOptions {
  /** The node: the lock is <host root>/run/nodeup/apply.lock. */
  readonly host: Host;
  /** apply or bake: named in the holder file. */
  readonly mode: string;
  /** false: stop at once with LOCKED when another run holds the lock. */
  readonly wait: boolean;
  readonly log: Logger;
  /** Poll interval while waiting (default 1 s). */
  readonly pollMs?: number;
  /** A lock not refreshed for this long belongs to a dead run (default 60 s; the holder refreshes every staleMs / 6). */
  readonly staleMs?: number;
}

export interface RunLock {
  /** How long this run waited for another one. */
  readonly waitedMs: number;
  release(): Promise<void>;
}

const progressEveryMs = 30_000;

async function readHolder(host: Host, file: string): Promise<RunLockHolder | undefined> {
  try {
    const data = await host.fs.read(file);
    return data ? (JSON.parse(data.toString('utf8')) as RunLockHolder) : undefined;
  } catch {
    return undefined;
  }
}

/** "pid 123, `nodeup apply ...` since 2026-12-06T10:00:00Z" for a log line or an error. Pure. */
export function describeHolder(h: RunLockHolder | undefined): string {
  return h ? `pid ${h.pid}, ${h.mode} (\`${h.command}\`) since ${h.since}` : 'holder unknown (its record is not written yet or was lost)';
}

export async function takeRunLock(o: RunLockOptions): Promise<RunLock> {
  // proper-lockfile works on the real path and locks <target>.lock: the target need not exist.
  const lockDir = path.join(o.host.root, runLockPath);
  const target = lockDir.slice(0, -'.lock'.length);
  const holderFile = `${runLockPath}.json`;
  const staleMs = o.staleMs ?? 60_000;
  await o.host.fs.mkdirp(path.posix.dirname(runLockPath), 0o755);
  // Loaded here, not at import: proper-lockfile installs exit and signal handlers when evaluated.
  const { default: lockfile } = await import('proper-lockfile');
  const started = Date.now();
  let lastProgress = -Infinity;
  for (;;) {
    let release: (() => Promise<void>) | undefined;
    try {
      release = await lockfile.lock(target, {
        realpath: false,
        stale: staleMs,
        update: Math.max(1000, Math.floor(staleMs / 6)),
        retries: 0,
        // The refresh failed or another run took the lock over: say so; this run goes on.
        onCompromised: (err: Error) => o.log.error({ lock: lockDir, err: errorMessage(err) }, 'the run lock was lost: another nodeup run may now change this node too'),
      });
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') {
        throw new AgentError('LOCKED', `cannot take the run lock ${lockDir}: ${errorMessage(err)}`, { details: { lock: lockDir }, cause: err });
      }
      const holder = await readHolder(o.host, holderFile);
      if (!o.wait) {
        throw new AgentError('LOCKED', `another nodeup run is converging this node (${describeHolder(holder)}): wait for it to finish, or run without --no-wait to wait for it`, {
          details: { lock: lockDir, ...(holder ? { holderPid: holder.pid, holderMode: holder.mode, holderSince: holder.since } : {}) },
        });
      }
      if (Date.now() - lastProgress >= progressEveryMs) {
        o.log.info({ lock: lockDir, holder: describeHolder(holder), waitedS: Math.round((Date.now() - started) / 1000) }, 'waiting for another nodeup run to finish');
        lastProgress = Date.now();
      }
      await new Promise((r) => setTimeout(r, o.pollMs ?? 1000));
      continue;
    }
    const holder: RunLockHolder = { pid: process.pid, mode: o.mode, command: ['nodeup', ...process.argv.slice(2)].join(' '), since: new Date().toISOString() };
    await o.host.fs.writeAtomic(holderFile, JSON.stringify(holder) + '\n', { mode: 0o644 });
    const waitedMs = Date.now() - started;
    if (waitedMs >= (o.pollMs ?? 1000)) o.log.info({ lock: lockDir, waitedS: Math.round(waitedMs / 1000) }, 'run lock taken after waiting');
    const taken = release;
    return {
      waitedMs,
      async release() {
        await o.host.fs.remove(holderFile);
        await taken().catch((err: unknown) => o.log.warn({ lock: lockDir, err: errorMessage(err) }, 'cannot release the run lock (it turns stale by itself)'));
      },
    };
  }
}
