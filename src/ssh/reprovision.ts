// Reprovisioning one host over SSH with the same payload as every other boot path: take the host's
// lock, upload the binary only when its hash differs, write the boot config atomically, run
// `nodeup apply` (or plan) with its output streamed back, release the lock.
//
// The lock is `flock -n` held by a command whose stdin is our open channel: it is released when we
// close the channel or when the connection dies (no stale locks after a crashed operator), and its
// owner is written next to it so a refused operator sees who holds it.
import { randomBytes } from 'node:crypto';
import { AgentError, rolledBackExitCode } from '../engine/errors.ts';
import type { Logger } from '../engine/log.ts';
import type { SshSession } from './client.ts';
import { targetName } from './target.ts';

export interface ReprovisionPlan {
  readonly mode: 'apply' | 'plan';
  /** The local binary to install and its SHA-256. */
  readonly binary: { readonly localPath: string; readonly sha256: string };
  /** Boot config content to write (validated by the caller); undefined keeps the host's own. */
  readonly bootConfig?: string;
  readonly remoteBinary: string;
  readonly remoteConfig: string;
  readonly lockFile: string;
  /** Who holds the lock, shown to a refused operator. */
  readonly owner: string;
  /** Extra arguments for the remote run (--only, --skip, --ignore-preflight). */
  readonly runArgs: readonly string[];
  readonly logFormat: 'json' | 'pretty';
  /** nodeup commands (arguments) run one by one after an apply succeeded; the first that fails fails the host (a rollout's gate). */
  readonly gates?: readonly (readonly string[])[];
}

export interface HostReport {
  readonly uploaded: boolean;
  readonly configWritten: boolean;
  readonly exitCode: number;
  /** The gates passed, by their first words (`ready`, `etcd members --check`). */
  readonly gates: readonly string[];
}

const lockedExit = 75;
const lockedMarker = 'NODEUP-SSH-LOCKED';

export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `sudo -n` for non-root users: the script then runs as root or fails fast without a prompt. */
export function asRoot(user: string, script: string, args: readonly string[] = []): string {
  const cmd = `sh -c ${shq(script)} nodeup-ssh ${args.map(shq).join(' ')}`.trimEnd();
  return user === 'root' ? cmd : `sudo -n ${cmd}`;
}

export function lockScript(): string {
  return [
    'mkdir -p "$(dirname "$1")"',
    `exec flock -n -E ${lockedExit} "$1" sh -c 'printf "%s\\n" "$1" >"$2.owner"; echo ${lockedMarker}; exec cat >/dev/null' lock "$2" "$1"`,
  ].join('\n');
}

export const hashScript = 'if [ -f "$1" ]; then sha256sum "$1" | cut -c1-64; fi';
export const installBinaryScript = 'mkdir -p "$(dirname "$2")" && install -m 0755 "$1" "$2.nodeup-new" && mv -f "$2.nodeup-new" "$2"; rc=$?; rm -f "$1"; exit $rc';
export const writeConfigScript = 'umask 077; mkdir -p "$(dirname "$1")" && cat >"$1.nodeup-new" && chmod 0600 "$1.nodeup-new" && mv -f "$1.nodeup-new" "$1"';

export async function reprovisionHost(session: SshSession, plan: ReprovisionPlan, io: { log: Logger; out: (line: string) => void }): Promise<HostReport> {
  const user = session.target.user;
  const name = targetName(session.target);
  const log = io.log.child({ host: name });

  const lock = await session.hold(asRoot(user, lockScript(), [plan.lockFile, plan.owner]), lockedMarker);
  if (!lock.held) {
    if (lock.code === lockedExit) {
      const owner = await session.exec(asRoot(user, 'cat "$1.owner" 2>/dev/null || true', [plan.lockFile]));
      throw new AgentError('LOCKED', `${name} is locked by another operator (${owner.stdout.trim() || 'owner unknown'}); wait for it to finish`, {
        details: { host: name, lock: plan.lockFile, owner: owner.stdout.trim() },
      });
    }
    throw new AgentError('SSH', `${name}: cannot take the lock ${plan.lockFile} (exit ${lock.code}): ${lock.stderr.trim()}`, { details: { host: name, exitCode: lock.code } });
  }
  log.info({ lock: plan.lockFile }, 'lock taken');
  try {
    const remoteHash = (await session.exec(asRoot(user, hashScript, [plan.remoteBinary]))).stdout.trim();
    let uploaded = false;
    if (remoteHash !== plan.binary.sha256) {
      const tmp = `/tmp/.nodeup-upload-${randomBytes(6).toString('hex')}`;
      log.info({ remote: plan.remoteBinary, from: remoteHash || 'absent', to: plan.binary.sha256 }, 'uploading nodeup');
      await session.upload(plan.binary.localPath, tmp, 0o700);
      const inst = await session.exec(asRoot(user, installBinaryScript, [tmp, plan.remoteBinary]));
      if (inst.code !== 0) throw new AgentError('SSH', `${name}: cannot install ${plan.remoteBinary}: ${inst.stderr.trim()}`, { details: { host: name, exitCode: inst.code } });
      uploaded = true;
    } else {
      log.info({ remote: plan.remoteBinary }, 'nodeup binary unchanged, not uploading');
    }
    let configWritten = false;
    if (plan.bootConfig !== undefined) {
      const w = await session.exec(asRoot(user, writeConfigScript, [plan.remoteConfig]), { input: plan.bootConfig });
      if (w.code !== 0) throw new AgentError('SSH', `${name}: cannot write ${plan.remoteConfig}: ${w.stderr.trim()}`, { details: { host: name, exitCode: w.code } });
      configWritten = true;
    }
    const args = [plan.mode, '--config', plan.remoteConfig, '--log-format', plan.logFormat, ...plan.runArgs];
    log.info({ mode: plan.mode }, 'running nodeup');
    const run = await session.exec(asRoot(user, 'exec "$@"', [plan.remoteBinary, ...args]), {
      onLine: (line) => io.out(`[${name}] ${line}\n`),
    });
    if (run.code === rolledBackExitCode && plan.mode === 'apply') {
      throw new AgentError('SSH', `${name}: the new config failed and nodeup apply rolled the host back to its last good config (exit ${run.code}): the rollout stops here`, {
        details: { host: name, exitCode: run.code, rolledBack: true },
      });
    }
    if (run.code !== 0) {
      throw new AgentError('SSH', `${name}: nodeup ${plan.mode} exited with ${run.code}`, { details: { host: name, exitCode: run.code } });
    }
    const passed: string[] = [];
    for (const gate of plan.mode === 'apply' ? (plan.gates ?? []) : []) {
      const first = gate.findIndex((a) => a.startsWith('-'));
      const label = (first < 0 ? gate : gate.slice(0, first)).join(' ') + (gate.includes('--check') ? ' --check' : '');
      log.info({ gate: label }, 'gate');
      const g = await session.exec(asRoot(user, 'exec "$@"', [plan.remoteBinary, ...gate]), { onLine: (line) => io.out(`[${name}] ${line}\n`) });
      if (g.code !== 0) {
        throw new AgentError('SSH', `${name}: gate nodeup ${label} failed (exit ${g.code}): the rollout stops here`, { details: { host: name, gate: label, exitCode: g.code } });
      }
      passed.push(label);
    }
    return { uploaded, configWritten, exitCode: run.code, gates: passed };
  } finally {
    await lock.release();
    log.info({}, 'lock released');
  }
}
