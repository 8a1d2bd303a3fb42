// Backup then restore on real etcd processes: 10,000 keys written before a backup to the state
// store all come back in a fresh cluster restored from it, and keys written after the backup do
// not. Needs scripts/setup-etcd.sh.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupToStore, listBackups, pruneBackups, readBackupMeta } from '../../src/etcd/backup.ts';
import { readCreated, registeredMembers } from '../../src/etcd/membership.ts';
import { restoreFromBackup } from '../../src/etcd/restore.ts';
import { debianEtcd, etcd36, EtcdWorld, writeKeys, type EtcdBinaries } from './etcd-harness.ts';

const binaries: [string, () => EtcdBinaries][] = [
  ['etcd 3.4', debianEtcd],
  ['etcd 3.6', etcd36],
];

describe.each(binaries)('%s backup and restore', (_label, pick) => {
  let world: EtcdWorld;
  beforeAll(async () => {
    world = await EtcdWorld.create(pick());
  });
  afterAll(async () => {
    await world?.dispose();
  });

  it('restores every key written before the backup into a fresh cluster', async () => {
    const a = await world.newNode('node-a');
    expect((await world.join(a)).action).toBe('created');
    const b = await world.newNode('node-b');
    expect((await world.join(b)).action).toBe('joined');
    const client = world.clusterClient();
    await writeKeys(client, '/data/', 10_000);
    expect(await client.count('/data/')).toBe(10_000);

    const meta = await backupToStore(client, world.store, 'main', { reason: 'manual', retention: 50 });
    expect(meta.members).toEqual(['node-a', 'node-b']);
    expect((await readBackupMeta(world.store, 'main', meta.name)).sha256).toBe(meta.sha256);
    await writeKeys(client, '/after/', 10);

    // Quorum loss: both members die; the operator restores on a new machine.
    await world.stopAll();
    const r = await world.newNode('node-r');
    const res = await restoreFromBackup({
      host: world.host,
      store: world.store,
      cluster: 'main',
      backup: 'latest',
      self: r.self,
      dataDir: r.dataDir,
      restoreTool: world.bin.restoreTool,
    });
    expect(res.meta.name).toBe(meta.name);
    expect(res.formerMembers.map((m) => m.name).sort()).toEqual(['node-a', 'node-b']);
    expect(existsSync(path.join(r.dataDir, 'member', 'snap', 'db'))).toBe(true);
    // The state store now knows one member, and a new token.
    expect((await registeredMembers(world.store, 'main')).map((m) => m.name)).toEqual(['node-r']);
    expect((await readCreated(world.store, 'main'))?.by).toBe('node-r');

    world.spawn(r, res.start);
    const restored = world.client([r.self.clientUrl]);
    for (let i = 0; i < 100; i++) {
      try {
        await restored.status(r.self.clientUrl);
        break;
      } catch {
        await new Promise((x) => setTimeout(x, 200));
      }
    }
    expect(await restored.count('/data/')).toBe(10_000);
    expect(await restored.get('/data/009999')).toBe('value-9999');
    expect(await restored.count('/after/')).toBe(0);
    expect((await restored.memberList()).members.map((m) => m.name)).toEqual(['node-r']);

    // Re-adding members: a new node joins the restored cluster as a learner through nodeup's code.
    const s = await world.newNode('node-s');
    expect((await world.join(s)).action).toBe('joined');
    expect(await world.client([s.self.clientUrl]).count('/data/')).toBe(10_000);
  });

  it('keeps only the newest backups', async () => {
    const before = await listBackups(world.store, 'main');
    expect(before.length).toBeGreaterThanOrEqual(3);
    const dropped = await pruneBackups(world.store, 'main', 2);
    expect(dropped).toEqual(before.slice(0, before.length - 2));
    expect(await listBackups(world.store, 'main')).toEqual(before.slice(-2));
  });
});
