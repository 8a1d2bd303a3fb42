import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { HttpResponse } from '../engine/host/host.ts';
import { createTestHost } from '../../tests/support/test-host.ts';
import { Graph } from '../engine/graph.ts';
import { components } from '../app/components.ts';
import { buildGraph } from '../app/run.ts';
import { cpModel } from '../../tests/support/controlplane-model.ts';
import { EtcdClient, isTransient, parseSnapshotStream, prefixEnd, type EtcdMember } from './client.ts';
import { etcdComponent, etcdImage } from './component.ts';
import { waitAnswering } from './join.ts';
import { EtcdMemberTask } from './member-task.ts';
import { checkChange, checkRemoval, clusterHealth, initialClusterOf, quorumOf, removeMember, type ClusterHealth, type MemberHealth } from './membership.ts';
import { renderBackupService, renderBackupTimer, renderEtcdManifest, renderEtcdUnit, type EtcdMemberConfig } from './render-manifest.ts';
import { restoreGuide } from './restore.ts';
import { EtcdSpec } from './schema.ts';
import { FileStore } from '../statestore/file-store.ts';
import { taskContext } from '../../tests/support/task-context.ts';

const member: EtcdMemberConfig = {
  cluster: 'main',
  name: 'cp-1',
  dataDir: '/var/lib/etcd/main',
  advertiseIp: '10.0.0.10',
  clientPort: 2379,
  peerPort: 2380,
  initialCluster: 'cp-0=https://10.0.0.9:2380,cp-1=https://10.0.0.10:2380',
  initialClusterState: 'existing',
  initialClusterToken: 'nodeup-main-abc',
  tls: {
    serverCert: '/etc/kubernetes/pki/etcd/main/server.crt',
    serverKey: '/etc/kubernetes/pki/etcd/main/server.key',
    peerCert: '/etc/kubernetes/pki/etcd/main/peer.crt',
    peerKey: '/etc/kubernetes/pki/etcd/main/peer.key',
    clientCa: '/etc/kubernetes/pki/etcd/ca.crt',
    peerCa: '/etc/kubernetes/pki/etcd/peer-ca.crt',
  },
};

describe('etcd renderers', () => {
  it('static pod, systemd unit and backup timer match the golden files', async () => {
    await expect(renderEtcdManifest({ member, image: 'registry.k8s.io/etcd:3.6.4-0', pkiDir: '/etc/kubernetes/pki/etcd' })).toMatchFileSnapshot('testdata/joining-member/expected/etcd-main.yaml');
    await expect(renderEtcdUnit(member, '/usr/local/bin/etcd')).toMatchFileSnapshot('testdata/joining-member/expected/etcd-main.service');
    const t = { nodeupBinary: '/usr/local/bin/nodeup', bootConfig: '/etc/nodeup/boot.yaml', schedule: '*:0/15' };
    await expect(renderBackupService(t)).toMatchFileSnapshot('testdata/joining-member/expected/nodeup-etcd-backup.service');
    await expect(renderBackupTimer(t)).toMatchFileSnapshot('testdata/joining-member/expected/nodeup-etcd-backup.timer');
  });

  it('picks etcd 3.6 for Kubernetes 1.34+, 3.5 before, unless overridden', () => {
    expect(etcdImage(cpModel({ spec: { kubernetesVersion: 'v1.35.1' } }))).toMatch(/^registry\.k8s\.io\/etcd:3\.6\.\d+-0$/);
    expect(etcdImage(cpModel({ spec: { kubernetesVersion: 'v1.34.2' } }))).toMatch(/:3\.6\.\d+-0$/);
    expect(etcdImage(cpModel({ spec: { kubernetesVersion: 'v1.33.5' } }))).toMatch(/:3\.5\.\d+-0$/);
    expect(etcdImage(cpModel({ spec: { etcd: { version: '3.5.30', image: 'mirror/etcd' } } }))).toBe('mirror/etcd:3.5.30-0');
  });
});

