import { describe, expect, it } from 'vitest';
import { GraphError } from './errors.ts';
import { Graph } from './graph.ts';
import { DirTask, FileTask } from './tasks/file.ts';
import type { Task, TaskKey } from './task.ts';

function t(key: TaskKey, after: TaskKey[] = [], notify: TaskKey[] = []): Task<unknown> {
  return { key, after, notify, observe: async () => undefined, diff: () => [], apply: async () => undefined };
}

describe('graph', () => {
  it('orders by dependencies, ties by key', () => {
    const g = new Graph();
    g.add(t('file:/c', ['file:/a']));
    g.add(t('file:/b'));
    g.add(t('file:/a'));
    expect(g.finish().order).toEqual(['file:/a', 'file:/b', 'file:/c']);
  });
  it('throws on a duplicate key', () => {
    const g = new Graph();
    g.add(t('file:/a'));
    expect(() => g.add(t('file:/a'))).toThrow(GraphError);
  });
  it('ensure accepts an identical task and refuses a different one', () => {
    const g = new Graph();
    g.ensure(new DirTask({ path: '/etc/x', mode: 0o755 }));
    g.ensure(new DirTask({ path: '/etc/x', mode: 0o755 }));
    expect(() => g.ensure(new DirTask({ path: '/etc/x', mode: 0o700 }))).toThrow(/different content/);
  });
  it('throws on unknown after or notify keys', () => {
    const g = new Graph();
    g.add(t('file:/a', ['file:/missing']));
    expect(() => g.finish()).toThrow(/unknown task file:\/missing/);
    const g2 = new Graph();
    g2.add(t('file:/a', [], ['unit:missing.service']));
    expect(() => g2.finish()).toThrow(/notifies unknown task/);
  });
  it('detects cycles', () => {
    const g = new Graph();
    g.add(t('file:/a', ['file:/b']));
    g.add(t('file:/b', ['file:/a']));
    expect(() => g.finish()).toThrow(/cycle among: file:\/a, file:\/b/);
  });
  it('a task owning several paths (an archive) waits for the dir task of each', () => {
    const g = new Graph();
    g.add(new DirTask({ path: '/opt/cni/bin', mode: 0o755 }));
    g.add(new DirTask({ path: '/usr/local/bin', mode: 0o755 }));
    g.add({ ...t('archive:x'), ownedPaths: ['/opt/cni/bin/bridge', '/usr/local/bin/ctr'] });
    expect(g.finish().deps.get('archive:x')).toEqual(['dir:/opt/cni/bin', 'dir:/usr/local/bin']);
  });
  it('a path waits for the dir task of its nearest parent; a notified task waits for its notifier', () => {
    const g = new Graph();
    g.add(new DirTask({ path: '/etc/app', mode: 0o755 }));
    g.add(new FileTask({ path: '/etc/app/conf.d/x.conf', content: 'x', mode: 0o644, notify: ['unit:app.service'] }));
    g.add(t('unit:app.service'));
    const fin = g.finish();
    expect(fin.deps.get('file:/etc/app/conf.d/x.conf')).toEqual(['dir:/etc/app']);
    expect(fin.deps.get('unit:app.service')).toEqual(['file:/etc/app/conf.d/x.conf']);
  });
});
