import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { execute } from '../engine/executor.ts';
import { Graph } from '../engine/graph.ts';
import type { HttpRequest, HttpResponse } from '../engine/host/host.ts';
import { createTestHost, type TestHost } from '../../tests/support/test-host.ts';
import { silentLogger } from '../engine/log.ts';
import { cpModel } from '../../tests/support/controlplane-model.ts';
import { FileStore } from '../statestore/file-store.ts';
import type { StateStore } from '../engine/state-store.ts';
import { listBackups } from './backup.ts';
import type { EtcdMember } from './client.ts';
import { etcdComponent } from './component.ts';
import { DeadMemberTask } from './dead-member-task.ts';
import { decideRemovals, decideStuckLearners, minDeadProbes, type UnreachableRecord } from './dead-members.ts';
import type { EtcdMemberTask } from './member-task.ts';
import { memberKey, registerMember, registeredMembers, type ClusterHealth, type MemberHealth } from './membership.ts';
import { EtcdSpec } from './schema.ts';

const url = (n: number, port: number): string => `https://10.0.0.${n}:${port}`;

function mem(n: number, healthy: boolean, learner = false): MemberHealth {
  return {
    member: { id: String(n), name: `cp-${n}`, peerURLs: [url(n, 2380)], clientURLs: [url(n, 2379)], isLearner: learner },
    healthy,
    isLeader: false,
    ...(healthy ? {} : { error: 'connect ECONNREFUSED' }),
  };
}

function health(members: MemberHealth[]): ClusterHealth {
  const voters = members.filter((m) => !m.member.isLearner);
  return { clusterId: '1', members, voters: voters.length, healthyVoters: voters.filter((m) => m.healthy).length, leaderId: '1', quorumProven: false };
}

const self = { name: 'cp-1', peerUrl: url(1, 2380), clientUrl: url(1, 2379) };
const graceMs = 60_000;
const longDead = (ids: string[], ms = graceMs, probes = minDeadProbes): Map<string, UnreachableRecord> => new Map(ids.map((id) => [id, { since: 1_000_000 - ms, probes }]));

describe('decideRemovals', () => {
  const decide = (members: MemberHealth[], memberCount: number, unreachable: Map<string, UnreachableRecord>) =>
    decideRemovals({ health: health(members), self, memberCount, graceMs, unreachable, now: 1_000_000 });

  it.each([
    ['a healthy cluster of the desired size', [mem(1, true), mem(2, true), mem(3, true)], 3],
    ['a healthy cluster larger than desired (healthy members are never removed)', [mem(1, true), mem(2, true), mem(3, true), mem(4, true)], 3],
    ['a dead member while the cluster is at its desired size (waits for the replacement)', [mem(1, true), mem(2, true), mem(3, false)], 3],
    ['a single control plane', [mem(1, true)], 1],
    ['a dead learner (it may be a node still starting)', [mem(1, true), mem(2, true), mem(3, true), mem(4, false, true)], 3],
  ])('removes nothing from %s', (_label, members, memberCount) => {
    expect(decide(members, memberCount, longDead(['3', '4']))).toEqual({ kind: 'none' });
  });

  it('removes a voter dead through the grace period once the replacement made the cluster larger than wanted', () => {
    const d = decide([mem(1, true), mem(2, true), mem(3, false), mem(4, true)], 3, longDead(['3'], 61_000, 5));
    expect(d).toEqual({ kind: 'remove', members: [{ id: '3', name: 'cp-3', peerUrls: [url(3, 2380)], unreachableMs: 61_000, probes: 5, error: 'connect ECONNREFUSED' }] });
  });

  it('waits while the grace period or the probe count is not reached', () => {
    const members = [mem(1, true), mem(2, true), mem(3, false), mem(4, true)];
    const early = decide(members, 3, longDead(['3'], 20_000, 5));
    expect(early.kind).toBe('wait');
    expect(early.kind === 'wait' && early.reason).toContain('cp-3 unreachable for 20 s of 60 s');
    expect(decide(members, 3, longDead(['3'], 90_000, minDeadProbes - 1)).kind).toBe('wait');
    expect(decide(members, 3, new Map()).kind).toBe('wait');
  });

  it('never judges from a node whose own member does not answer, and never removes itself', () => {
    const d = decide([mem(1, false), mem(2, true), mem(3, false), mem(4, true)], 3, longDead(['1', '3']));
    expect(d.kind).toBe('wait');
    expect(d.kind === 'wait' && d.reason).toContain("this node's member cp-1");
  });

  it('refuses with the quorum reason when 2 of 4 voters are down', () => {
    const d = decide([mem(1, true), mem(2, true), mem(3, false), mem(4, false)], 3, longDead(['3', '4']));
    expect(d.kind).toBe('refuse');
    expect(d.kind === 'refuse' && d.reason).toMatch(/cp-3 has been unreachable for 60 s and the cluster has 4 voting members for 3 wanted, but it is kept: the cluster has lost quorum \(2 healthy of 4 voting members\)/);
  });

  it('for a joining replacement, counts it as one more voter and needs no answering member of its own', () => {
    const joiner = { name: 'cp-9', peerUrl: url(9, 2380), clientUrl: url(9, 2379) };
    const j = (members: MemberHealth[], memberCount: number) =>
      decideRemovals({ health: health(members), self: joiner, memberCount, graceMs, unreachable: longDead(['2', '3']), now: 1_000_000, joining: true });
    expect(j([mem(1, true), mem(2, true), mem(3, false)], 3)).toMatchObject({ kind: 'remove', members: [{ name: 'cp-3' }] });
    expect(j([mem(1, true), mem(2, true)], 3)).toEqual({ kind: 'none' }); // room left: nothing removed
    expect(j([mem(1, true), mem(2, true), mem(3, true)], 3)).toEqual({ kind: 'none' }); // all healthy: the joiner makes four
    expect(decide([mem(1, true), mem(2, true), mem(3, false)], 3, longDead(['3'])).kind).toBe('none'); // the same cluster seen by a member
    const lost = j([mem(1, true), mem(2, false), mem(3, false)], 3);
    expect(lost.kind === 'refuse' && lost.reason).toContain('(with this joining node)');
  });

  it('removes at most the excess, longest dead first, each checked against quorum', () => {
    const members = [mem(1, true), mem(2, true), mem(3, true), mem(4, false), mem(5, false)];
    const rec = new Map<string, UnreachableRecord>([
      ['4', { since: 1_000_000 - 70_000, probes: 6 }],
      ['5', { since: 1_000_000 - 90_000, probes: 7 }],
    ]);
    const one = decide(members, 4, rec);
    expect(one.kind === 'remove' && one.members.map((m) => m.name)).toEqual(['cp-5']);
    const two = decide(members, 3, rec);
    expect(two.kind === 'remove' && two.members.map((m) => m.name)).toEqual(['cp-5', 'cp-4']);
  });
});

