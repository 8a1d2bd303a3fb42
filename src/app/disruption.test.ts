import { describe, expect, it } from 'vitest';
import { Graph } from '../engine/graph.ts';
import { noStateStore } from '../engine/state-store.ts';
import type { Change, Task, TaskKey } from '../engine/task.ts';
import { createTestHost } from '../../tests/support/test-host.ts';
import { describeRestarts, drainTimeoutMs, predictRestarts, restartClosure, restartsOf } from './disruption.ts';
import { keepReason, pemBlocks, unmanaged, type PodObject } from './drain.ts';

const kubelet: TaskKey = 'unit:kubelet.service';
const containerd: TaskKey = 'unit:containerd.service';

describe('restartsOf: which results restart a running kubelet or containerd', () => {
  const r = (key: TaskKey, changes: Change[], notifiedBy: TaskKey[] = [], status: 'planned' | 'unchanged' | 'changed' = 'planned') => ({ key, status, changes, notifiedBy });

  it('a running unit whose drop-in changes, or that a changed task notifies, restarts', () => {
    expect(
      restartsOf([
        r(kubelet, [{ field: 'drop-in 10-flags.conf', from: 'aaa', to: 'bbb' }], ['download:kubelet']),
        r(containerd, [{ field: 'restart', to: 'notified by file:/etc/containerd/config.toml' }], ['file:/etc/containerd/config.toml']),
      ]),
    ).toEqual([
      { unit: containerd, because: ['file:/etc/containerd/config.toml'] },
      { unit: kubelet, because: ['drop-in 10-flags.conf', 'download:kubelet'] },
    ]);
  });

  it('a unit that is not running (a first boot: active false -> true) disrupts nothing, whatever else changes', () => {
    expect(restartsOf([r(kubelet, [{ field: 'unit file', to: 'abc' }, { field: 'enabled', from: 'false', to: 'true' }, { field: 'active', from: 'false', to: 'true' }], ['download:kubelet'])])).toEqual([]);
  });

  it('only enabling a running unit, an unchanged unit, or other units: no restart', () => {
    expect(restartsOf([r(kubelet, [{ field: 'enabled', from: 'false', to: 'true' }]), r(containerd, [], [], 'unchanged'), r('unit:nodeup-routes.service', [{ field: 'unit file', to: 'x' }])])).toEqual([]);
  });

  it('describes each restart with its causes', () => {
    expect(describeRestarts([{ unit: kubelet, because: ['drop-in 10-flags.conf', 'download:kubelet'] }])).toBe('unit:kubelet.service (drop-in 10-flags.conf, download:kubelet)');
  });
});

/** A task whose observed state is fixed: `changes` is what its diff finds. */
function fake(key: TaskKey, o: { changes?: Change[]; notify?: TaskKey[]; after?: TaskKey[]; react?: boolean; throws?: string; seen?: TaskKey[] } = {}): Task<null> {
  return {
    key,
    after: o.after ?? [],
    ...(o.notify ? { notify: o.notify } : {}),
    observe: () => {
      o.seen?.push(key);
      if (o.throws) return Promise.reject(new Error(o.throws));
      return Promise.resolve(null);
    },
    diff: () => o.changes ?? [],
    apply: () => Promise.reject(new Error('a prediction never applies')),
    ...(o.react ? { react: () => Promise.resolve() } : {}),
  };
}

