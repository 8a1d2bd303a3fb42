// Real etcd processes on 127.0.0.1 (Debian's 3.4 and 3.6 built from the Go module proxy), driven by
// nodeup's membership code: a cluster forms through learner joins, a fourth node joins and is
// promoted, a killed member is replaced with every key still readable, a learner left behind by a
// run that stopped is promoted by the next one, a creator whose run stopped before etcd kept data
// creates again, and a removal that would break quorum is refused.
// Needs scripts/setup-etcd.sh.
import * as fsp from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentError } from '../../src/engine/errors.ts';
import { listBackups } from '../../src/etcd/backup.ts';
import { finishMember, waitAnswering } from '../../src/etcd/join.ts';
import { clusterHealth, forgetRegistration, registeredMembers, removeMember } from '../../src/etcd/membership.ts';
import { debianEtcd, etcd36, EtcdWorld, writeKeys, type EtcdBinaries } from './etcd-harness.ts';

const binaries: [string, () => EtcdBinaries][] = [
  ['etcd 3.4', debianEtcd],
  ['etcd 3.6', etcd36],
];

describe.each(binaries)('%s membership', (_label, pick) => {
  let world: EtcdWorld;

  beforeAll(async () => {
    world = await EtcdWorld.create(pick());
  });
  afterAll(async () => {
    await world?.dispose();
  });

  it('forms a 3-member cluster: one creates, two join as learners and are promoted', async () => {
    const a = await world.newNode('node-a');
    const b = await world.newNode('node-b');
    const c = await world.newNode('node-c');
    expect((await world.join(a)).action).toBe('created');
    const rb = await world.join(b);
    expect(rb.action).toBe('joined');
    expect(rb.start?.initialClusterState).toBe('existing');
    expect(rb.start?.initialCluster.split(',').sort()).toEqual([`node-a=${a.self.peerUrl}`, `node-b=${b.self.peerUrl}`]);
    expect((await world.join(c)).action).toBe('joined');
    const health = await clusterHealth(world.clusterClient());
    expect(health.members.map((m) => [m.member.name, m.member.isLearner, m.healthy]).sort()).toEqual([
      ['node-a', false, true],
      ['node-b', false, true],
      ['node-c', false, true],
    ]);
    expect(health.leaderId).toBeDefined();
    // A backup went to the state store before every membership change (2 adds, 2 promotions).
    const backups = await listBackups(world.store, 'main');
    expect(backups.filter((b) => /before-add-node-[bc]$/.test(b))).toHaveLength(2);
    expect(backups.filter((b) => /before-promote-node-[bc]$/.test(b))).toHaveLength(2);
  });

  it('adds a fourth node as a learner and promotes it once caught up', async () => {
    const client = world.clusterClient();
    await writeKeys(client, '/before-d/', 500);
    const d = await world.newNode('node-d');
    const res = await world.join(d);
    expect(res.action).toBe('joined');
    expect(res.promoteAttempts).toBeGreaterThanOrEqual(1);
    const health = await clusterHealth(world.clusterClient());
    expect(health.voters).toBe(4);
    expect(health.members.find((m) => m.member.name === 'node-d')?.member.isLearner).toBe(false);
    // The new member serves every key written before it joined.
    expect(await world.client([d.self.clientUrl]).count('/before-d/')).toBe(500);
  });

  it('replaces a killed member and every key stays readable', async () => {
    const client = world.clusterClient();
    await writeKeys(client, '/replace/', 1000);
    const c = world.nodes.get('node-c');
    if (!c?.proc) throw new Error('node-c is not running');
    await c.proc.kill();
    // The node is gone with its disk; a new machine with the same name takes its place.
    await world.host.fs.remove(c.dataDir);
    const res = await world.join(c);
    expect(res.action).toBe('joined');
    const health = await clusterHealth(world.clusterClient());
    expect(health.voters).toBe(4);
    expect(health.healthyVoters).toBe(4);
    for (const n of world.nodes.values()) {
      expect(await world.client([n.self.clientUrl]).count('/replace/')).toBe(1000);
      expect(await world.client([n.self.clientUrl]).count('/before-d/')).toBe(500);
    }
    expect((await listBackups(world.store, 'main')).some((b) => b.endsWith('before-remove-node-c'))).toBe(true);
  });

  it('a node whose run stopped right after starting its learner is promoted and registered by its next run (finishMember)', async () => {
    const x = await world.newNode('node-x');
    // The first run: learner added, etcd started, then the run dies (a power cut, a timeout).
    const first = await world
      .join(x, {
        start: async (p) => {
          world.spawn(x, p);
          throw new Error('the run stopped here');
        },
      })
      .catch((e: unknown) => e);
    expect(String(first)).toContain('the run stopped here');
    await waitAnswering(world.client([x.self.clientUrl]), x.self.clientUrl, 60_000, (ms) => new Promise((r) => setTimeout(r, ms)));
    const stuck = await clusterHealth(world.clusterClient());
    expect(stuck.members.find((m) => m.member.peerURLs.includes(x.self.peerUrl))?.member.isLearner).toBe(true);
    expect((await registeredMembers(world.store, 'main')).map((m) => m.name)).not.toContain('node-x');

    // The next run finds data but no confirmation: it promotes the learner and registers it.
    const deps = { cluster: world.cluster, self: x.self, store: world.store, client: (eps: readonly string[]) => world.client(eps), dataDir: x.dataDir };
    expect(await finishMember(deps)).toBe('promoted');
    const after = await clusterHealth(world.clusterClient());
    expect(after.members.find((m) => m.member.name === 'node-x')?.member.isLearner).toBe(false);
    expect(after.healthyVoters).toBe(5);
    expect((await registeredMembers(world.store, 'main')).map((m) => m.name)).toContain('node-x');
    expect(await finishMember(deps)).toBe('confirmed');

    // Removed meanwhile: the data is a former member's, and the error says how to join anew.
    await x.proc?.kill();
    await removeMember(world.clusterClient(), after.members.find((m) => m.member.name === 'node-x')?.member.id ?? '', { cluster: 'main', store: world.store });
    world.nodes.delete('node-x');
    await expect(finishMember(deps)).rejects.toThrow(/is not a member of the cluster \(it was removed\): move .* aside and run nodeup apply again/);
    expect((await world.clusterClient().memberList()).members).toHaveLength(4);
  });

  it('a creator whose run stopped before etcd kept any data creates the cluster again; another node may not', async () => {
    const fresh = await EtcdWorld.create(pick(), 'recreate');
    try {
      const a = await fresh.newNode('node-a');
      const b = await fresh.newNode('node-b');
      // The first run claims the creation, then the power goes before etcd wrote anything.
      const first = await fresh.join(a, { start: () => Promise.reject(new Error('the power went here')) }).catch((e: unknown) => e);
      expect(String(first)).toContain('the power went here');
      expect(await registeredMembers(fresh.store, 'recreate')).toEqual([]);
      // Only the creator may decide that nothing was kept: another node cannot tell a slow creator from a dead one.
      await expect(fresh.join(b)).rejects.toThrow(/was created by node-a but no other member is registered/);
      expect((await fresh.join(a)).action).toBe('created');
      expect((await fresh.join(b)).action).toBe('joined');
      await writeKeys(fresh.client([a.self.clientUrl]), '/after-recreate/', 10);
      expect(await fresh.client([b.self.clientUrl]).count('/after-recreate/')).toBe(10);
      // Registered now: losing its data from here on is a restore, never a silent new cluster.
      await a.proc?.kill();
      await fsp.rm(a.dataDir, { recursive: true, force: true });
      await b.proc?.kill();
      expect(await forgetRegistration(fresh.store, 'recreate', 'node-b', [b.self.peerUrl])).toBe(true);
      await expect(fresh.join(a)).rejects.toThrow(/was created by node-a but no other member is registered.*restore from a backup/);
    } finally {
      await fresh.dispose();
    }
  });

  it('removes a dead member when quorum allows, and refuses a removal that would break quorum', async () => {
    const d = world.nodes.get('node-d');
    const b = world.nodes.get('node-b');
    if (!d?.proc || !b?.proc) throw new Error('nodes are not running');
    await d.proc.kill();
    const dead = (await clusterHealth(world.clusterClient())).members.find((m) => m.member.name === 'node-d');
    expect(dead?.healthy).toBe(false);
    await removeMember(world.clusterClient(), dead?.member.id ?? '', { cluster: 'main', store: world.store });
    expect((await world.clusterClient().memberList()).members.map((m) => m.name)).not.toContain('node-d');
    world.nodes.delete('node-d');
    // 3 voters; with node-b down, removing healthy node-a would leave 1 healthy of 2.
    await b.proc.kill();
    const health = await clusterHealth(world.clusterClient());
    expect([health.voters, health.healthyVoters]).toEqual([3, 2]);
    const a = health.members.find((m) => m.member.name === 'node-a');
    const err = await removeMember(world.clusterClient(), a?.member.id ?? '', { cluster: 'main', store: world.store }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe('ETCD_QUORUM');
    expect((err as AgentError).message).toMatch(/removing node-a would leave 1 healthy of 2 voting members, and quorum needs 2/);
    // Nothing was removed, and the cluster still serves reads and writes.
    expect((await world.clusterClient().memberList()).members).toHaveLength(3);
    await world.clusterClient().put('/after-refusal', 'ok');
    expect(await world.clusterClient().get('/after-refusal')).toBe('ok');
  });
});