describe('decideStuckLearners (a join refused with "too many learner members")', () => {
  const neverStarted = (n: number): MemberHealth => ({
    member: { id: String(n), name: '', peerURLs: [url(n, 2380)], clientURLs: [], isLearner: true },
    healthy: false,
    isLeader: false,
    error: 'not started (no client URL yet)',
  });
  const joiner = { name: 'cp-5', peerUrl: url(5, 2380), clientUrl: url(5, 2379) };
  const decide = (members: MemberHealth[], unreachable: Map<string, UnreachableRecord>, me = joiner) =>
    decideStuckLearners({ health: health(members), self: me, graceMs, unreachable, now: 1_000_000 });

  it('removes a learner that never started once the grace period and the probes are past', () => {
    const d = decide([mem(1, true), mem(2, true), mem(3, true), neverStarted(4)], longDead(['4'], 70_000, 4));
    expect(d).toEqual({ kind: 'remove', members: [{ id: '4', name: '', peerUrls: [url(4, 2380)], unreachableMs: 70_000, probes: 4, error: 'not started (no client URL yet)' }] });
  });

  it('waits within the grace period, naming the learner by id when it has no name', () => {
    const d = decide([mem(1, true), mem(2, true), neverStarted(4)], longDead(['4'], 10_000, 4));
    expect(d.kind).toBe('wait');
    expect(d.kind === 'wait' && d.reason).toMatch(/learner \S+ unreachable for 10 s of 60 s/);
  });

  it('keeps answering learners, dead voters (not its business) and this node\'s own learner', () => {
    expect(decide([mem(1, true), mem(2, true), mem(3, false), mem(4, true, true)], longDead(['3', '4']))).toEqual({ kind: 'none' });
    const mine = { ...neverStarted(5) };
    expect(decide([mem(1, true), mem(2, true), mine], longDead(['5']))).toEqual({ kind: 'none' });
  });
});