describe('etcd schema', () => {
  it('defaults to main 2379/2380 and events 2381/2382 as static pods', () => {
    const s = EtcdSpec.parse({});
    expect(s.clusters).toEqual([
      { name: 'main', clientPort: 2379, peerPort: 2380 },
      { name: 'events', clientPort: 2381, peerPort: 2382 },
    ]);
    expect(s.mode).toBe('static-pod');
    expect(s.backup).toEqual({ schedule: '*:0/15', retention: 96 });
  });

  it('names the field of a port used twice and a missing main cluster', () => {
    const r = EtcdSpec.safeParse({ clusters: [{ name: 'events', clientPort: 2379, peerPort: 2379 }] });
    expect(r.success).toBe(false);
    const msgs = r.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(msgs).toEqual(['clusters.0.peerPort: port 2379 is used twice', 'clusters: the main cluster is required']);
  });

  it('heartbeat and election timeout: flags only when set; an election timeout under 5 heartbeats is refused, naming the field', () => {
    const bad = EtcdSpec.safeParse({ heartbeatIntervalMs: 500 });
    expect(bad.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'electionTimeoutMs: 1000 ms is less than 5 times the heartbeat interval (500 ms): etcd refuses to start; raise electionTimeoutMs',
    ]);
    const member = (etcd: Record<string, unknown>): string => {
      const graph = buildGraph(cpModel({ spec: { etcd } }), components).finish();
      const task = graph.tasks.get('etcd-member:main');
      if (!(task instanceof EtcdMemberTask)) throw new Error('no etcd-member:main task');
      return task.render({ initialCluster: 'cp=https://10.0.0.2:2380', initialClusterState: 'new', initialClusterToken: 't' });
    };
    expect(member({})).not.toMatch(/heartbeat-interval|election-timeout/);
    const slow = member({ heartbeatIntervalMs: 500, electionTimeoutMs: 5000 });
    expect(slow).toContain('- --heartbeat-interval=500\n');
    expect(slow).toContain('- --election-timeout=5000\n');
  });
});

const m = (id: string, name: string, isLearner = false): EtcdMember => ({ id, name, peerURLs: [`https://${name}:2380`], clientURLs: [`https://${name}:2379`], isLearner });
const health = (list: [EtcdMember, boolean][]): ClusterHealth => {
  const members: MemberHealth[] = list.map(([member, healthy]) => ({ member, healthy, isLeader: false }));
  const voters = members.filter((h) => !h.member.isLearner);
  return { clusterId: '1', members, voters: voters.length, healthyVoters: voters.filter((h) => h.healthy).length, leaderId: undefined, quorumProven: false };
};

describe('quorum guard', () => {
  it.each([
    [1, 1],
    [2, 2],
    [3, 2],
    [4, 3],
    [5, 3],
  ])('quorum of %i voters is %i', (n, q) => expect(quorumOf(n)).toBe(q));

  it('allows removing a dead member of 3 when the other two are healthy', () => {
    expect(checkRemoval(health([[m('1', 'a'), true], [m('2', 'b'), true], [m('3', 'c'), false]]), '3')).toEqual({ ok: true });
  });

  it('refuses removing a healthy member when one of 3 is already down, and says why', () => {
    const v = checkRemoval(health([[m('1', 'a'), true], [m('2', 'b'), true], [m('3', 'c'), false]]), '1');
    expect(v).toEqual({ ok: false, reason: 'removing a would leave 1 healthy of 2 voting members, and quorum needs 2: bring the unhealthy members back (or replace them) first' });
  });

  it('refuses any removal once quorum is lost, and removing the last voter', () => {
    const lost = checkRemoval(health([[m('1', 'a'), true], [m('2', 'b'), false], [m('3', 'c'), false]]), '2');
    expect(lost.ok).toBe(false);
    expect(!lost.ok && lost.reason).toMatch(/lost quorum.*nodeup etcd restore/);
    const last = checkRemoval(health([[m('1', 'a'), true]]), '1');
    expect(!last.ok && last.reason).toMatch(/only voting member/);
  });

  it('always allows removing a learner (it does not vote)', () => {
    expect(checkRemoval(health([[m('1', 'a'), true], [m('2', 'b', true), false]]), '2')).toEqual({ ok: true });
  });

  it('refuses a promotion that the healthy members could not carry', () => {
    // 4 voters, 2 healthy: quorum is already lost.
    const h = health([[m('1', 'a'), true], [m('2', 'b'), true], [m('3', 'c'), false], [m('4', 'd'), false], [m('5', 'e', true), true]]);
    expect(checkChange(h, 'promote e', true).ok).toBe(false);
    expect(checkChange(health([[m('1', 'a'), true], [m('2', 'b', true), true]]), 'promote b', true)).toEqual({ ok: true });
  });
});

