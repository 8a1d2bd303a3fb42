// The `swap` task kind (`swap:off`): no swap in use, now and after a reboot. Live: `swapoff -a` when
// /proc/swaps lists a device. Always: swap lines of /etc/fstab commented out (kept, so a person can
// see what was there). Added only when kubelet runs with NoSwap and the user lets nodeup disable swap.
import type { Host } from '../engine/host/host.ts';
import { fieldChange, type ApplyContext, type Change, type Task, type TaskKey } from '../engine/task.ts';
import { swapKey } from '../model/paths/node-prereqs.ts';

export const fstabPath = '/etc/fstab';
export const disabledMarker = '# disabled by nodeup (kubelet NoSwap): ';

export interface SwapSpec {
  readonly live: boolean;
  readonly after?: readonly TaskKey[];
}

interface SwapActual {
  /** Active fstab lines whose type is swap. */
  readonly fstabSwap: readonly string[];
  /** Devices /proc/swaps lists (live only). */
  readonly active: readonly string[];
}

/** fstab lines (not comments) whose third field is "swap". Pure. */
export function fstabSwapLines(fstab: string): string[] {
  return fstab.split('\n').filter((l) => {
    const t = l.trim();
    if (!t || t.startsWith('#')) return false;
    return t.split(/\s+/)[2] === 'swap';
  });
}

/** The fstab with its swap lines commented out. Pure. */
export function commentSwapLines(fstab: string): string {
  const swap = new Set(fstabSwapLines(fstab));
  return fstab
    .split('\n')
    .map((l) => (swap.has(l) ? `${disabledMarker}${l}` : l))
    .join('\n');
}

/** Devices listed in /proc/swaps (after its header line). Pure. */
export function activeSwaps(procSwaps: string): string[] {
  return procSwaps
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

export class SwapOffTask implements Task<SwapActual> {
  readonly key: TaskKey = swapKey;
  readonly after: readonly TaskKey[];
  readonly spec: SwapSpec;
  constructor(spec: SwapSpec) {
    this.spec = spec;
    this.after = spec.after ?? [];
  }

  async observe(host: Host): Promise<SwapActual> {
    const fstab = (await host.fs.read(fstabPath))?.toString('utf8') ?? '';
    const active = this.spec.live ? activeSwaps((await host.fs.read('/proc/swaps'))?.toString('utf8') ?? '') : [];
    return { fstabSwap: fstabSwapLines(fstab), active };
  }

  diff(actual: SwapActual | undefined): readonly Change[] {
    const out: Change[] = [];
    const n = actual?.fstabSwap.length ?? 0;
    if (n > 0) out.push(fieldChange('fstab', `${n} swap entr${n === 1 ? 'y' : 'ies'}`, 'commented out'));
    const active = actual?.active ?? [];
    if (active.length > 0) out.push(fieldChange('active swap', active.join(' '), 'off'));
    return out;
  }

  async apply(host: Host, changes: readonly Change[], _ctx: ApplyContext): Promise<void> {
    if (changes.some((c) => c.field === 'active swap')) await host.run('swapoff', ['-a']);
    if (changes.some((c) => c.field === 'fstab')) {
      const raw = await host.fs.read(fstabPath);
      const st = await host.fs.stat(fstabPath);
      if (!raw || !st) return;
      await host.fs.writeAtomic(fstabPath, commentSwapLines(raw.toString('utf8')), { mode: st.mode, uid: st.uid, gid: st.gid });
    }
  }
}