describe('predictRestarts: observes only the units and what notifies them', () => {
  it('follows notifications through a task that reacts, and observes nothing else', async () => {
    const seen: TaskKey[] = [];
    const g = new Graph();
    g.add(fake('download:kubelet', { changes: [{ field: 'sha256', from: 'a', to: 'b' }], notify: ['archive:kubelet'], seen }));
    g.add(fake('archive:kubelet', { react: true, notify: [kubelet], seen }));
    g.add(fake('file:/etc/unrelated', { changes: [{ field: 'content', to: 'x' }], seen }));
    g.add(fake('file:/etc/containerd/config.toml', { notify: [containerd], seen }));
    g.add(fake(kubelet, { react: true, seen }));
    g.add(fake(containerd, { react: true, seen }));
    const graph = g.finish();
    expect(restartClosure(graph).map((t) => t.key).sort()).toEqual(['archive:kubelet', 'download:kubelet', 'file:/etc/containerd/config.toml', containerd, kubelet].sort());
    const host = await createTestHost();
    expect(await predictRestarts(graph, host, { store: noStateStore })).toEqual([{ unit: kubelet, because: ['archive:kubelet'] }]);
    expect(seen).not.toContain('file:/etc/unrelated');
  });

  it('counts a notifier it cannot observe as changed (drain once too often, never restart under pods)', async () => {
    const g = new Graph();
    g.add(fake('file:/etc/containerd/config.toml', { throws: 'permission denied', notify: [containerd] }));
    g.add(fake(containerd, { react: true }));
    const host = await createTestHost();
    expect(await predictRestarts(g.finish(), host, { store: noStateStore })).toEqual([{ unit: containerd, because: ['file:/etc/containerd/config.toml'] }]);
  });

  it('a graph without the units (an --only run) predicts nothing', async () => {
    const g = new Graph();
    g.add(fake('file:/etc/sysctl.d/99-kubernetes.conf', { changes: [{ field: 'content', to: 'x' }] }));
    const host = await createTestHost();
    expect(await predictRestarts(g.finish(), host, { store: noStateStore })).toEqual([]);
  });
});

describe('drain decisions', () => {
  const pod = (meta: Partial<PodObject['metadata']>): PodObject => ({ metadata: { name: 'p', namespace: 'ns', ...meta } });

  it('keeps mirror pods and DaemonSet pods, evicts the rest', () => {
    expect(keepReason(pod({ annotations: { 'kubernetes.io/config.mirror': 'abc' } }))).toBe('mirror pod (static pod)');
    expect(keepReason(pod({ ownerReferences: [{ kind: 'DaemonSet', name: 'kube-proxy', controller: true }] }))).toBe('DaemonSet pod');
    expect(keepReason(pod({ ownerReferences: [{ kind: 'ReplicaSet', name: 'web-1', controller: true }] }))).toBeUndefined();
    // A DaemonSet that only owns, without controlling, does not keep the pod.
    expect(keepReason(pod({ ownerReferences: [{ kind: 'DaemonSet', name: 'x' }] }))).toBeUndefined();
  });

  it('a pod without a controlling owner is unmanaged', () => {
    expect(unmanaged(pod({}))).toBe(true);
    expect(unmanaged(pod({ ownerReferences: [{ kind: 'Node', name: 'n' }] }))).toBe(true);
    expect(unmanaged(pod({ ownerReferences: [{ kind: 'StatefulSet', name: 'db', controller: true }] }))).toBe(false);
  });

  it('splits a PEM file holding certificate and key (the kubelet-client-current.pem shape)', () => {
    const cert = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';
    const key = '-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----';
    const both = `${cert}\n${key}\n`;
    expect(pemBlocks(both, (l) => l === 'CERTIFICATE')).toBe(`${cert}\n`);
    expect(pemBlocks(both, (l) => l.endsWith('PRIVATE KEY'))).toBe(`${key}\n`);
    expect(pemBlocks('no pem here', (l) => l === 'CERTIFICATE')).toBeUndefined();
  });

  it('--drain-timeout takes whole seconds above 0', () => {
    expect(drainTimeoutMs(undefined, 600)).toBe(600_000);
    expect(drainTimeoutMs('45', 600)).toBe(45_000);
    expect(() => drainTimeoutMs('0', 600)).toThrow(/--drain-timeout takes a whole number of seconds above 0, got '0'/);
    expect(() => drainTimeoutMs('5m', 600)).toThrow(/got '5m'/);
  });
});