describe('a busy cluster is not a lost quorum', () => {
  it('the guards say busy, not lost quorum, when a quorum served the member list', () => {
    const h = { ...health([[m('1', 'a'), true], [m('2', 'b'), false], [m('3', 'c'), false]]), quorumProven: true };
    const removal = checkRemoval(h, '3');
    expect(removal).toMatchObject({ ok: false, busy: true });
    expect(!removal.ok && removal.reason).toMatch(/^cannot remove c yet: only 1 of 3 voting members answered their status in time.*busy, not gone/);
    expect(checkChange(h, 'add d', false)).toMatchObject({ ok: false, busy: true });
  });

  it('asks slow members once more, with time to answer; a removal that still cannot be judged is waited out', async () => {
    // a answers at once; b and c answer only a request that allows more than 3 s, or not at all.
    let silent = false;
    let version = '3.6.16';
    const asked: string[] = [];
    const host = await createTestHost({
      http: async (req) => {
        const u = new URL(req.url);
        const json = (v: unknown): HttpResponse => ({ status: 200, headers: {}, body: Buffer.from(JSON.stringify(v)) });
        if (u.pathname === '/v3/cluster/member/list') {
          return json({ header: { cluster_id: '1' }, members: ['a', 'b', 'c'].map((n, i) => ({ ID: String(i + 1), name: n, peerURLs: [`https://${n}:2380`], clientURLs: [`https://${n}:2379`] })) });
        }
        asked.push(`${u.hostname}/${req.timeoutMs ?? 0}`);
        if (u.hostname !== 'a' && (silent || (req.timeoutMs ?? 0) <= 3000)) throw new Error(`timeout after ${req.timeoutMs} ms`);
        return json({ header: { member_id: '1', cluster_id: '1' }, version, leader: '1', raftIndex: '10' });
      },
    });
    try {
      const client = new EtcdClient(host, ['https://a:2379']);
      expect(await clusterHealth(client)).toMatchObject({ voters: 3, healthyVoters: 3, quorumProven: true });
      expect(asked.filter((a) => a.startsWith('b/'))).toEqual(['b/3000', 'b/15000']);
      // Served without a quorum read, the list proves nothing: nobody is asked twice.
      asked.length = 0;
      expect(await clusterHealth(client, { linearizable: false })).toMatchObject({ healthyVoters: 1, quorumProven: false });
      expect(asked).toHaveLength(3);
      // b and c stay silent even with time: removing c is waited out (NotReady), not refused for good.
      silent = true;
      const store = new FileStore(pathToFileURL(path.join(host.root, 'store')).toString());
      const err = await removeMember(client, '3', { cluster: 'main', store }).then(() => undefined, (e: unknown) => e);
      expect(String(err)).toMatch(/cannot remove c yet: .*busy, not gone/);
      expect(isTransient(err)).toBe(true);
      // etcd 3.4 answers the list from its own view, quorum or not: its shortfall is a lost quorum.
      version = '3.4.37';
      asked.length = 0;
      expect(await clusterHealth(client)).toMatchObject({ healthyVoters: 1, quorumProven: false });
      expect(asked).toHaveLength(3);
      const lost = await removeMember(client, '3', { cluster: 'main', store }).then(() => undefined, (e: unknown) => e);
      expect(String(lost)).toMatch(/lost quorum \(1 healthy of 3 voting members\)/);
      expect(isTransient(lost)).toBe(false);
    } finally {
      await host.dispose();
    }
  });
});

