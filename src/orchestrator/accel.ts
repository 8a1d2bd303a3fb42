// Which QEMU accelerator works here: KVM when a probe boot prints the guest kernel's first line
// within a few seconds, else TCG (software emulation). /dev/kvm existing is not enough: on some
// machines it exists but guests hang before their first message.
import { spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Logger } from '../engine/log.ts';

export type Accel = 'kvm' | 'tcg';

/** QEMU arguments for an accelerator. Pure. */
export function accelArgs(accel: Accel): string[] {
  return accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,thread=multi', '-cpu', 'max'];
}

export interface ProbeOptions {
  readonly kernel: string;
  readonly log: Logger;
  readonly timeoutMs?: number;
  readonly qemu?: string;
}

/** Boots the kernel alone under KVM and waits for its banner on the serial port. */
export async function probeKvm(opts: ProbeOptions): Promise<boolean> {
  try {
    await fsp.access('/dev/kvm', fsp.constants.R_OK | fsp.constants.W_OK);
  } catch {
    opts.log.info({ reason: '/dev/kvm not usable' }, 'kvm probe: not available');
    return false;
  }
  const timeoutMs = opts.timeoutMs ?? 8000;
  const t0 = Date.now();
  const child = spawn(
    opts.qemu ?? 'qemu-system-x86_64',
    ['-accel', 'kvm', '-cpu', 'host', '-m', '256', '-nodefaults', '-display', 'none', '-no-reboot', '-serial', 'stdio',
      '-kernel', opts.kernel, '-append', 'console=ttyS0 panic=-1 earlyprintk=ttyS0'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const ok = await new Promise<boolean>((resolve) => {
    let out = '';
    const timer = setTimeout(() => resolve(false), timeoutMs);
    const done = (v: boolean): void => {
      clearTimeout(timer);
      resolve(v);
    };
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      if (/Linux version/.test(out)) done(true);
    });
    child.on('error', () => done(false));
    child.on('exit', () => done(/Linux version/.test(out)));
  });
  child.kill('SIGKILL');
  opts.log.info({ kvm: ok, probeMs: Date.now() - t0 }, 'kvm probe finished');
  return ok;
}

/**
 * NODEUP_QEMU_ACCEL=kvm|tcg forces a choice; otherwise probe, once per host boot when `cacheFile`
 * is given (the answer is kept with the kernel's boot id, so a reboot or a new machine probes again).
 */
export async function chooseAccel(opts: ProbeOptions & { readonly forced?: string | undefined; readonly cacheFile?: string }): Promise<Accel> {
  if (opts.forced === 'kvm' || opts.forced === 'tcg') return opts.forced;
  const bootId = (await fsp.readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')).trim();
  if (opts.cacheFile && bootId) {
    const cached = await fsp.readFile(opts.cacheFile, 'utf8').then((t) => JSON.parse(t) as { bootId?: string; accel?: string }, () => undefined);
    if (cached?.bootId === bootId && (cached.accel === 'kvm' || cached.accel === 'tcg')) {
      opts.log.debug({ accel: cached.accel }, 'accelerator from this boot\'s probe');
      return cached.accel;
    }
  }
  const accel: Accel = (await probeKvm(opts)) ? 'kvm' : 'tcg';
  if (opts.cacheFile && bootId) {
    await fsp.mkdir(path.dirname(opts.cacheFile), { recursive: true });
    await fsp.writeFile(opts.cacheFile, JSON.stringify({ bootId, accel }) + '\n').catch(() => undefined);
  }
  return accel;
}
