import { describe, expect, it } from 'vitest';
import type { Receipt } from '../app/receipt.ts';
import { progressLine, recordReceipt, type NodeStatus } from './progress.ts';

const receipt = (o: Partial<Receipt>): Receipt => ({
  apiVersion: 'nodeup.dev/v1alpha1',
  kind: 'Receipt',
  nodeName: 'w-1',
  cluster: 'c',
  instanceGroup: 'nodes',
  mode: 'apply',
  configHash: 'sha256:' + '0'.repeat(64),
  nodeupVersion: 'test',
  startedAt: new Date(0).toISOString(),
  finishedAt: new Date(0).toISOString(),
  durationMs: 12_300,
  result: 'converged',
  changed: 5,
  failed: 0,
  blocked: 0,
  tasks: [],
  ...o,
});
const node = (): NodeStatus => ({ name: 'w-1', phase: 'nodeup running', phaseSinceMs: 0, timings: { launchedAtMs: 0 } });

describe('recordReceipt: the one rule from a receipt to a phase (qemu reports and cloud polls alike)', () => {
  it('converged: ready, with nodeup\'s own time and the arrival time', () => {
    const n = node();
    expect(recordReceipt(n, receipt({}), 40_000)).toBe('ready');
    expect([n.timings.nodeupMs, n.timings.receiptAtMs, n.reason]).toEqual([12_300, 40_000, undefined]);
    n.phase = 'ready';
    expect(progressLine(n, 45_000)).toBe('node w-1: ready (converged, 5 changed, nodeup 12.3s) after 45s\n');
  });

  it('failed: the error code and message, else the failed and blocked counts', () => {
    const a = node();
    expect(recordReceipt(a, receipt({ result: 'failed', error: { code: 'CHECKSUM_MISMATCH', message: 'kubelet: sha256 differs' } }), 1)).toBe('failed');
    expect(a.reason).toBe('CHECKSUM_MISMATCH: kubelet: sha256 differs');
    const b = node();
    expect(recordReceipt(b, receipt({ result: 'failed', failed: 2, blocked: 7 }), 1)).toBe('failed');
    expect(b.reason).toBe('2 task(s) failed, 7 blocked');
  });
});