describe('etcd spec: memberCount and the grace period', () => {
  it('defaults to no automatic removal and a 60 s grace; rejects a grace under 30 s', () => {
    const s = EtcdSpec.parse({});
    expect(s.memberCount).toBeUndefined();
    expect(s.deadMemberGraceSeconds).toBe(60);
    expect(EtcdSpec.safeParse({ memberCount: 3, deadMemberGraceSeconds: 10 }).success).toBe(false);
    expect(EtcdSpec.safeParse({ memberCount: 0 }).success).toBe(false);
  });

  it('builds etcd-membership:<cluster> after the member task only when memberCount is set', () => {
    const without = new Graph();
    etcdComponent.build(cpModel(), without);
    expect(without.finish().order.filter((k) => k.startsWith('etcd-membership:'))).toEqual([]);
    const g = new Graph();
    etcdComponent.build(cpModel({ spec: { etcd: { memberCount: 3, deadMemberGraceSeconds: 45 } } }), g);
    const graph = g.finish();
    expect(graph.order.filter((k) => k.startsWith('etcd-membership:'))).toEqual(['etcd-membership:events', 'etcd-membership:main']);
    expect(graph.deps.get('etcd-membership:main')).toContain('etcd-member:main');
    expect((graph.tasks.get('etcd-member:main') as EtcdMemberTask).spec.replaceDead).toEqual({ memberCount: 3, graceMs: 45_000 });
    expect((without.finish().tasks.get('etcd-member:main') as EtcdMemberTask).spec.replaceDead).toBeUndefined();
    const t = graph.tasks.get('etcd-membership:main') as DeadMemberTask;
    expect(t.spec).toMatchObject({ memberCount: 3, graceMs: 45_000, dataDir: '/var/lib/etcd/main', caPath: '/etc/kubernetes/pki/etcd/ca.crt' });
  });
});

/** A fake etcd JSON gateway: members answer status unless listed as dead; remove and snapshot work. */
class FakeEtcd {
  members: EtcdMember[];
  dead = new Set<string>();
  removed: string[] = [];
  constructor(n: number) {
    this.members = Array.from({ length: n }, (_, i) => ({ id: String(i + 1), name: `cp-${i + 1}`, peerURLs: [url(i + 1, 2380)], clientURLs: [url(i + 1, 2379)], isLearner: false }));
  }
  handle = (req: HttpRequest): HttpResponse => {
    const u = new URL(req.url);
    const json = (v: unknown, status = 200): HttpResponse => ({ status, headers: {}, body: Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)) });
    const n = Number(u.hostname.split('.').pop());
    if (this.dead.has(String(n))) throw new Error(`connect ECONNREFUSED ${u.host}`);
    switch (u.pathname) {
      case '/v3/cluster/member/list':
        return json({ header: { cluster_id: '1' }, members: this.members.map((m) => ({ ID: m.id, name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs })) });
      case '/v3/maintenance/status':
        return json({ header: { member_id: String(n), cluster_id: '1' }, version: '3.6.16', leader: '1', raftIndex: '10' });
      case '/v3/cluster/member/remove': {
        const id = (JSON.parse(String(req.body)) as { ID: string }).ID;
        this.removed.push(id);
        this.members = this.members.filter((m) => m.id !== id);
        return json({});
      }
      case '/v3/maintenance/snapshot':
        return json(JSON.stringify({ result: { blob: Buffer.from('snapshot-bytes').toString('base64') } }) + '\n');
      default:
        return json({ message: `unexpected ${u.pathname}` }, 404);
    }
  };
}