describe('client helpers', () => {
  it('computes --initial-cluster with the new member named', () => {
    expect(initialClusterOf([m('1', 'a'), { ...m('9', ''), peerURLs: ['https://new:2380'] }], '9', 'new')).toBe('a=https://a:2380,new=https://new:2380');
  });

  it('computes the range end of a prefix', () => {
    expect(prefixEnd('/data/')).toBe('/data0');
    expect(prefixEnd('a')).toBe('b');
  });

  it('joins snapshot stream chunks and surfaces stream errors', () => {
    const chunk = (s: string): string => JSON.stringify({ result: { blob: Buffer.from(s).toString('base64'), remaining_bytes: '0' } });
    expect(parseSnapshotStream(`${chunk('abc')}\n${chunk('def')}\n`).toString()).toBe('abcdef');
    expect(() => parseSnapshotStream(`${chunk('abc')}\n{"error":{"message":"boom"}}`)).toThrow(/snapshot failed: boom/);
  });

  it('tells answers that clear by themselves (an election, a busy leader, no answer at all) from the cluster\'s word', async () => {
    const answers: Record<string, { status: number; message: string } | 'down'> = {
      'https://10.0.0.1:2379': { status: 503, message: 'etcdserver: leader changed' },
      'https://10.0.0.2:2379': { status: 503, message: 'etcdserver: request timed out' },
      'https://10.0.0.3:2379': { status: 400, message: 'etcdserver: member not found' },
      'https://10.0.0.4:2379': 'down',
    };
    const host = await createTestHost({
      http: async (req) => {
        const a = answers[new URL(req.url).origin];
        if (!a || a === 'down') throw new Error('connect ECONNREFUSED');
        return { status: a.status, headers: {}, body: Buffer.from(JSON.stringify({ error: a.message, code: 14, message: a.message })) };
      },
    });
    try {
      const failure = (ep: string): Promise<unknown> => new EtcdClient(host, [ep]).memberList().then(() => undefined, (e: unknown) => e);
      expect(isTransient(await failure('https://10.0.0.1:2379'))).toBe(true);
      expect(isTransient(await failure('https://10.0.0.2:2379'))).toBe(true);
      expect(isTransient(await failure('https://10.0.0.4:2379'))).toBe(true);
      // Our own member not answering yet (kubelet has not started its pod) is retried, too.
      const silent = await waitAnswering(new EtcdClient(host, ['https://10.0.0.4:2379']), 'https://10.0.0.4:2379', 300, (ms) => new Promise((r) => setTimeout(r, ms))).then(() => undefined, (e: unknown) => e);
      expect(String(silent)).toMatch(/did not answer within 300 ms/);
      expect(isTransient(silent)).toBe(true);
      const final = await failure('https://10.0.0.3:2379');
      expect(String(final)).toContain('member not found');
      expect(isTransient(final)).toBe(false);
      expect(isTransient(new Error('leader changed'))).toBe(false);
      // A snapshot nobody answered is waited out; one that etcd refused is not.
      const snapshot = (ep: string): Promise<unknown> => new EtcdClient(host, [ep]).snapshot().then(() => undefined, (e: unknown) => e);
      expect(isTransient(await snapshot('https://10.0.0.4:2379'))).toBe(true);
      expect(isTransient(await snapshot('https://10.0.0.3:2379'))).toBe(false);
    } finally {
      await host.dispose();
    }
  });

  it('restore guide names the nodes to stop and the order of steps', () => {
    const g = restoreGuide('main', 'cp-1', ['cp-2', 'cp-3'], 'move /etc/kubernetes/manifests/etcd-main.yaml away', '/var/lib/etcd/main').join('\n');
    expect(g).toContain('Stop etcd main on EVERY control-plane node');
    expect(g).toContain('cp-2, cp-3');
  });
});

