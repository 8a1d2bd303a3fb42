import { describe, expect, it } from 'vitest';
import { NotReadyError } from './errors.ts';
import { execute } from './executor.ts';
import { Graph } from './graph.ts';
import { createTestHost } from '../../tests/support/test-host.ts';
import { silentLogger } from './log.ts';
import type { Change, Task, TaskKey } from './task.ts';

/** A fake task recording what happened to it (k0s's Fake pattern). */
function fake(
  key: TaskKey,
  opts: { after?: TaskKey[]; notify?: TaskKey[]; changes?: Change[]; fail?: Error; notReadyTimes?: number; exclusive?: 'package-manager'; delayMs?: number } = {},
  events: string[] = [],
): Task<string> {
  let notReady = opts.notReadyTimes ?? 0;
  let applied = false;
  return {
    key,
    after: opts.after ?? [],
    ...(opts.notify ? { notify: opts.notify } : {}),
    ...(opts.exclusive ? { exclusive: opts.exclusive } : {}),
    reaction: 'restart',
    async observe() {
      if (notReady > 0) {
        notReady--;
        throw new NotReadyError(`${key} not ready`);
      }
      return applied ? 'done' : undefined;
    },
    diff(actual) {
      return actual === 'done' ? [] : (opts.changes ?? []);
    },
    async apply() {
      events.push(`start ${key}`);
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      if (opts.fail) throw opts.fail;
      applied = true;
      events.push(`end ${key}`);
    },
    async react() {
      events.push(`react ${key}`);
    },
  };
}

const change: Change[] = [{ field: 'content', to: 'x' }];

async function run(tasks: Task<string>[], mode: 'plan' | 'apply' = 'apply') {
  const g = new Graph();
  for (const t of tasks) g.add(t);
  const host = await createTestHost();
  try {
    return await execute(g.finish(), host, { mode, log: silentLogger, notReadyDeadlineMs: 60_000 });
  } finally {
    await host.dispose();
  }
}

