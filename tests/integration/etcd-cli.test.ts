// `nodeup etcd members|backup|remove|restore` as a process, against real etcd 3.4 on loopback:
// the table, a backup, a refused removal (exit 1, the reason on stderr), and the guided restore.
// Needs scripts/setup-etcd.sh.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debianEtcd, EtcdWorld, writeKeys } from './etcd-harness.ts';

const main = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/app/main.ts');

function nodeup(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODEUP_LOG_LEVEL: 'warn' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

describe('nodeup etcd (CLI) on etcd 3.4', () => {
  let world: EtcdWorld;
  let off: string[];
  beforeAll(async () => {
    world = await EtcdWorld.create(debianEtcd());
    for (const n of ['node-a', 'node-b', 'node-c']) await world.join(await world.newNode(n));
    const f = world.pki.clientFiles;
    off = ['--store', world.store.url, '--ca', f.ca, '--cert', f.cert, '--key', f.key, '--log-format', 'json'];
  });
  afterAll(async () => {
    await world?.dispose();
  });

  it('members prints a table with name, id, peer URL, learner, leader and health', async () => {
    const r = await nodeup(['etcd', 'members', ...off]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[1]).toMatch(/^NAME\s+ID\s+PEER URL\s+LEARNER\s+LEADER\s+HEALTH$/);
    const rows = lines.filter((l) => l.startsWith('node-'));
    expect(rows).toHaveLength(3);
    for (const row of rows) expect(row).toMatch(/^node-[abc]\s+[0-9a-f]+\s+https:\/\/127\.0\.0\.1:\d+\s+no\s+(yes|no)\s+healthy$/);
    expect(rows.filter((row) => /\s+no\s+yes\s+healthy$/.test(row))).toHaveLength(1);
    expect(r.stdout).toContain('3 of 3 voting members healthy; quorum needs 2.');
  });

  it('backup stores a snapshot and lists it', async () => {
    await writeKeys(world.clusterClient(), '/cli/', 300);
    const r = await nodeup(['etcd', 'backup', ...off]);
    expect(r.code).toBe(0);
    const name = r.stdout.split('\t')[1] ?? '';
    expect(name).toMatch(/^\d{8}T\d{9}Z-manual$/);
    const list = await nodeup(['etcd', 'backup', '--list', ...off]);
    expect(list.stdout).toContain(`main\t${name}\n`);
  });

  it('remove is refused with the reason when it would break quorum', async () => {
    await world.nodes.get('node-c')?.proc?.kill();
    const r = await nodeup(['etcd', 'remove', 'node-a', ...off, '--endpoints', [world.nodes.get('node-a'), world.nodes.get('node-b')].map((n) => n?.self.clientUrl).join(',')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('removing node-a would leave 1 healthy of 2 voting members, and quorum needs 2');
  });

  it('restore explains the steps, changes nothing without --yes, and restores with it', async () => {
    await world.stopAll();
    const r = world.nodes.get('node-a');
    if (!r) throw new Error('no node-a');
    const args = ['etcd', 'restore', '--from', 'latest', ...off, '--endpoints', r.self.clientUrl, '--name', r.self.name, '--peer-url', r.self.peerUrl, '--data-dir', r.dataDir, '--restore-tool', world.bin.restoreTool, '--root', '/'];
    const dry = await nodeup(args);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('Stop etcd main on EVERY control-plane node');
    expect(dry.stdout).toContain('node-b, node-c');
    expect(dry.stdout).toContain('Nothing changed');
    const done = await nodeup([...args, '--yes']);
    expect(done.stderr).toBe('');
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(/The old data dir is kept at .*data-node-a\.before-restore-/);
    world.spawn(r, { initialCluster: `node-a=${r.self.peerUrl}`, initialClusterState: 'new', initialClusterToken: 'ignored-with-data' });
    const c = world.client([r.self.clientUrl]);
    for (let i = 0; i < 100; i++) {
      try {
        await c.status(r.self.clientUrl);
        break;
      } catch {
        await new Promise((x) => setTimeout(x, 200));
      }
    }
    expect(await c.count('/cli/')).toBe(300);
    expect((await c.memberList()).members.map((m) => m.name)).toEqual(['node-a']);
  });
});