describe('etcd-membership task on a test host (virtual time)', () => {
  let dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
    dirs = [];
  });

  async function setup(n: number) {
    const fake = new FakeEtcd(n);
    const host = await createTestHost({ http: (req) => fake.handle(req) });
    const storeDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-dead-member-'));
    dirs.push(host.root, storeDir);
    const store = new FileStore(pathToFileURL(storeDir).toString());
    for (const m of fake.members) await registerMember(store, 'main', { name: m.name, peerUrl: m.peerURLs[0] ?? '', clientUrl: m.clientURLs[0] ?? '' });
    for (const f of ['etc/kubernetes/pki/etcd/ca.crt', 'etc/kubernetes/pki/etcd/nodeup-client.crt', 'etc/kubernetes/pki/etcd/nodeup-client.key', 'var/lib/etcd/main/member/snap/db']) {
      await fsp.mkdir(path.dirname(path.join(host.root, f)), { recursive: true });
      await fsp.writeFile(path.join(host.root, f), 'x');
    }
    const task = new DeadMemberTask({
      cluster: 'main',
      self,
      memberCount: 3,
      graceMs: 60_000,
      dataDir: '/var/lib/etcd/main',
      caPath: '/etc/kubernetes/pki/etcd/ca.crt',
      clientCert: '/etc/kubernetes/pki/etcd/nodeup-client.crt',
      clientKey: '/etc/kubernetes/pki/etcd/nodeup-client.key',
      retention: 5,
    });
    return { fake, host, store, task };
  }

  const run = async (host: TestHost, store: StateStore, task: DeadMemberTask, mode: 'plan' | 'apply' = 'apply') => {
    const g = new Graph();
    g.add(task);
    return execute(g.finish(), host, { mode, log: silentLogger, store });
  };

  it('probes through the grace period, then backs up, removes the dead member and forgets its registration; a second run changes nothing', async () => {
    const { fake, host, store, task } = await setup(4);
    fake.dead.add('3');
    const t0 = host.now();
    const report = await run(host, store, task);
    const r = report.results[0];
    expect(r?.status, JSON.stringify(r)).toBe('changed');
    expect(r?.changes.map((c) => c.field)).toEqual(['member cp-3']);
    expect(host.now() - t0).toBeGreaterThanOrEqual(60_000);
    expect(fake.removed).toEqual(['3']);
    expect((await registeredMembers(store, 'main')).map((m) => m.name).sort()).toEqual(['cp-1', 'cp-2', 'cp-4']);
    expect((await listBackups(store, 'main')).some((b) => b.endsWith('-before-remove-cp-3'))).toBe(true);
    const again = await run(host, store, new DeadMemberTask(task.spec));
    expect(again.results[0]?.status).toBe('unchanged');
  });

  it('keeps a member that answers again before the grace period ends', async () => {
    const { fake, host, store, task } = await setup(4);
    fake.dead.add('3');
    const started = host.now();
    // The member comes back 20 s into the run.
    const orig = fake.handle;
    fake.handle = (req) => {
      if (host.now() - started > 20_000) fake.dead.delete('3');
      return orig(req);
    };
    const report = await run(host, store, task);
    expect(report.results[0]?.status).toBe('unchanged');
    expect(fake.removed).toEqual([]);
  });

  it('waits out etcd\'s "unhealthy cluster" refusal of a removal, then removes', async () => {
    const { fake, host, store, task } = await setup(4);
    fake.dead.add('3');
    let refusals = 0;
    const orig = fake.handle;
    fake.handle = (req) => {
      if (new URL(req.url).pathname === '/v3/cluster/member/remove' && refusals++ === 0) {
        return { status: 503, headers: {}, body: Buffer.from(JSON.stringify({ error: 'etcdserver: unhealthy cluster', code: 14, message: 'etcdserver: unhealthy cluster' })) };
      }
      return orig(req);
    };
    const report = await run(host, store, task);
    expect(report.results[0]?.status, JSON.stringify(report.results[0])).toBe('changed');
    expect(refusals).toBe(2);
    expect(fake.removed).toEqual(['3']);
  });

  it('fails at once, removing nothing, when the backup before a removal breaks (not a wait: etcd answered)', async () => {
    const { fake, host, store, task } = await setup(4);
    fake.dead.add('3');
    const orig = fake.handle;
    let snapshots = 0;
    fake.handle = (req) => {
      if (new URL(req.url).pathname !== '/v3/maintenance/snapshot') return orig(req);
      snapshots++;
      return { status: 200, headers: {}, body: Buffer.from('{"error":{"message":"etcdserver: request timed out"}}\n') };
    };
    const report = await run(host, store, task);
    const r = report.results[0];
    expect(r?.status).toBe('failed');
    expect(r?.error?.message).toContain('no etcd endpoint gave a snapshot');
    expect(r?.error?.message).not.toContain('must wait');
    // One round over the three answering survivors, not a retry loop.
    expect(snapshots).toBe(3);
    expect(fake.removed).toEqual([]);
  });

  it('fails with ETCD_QUORUM when 2 of 4 voters are down, removing nothing', async () => {
    const { fake, host, store, task } = await setup(4);
    fake.dead.add('3');
    fake.dead.add('4');
    const report = await run(host, store, task);
    const r = report.results[0];
    expect(r?.status).toBe('failed');
    expect(r?.error?.message).toContain('lost quorum (2 healthy of 4 voting members)');
    expect(JSON.stringify(r?.error)).toContain('ETCD_QUORUM');
    expect(fake.removed).toEqual([]);
  });

  it('plans nothing before this node has a member (fresh node, golden scenarios)', async () => {
    const { host, task, store } = await setup(3);
    await fsp.rm(path.join(host.root, 'var/lib/etcd'), { recursive: true });
    const report = await run(host, store, task, 'plan');
    expect(report.results[0]?.status).toBe('unchanged');
    expect(await store.read(memberKey('main', 'cp-3'))).toBeDefined();
  });
});