describe('etcd component and member task', () => {
  it('builds server, peer and client certificates and one member task per cluster, only on control planes', () => {
    expect(etcdComponent.enabled(cpModel({ role: 'worker' }))).toBe(false);
    const g = new Graph();
    etcdComponent.build(cpModel(), g);
    const keys = g.finish().order.filter((k) => /^(cert|etcd-member|unit):/.test(k));
    expect(keys).toEqual([
      'cert:etcd-events-peer',
      'cert:etcd-events-server',
      'cert:etcd-main-peer',
      'cert:etcd-main-server',
      'cert:etcd-nodeup-client',
      'etcd-member:events',
      'etcd-member:main',
      'unit:nodeup-etcd-backup.service',
      'unit:nodeup-etcd-backup.timer',
    ]);
  });

  it('waits for kubelet (static pods) and the certificates before joining, in a whole control-plane graph', () => {
    const g = buildGraph(cpModel(), components).finish();
    const deps = g.deps.get('etcd-member:main') ?? [];
    expect(deps).toContain('unit:kubelet.service');
    expect(deps).toEqual(expect.arrayContaining(['cert:etcd-main-server', 'cert:etcd-main-peer', 'cert:etcd-nodeup-client', 'pki:/etc/kubernetes/pki/etcd/ca.crt']));
    const sys = buildGraph(cpModel({ spec: { etcd: { mode: 'systemd' } } }), components).finish();
    expect(sys.deps.get('etcd-member:main')).not.toContain('unit:kubelet.service');
  });

  it('plans a join without a data dir, keeps the manifest of a member with data, and rewrites a changed one', async () => {
    const g = new Graph();
    etcdComponent.build(cpModel({ spec: { etcd: { clusters: [{ name: 'main', clientPort: 2379, peerPort: 2380 }] } } }), g);
    const task = g.finish().tasks.get('etcd-member:main') as EtcdMemberTask;
    const host = await createTestHost();
    try {
      expect(task.diff(await task.observe(host)).map((c) => c.field)).toEqual(['member']);
      // Joining needs a live node: on an offline root apply refuses clearly.
      await expect(task.apply(host, [{ field: 'member', to: 'x' }], taskContext())).rejects.toThrow(/needs a live node/);
      // The state file of a member whose join a run finished (promoted and registered).
      const saved = { initialCluster: 'node-a=https://10.0.0.10:2380', initialClusterState: 'new' as const, initialClusterToken: 't', complete: true };
      await host.fs.mkdirp('/var/lib/etcd/main/member/snap', 0o700);
      await host.fs.writeAtomic('/var/lib/etcd/main/member/snap/db', 'x', { mode: 0o600 });
      await host.fs.writeAtomic('/var/lib/nodeup/etcd-main.json', JSON.stringify(saved), { mode: 0o644 }).catch(async () => {
        await host.fs.mkdirp('/var/lib/nodeup', 0o755);
        await host.fs.writeAtomic('/var/lib/nodeup/etcd-main.json', JSON.stringify(saved), { mode: 0o644 });
      });
      expect(task.diff(await task.observe(host)).map((c) => c.field)).toEqual(['manifest']);
      await task.apply(host, task.diff(await task.observe(host)), taskContext());
      const manifest = ((await host.fs.read('/etc/kubernetes/manifests/etcd-main.yaml')) as Buffer).toString();
      expect(manifest).toContain('--initial-cluster-state=new');
      expect((await host.fs.stat('/etc/kubernetes/manifests/etcd-main.yaml'))?.mode).toBe(0o600);
      expect(task.diff(await task.observe(host))).toEqual([]);
      expect(JSON.parse(((await host.fs.read('/var/lib/nodeup/etcd-main.json')) as Buffer).toString())).toMatchObject({ complete: true });

      // A run that stopped between etcd's start and the promotion leaves no `complete`: the next
      // run confirms the member (promotes a learner left behind, registers it), which needs a live
      // node, and keeps the manifest as it is.
      const { complete: _done, ...unfinished } = saved;
      await host.fs.writeAtomic('/var/lib/nodeup/etcd-main.json', JSON.stringify(unfinished), { mode: 0o644 });
      const pending = task.diff(await task.observe(host));
      expect(pending).toEqual([{ field: 'membership', from: 'not confirmed by a finished run', to: 'a voting member (promoted if still a learner), registered in the state store' }]);
      await expect(task.apply(host, pending, taskContext())).rejects.toThrow(/confirming a member needs a live node/);
      expect(((await host.fs.read('/etc/kubernetes/manifests/etcd-main.yaml')) as Buffer).toString()).toBe(manifest);
    } finally {
      await host.dispose();
    }
  });
});
