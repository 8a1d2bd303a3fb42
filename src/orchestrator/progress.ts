// Launch progress: each machine's phase and timings, the progress lines people read, the wait for
// receipts, and the one rule that turns a receipt into a phase (qemu guests POST theirs; cloud nodes
// publish theirs to the state store, polled here).
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Receipt } from '../app/receipt.ts';
import { sleep } from '../engine/retry.ts';
import { storeLayout, type StateStore } from '../engine/state-store.ts';
import type { Accel } from './accel.ts';

export type NodePhase = 'booting' | 'fetching' | 'nodeup running' | 'ready' | 'failed';

export interface NodeTimings {
  readonly accel?: Accel;
  /** Host ms when the instance was created (qemu started / RunInstances returned). */
  readonly launchedAtMs: number;
  /** Host ms of the guest's first report (its launch script started) and guest uptime then. */
  bootedAtMs?: number;
  bootedUptimeS?: number;
  /** Host ms and guest uptime when nodeup was started. */
  startedAtMs?: number;
  startedUptimeS?: number;
  /** Host ms the receipt arrived. */
  receiptAtMs?: number;
  /** nodeup's own wall time from its receipt. */
  nodeupMs?: number;
}

export interface NodeStatus {
  readonly name: string;
  phase: NodePhase;
  phaseSinceMs: number;
  reason?: string;
  receipt?: Receipt;
  timings: NodeTimings;
}

/**
 * Records a node's receipt and says the phase it decides: converged is ready; anything else is
 * failed, with the receipt's error (code and message) or its failed and blocked task counts as the
 * reason. The one place a receipt becomes a phase.
 */
export function recordReceipt(n: NodeStatus, r: Receipt, atMs: number): 'ready' | 'failed' {
  n.receipt = r;
  n.timings.receiptAtMs = atMs;
  if (typeof r.durationMs === 'number') n.timings.nodeupMs = r.durationMs;
  if (r.result === 'converged') return 'ready';
  n.reason = r.error ? `${r.error.code}: ${r.error.message}` : `${r.failed} task(s) failed, ${r.blocked} blocked`;
  return 'failed';
}

export async function writeTimings(dir: string, n: NodeStatus): Promise<void> {
  await fsp.writeFile(path.join(dir, 'timings.json'), JSON.stringify({ phase: n.phase, ...n.timings }, null, 2) + '\n').catch(() => undefined);
}

/** "node w-1: booting 35s". Pure. */
export function progressLine(n: NodeStatus, nowMs: number): string {
  const s = Math.round((nowMs - n.timings.launchedAtMs) / 1000);
  if (n.phase === 'ready') return `node ${n.name}: ready (converged, ${n.receipt?.changed ?? 0} changed, nodeup ${fmtS(n.timings.nodeupMs)}) after ${s}s\n`;
  if (n.phase === 'failed') return `node ${n.name}: failed after ${s}s: ${n.reason ?? 'unknown'}\n`;
  return `node ${n.name}: ${n.phase} ${s}s\n`;
}

function fmtS(ms: number | undefined): string {
  return ms === undefined ? '?' : `${(ms / 1000).toFixed(1)}s`;
}

export interface WaitOptions {
  readonly nodes: readonly NodeStatus[];
  readonly timeoutSec: number;
  readonly everySec: number;
  readonly progress: (line: string) => void;
  /** False when the machine is gone (qemu exited). */
  readonly alive?: (name: string) => Promise<boolean>;
  /** Polls for receipts (aws: the state store). */
  readonly poll?: (n: NodeStatus) => Promise<void>;
  readonly pollEverySec?: number;
}

export async function waitForNodes(w: WaitOptions): Promise<void> {
  const deadline = Date.now() + w.timeoutSec * 1000;
  let lastProgress = Date.now();
  let lastPoll = 0;
  const pending = (): NodeStatus[] => w.nodes.filter((n) => n.phase !== 'ready' && n.phase !== 'failed');
  while (pending().length > 0) {
    if (Date.now() > deadline) {
      for (const n of pending()) {
        n.reason = `no receipt within ${w.timeoutSec}s (last phase: ${n.phase})`;
        n.phase = 'failed';
        w.progress(progressLine(n, Date.now()));
      }
      break;
    }
    await sleep(500);
    if (w.poll && Date.now() - lastPoll >= (w.pollEverySec ?? 10) * 1000) {
      lastPoll = Date.now();
      for (const n of pending()) await w.poll(n);
    }
    if (w.alive) {
      for (const n of pending()) {
        if (!(await w.alive(n.name))) {
          n.reason = 'the machine stopped before its receipt arrived';
          n.phase = 'failed';
          w.progress(progressLine(n, Date.now()));
        }
      }
    }
    if (Date.now() - lastProgress >= w.everySec * 1000) {
      lastProgress = Date.now();
      for (const n of pending()) w.progress(progressLine(n, Date.now()));
    }
  }
}

/** aws: receipts come from the state store the nodes publish to. */
export function storeReceiptPoller(store: StateStore, setDone: (n: NodeStatus, r: Receipt) => void): (n: NodeStatus) => Promise<void> {
  return async (n) => {
    const raw = await store.read(storeLayout.receipt(n.name)).catch(() => undefined);
    if (!raw) return;
    try {
      const r = JSON.parse(raw.toString('utf8')) as Receipt;
      if (Date.parse(r.startedAt) >= n.timings.launchedAtMs - 60_000) setDone(n, r);
    } catch {
      // a half-written receipt: read it again next time
    }
  };
}