describe('executor', () => {
  it('runs dependencies first and reports every task', async () => {
    const ev: string[] = [];
    const r = await run([fake('file:/b', { after: ['file:/a'], changes: change }, ev), fake('file:/a', { changes: change }, ev)]);
    expect(ev).toEqual(['start file:/a', 'end file:/a', 'start file:/b', 'end file:/b']);
    expect(r.results.map((x) => [x.key, x.status])).toEqual([
      ['file:/a', 'changed'],
      ['file:/b', 'changed'],
    ]);
    expect(r.ok).toBe(true);
  });

  it('plan observes and diffs but never applies', async () => {
    const ev: string[] = [];
    const r = await run([fake('file:/a', { changes: change }, ev)], 'plan');
    expect(ev).toEqual([]);
    expect(r.results[0]?.status).toBe('planned');
    expect(r.changed).toBe(1);
  });

  it('a failure blocks dependents while independent branches finish', async () => {
    const ev: string[] = [];
    const r = await run([
      fake('file:/bad', { changes: change, fail: new Error('disk full') }, ev),
      fake('file:/child', { after: ['file:/bad'], changes: change }, ev),
      fake('file:/grandchild', { after: ['file:/child'], changes: change }, ev),
      fake('file:/other', { changes: change }, ev),
    ]);
    const by = Object.fromEntries(r.results.map((x) => [x.key, x]));
    expect(by['file:/bad']?.status).toBe('failed');
    expect(by['file:/bad']?.error?.message).toBe('disk full');
    expect(by['file:/child']?.status).toBe('blocked');
    expect(by['file:/grandchild']?.blockedBy).toBe('file:/bad');
    expect(by['file:/other']?.status).toBe('changed');
    expect(r.failed).toBe(1);
    expect(r.blocked).toBe(2);
    expect(r.ok).toBe(false);
  });

  it('retries NotReady until the task is ready', async () => {
    const r = await run([fake('file:/a', { changes: change, notReadyTimes: 3 })]);
    expect(r.results[0]?.status).toBe('changed');
  });

  it('a task waiting out a NotReady backoff gives its slot to others', async () => {
    const ev: string[] = [];
    const g = new Graph();
    g.add(fake('file:/a', { changes: change, notReadyTimes: 2 }, ev));
    g.add(fake('file:/b', { changes: change }, ev));
    const host = await createTestHost();
    const r = await execute(g.finish(), host, { mode: 'apply', log: silentLogger, concurrency: 1 });
    await host.dispose();
    expect(r.ok).toBe(true);
    expect(ev).toEqual(['start file:/b', 'end file:/b', 'start file:/a', 'end file:/a']);
  });

  it('fails a task that stays not ready past the deadline', async () => {
    const g = new Graph();
    g.add(fake('file:/a', { changes: change, notReadyTimes: 1000 }));
    const host = await createTestHost();
    const r = await execute(g.finish(), host, { mode: 'apply', log: silentLogger, notReadyDeadlineMs: 5_000 });
    await host.dispose();
    expect(r.results[0]?.status).toBe('failed');
    expect(r.results[0]?.error?.code).toBe('NOT_READY');
  });

  it('a changed task notifies its listener, which reacts after it', async () => {
    const ev: string[] = [];
    const r = await run([
      fake('file:/etc/app.conf', { changes: change, notify: ['unit:app.service'] }, ev),
      fake('unit:app.service', {}, ev),
    ]);
    expect(ev).toEqual(['start file:/etc/app.conf', 'end file:/etc/app.conf', 'react unit:app.service']);
    const unit = r.results.find((x) => x.key === 'unit:app.service');
    expect(unit?.notifiedBy).toEqual(['file:/etc/app.conf']);
    expect(unit?.changes).toEqual([{ field: 'restart', to: 'notified by file:/etc/app.conf' }]);
  });

  it('an unchanged task does not notify', async () => {
    const ev: string[] = [];
    await run([fake('file:/etc/app.conf', { notify: ['unit:app.service'] }, ev), fake('unit:app.service', {}, ev)]);
    expect(ev).toEqual([]);
  });

  it('runs independent tasks concurrently but package tasks one at a time', async () => {
    const ev: string[] = [];
    await run([
      fake('package:a', { changes: change, exclusive: 'package-manager', delayMs: 20 }, ev),
      fake('package:b', { changes: change, exclusive: 'package-manager', delayMs: 20 }, ev),
    ]);
    expect(ev).toEqual(['start package:a', 'end package:a', 'start package:b', 'end package:b']);
    const ev2: string[] = [];
    await run([fake('file:/a', { changes: change, delayMs: 20 }, ev2), fake('file:/b', { changes: change, delayMs: 20 }, ev2)]);
    expect(ev2.slice(0, 2)).toEqual(['start file:/a', 'start file:/b']);
  });

  it('lends tasks the run\'s state store through their context; without one, a use fails naming it', async () => {
    const reads: string[] = [];
    const store = { url: 'mem://', writable: false, read: (k: string) => (reads.push(k), Promise.resolve(Buffer.from('x'))), write: () => Promise.resolve(true), list: () => Promise.resolve([]), remove: () => Promise.resolve() };
    const reader: Task<string> = {
      key: 'pki:/etc/x',
      after: [],
      observe: async (_h, ctx) => (await ctx.store.read('pki/x'))?.toString(),
      diff: (a) => (a === 'x' ? [] : [{ field: 'content', to: 'x' }]),
      apply: () => Promise.resolve(),
    };
    const host = await createTestHost();
    try {
      const g = new Graph();
      g.add(reader);
      const withStore = await execute(g.finish(), host, { mode: 'plan', log: silentLogger, store });
      expect([withStore.results[0]?.status, reads]).toEqual(['unchanged', ['pki/x']]);
      const without = await execute(g.finish(), host, { mode: 'plan', log: silentLogger });
      expect(without.results[0]?.error?.message).toMatch(/this run has no state store, yet a task needs to read pki\/x/);
    } finally {
      await host.dispose();
    }
  });
});
