import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { MockAgent, getGlobalDispatcher, setGlobalDispatcher, type Dispatcher } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentError } from '../errors.ts';
import { createTestHost, type TestHost } from '../../../tests/support/test-host.ts';
import { DownloadTask } from './download.ts';
import { DirTask, FileTask, SymlinkTask } from './file.ts';
import type { AnyTask } from '../task.ts';
import { taskContext } from '../../../tests/support/task-context.ts';

const execFileP = promisify(execFile);
const ctx = taskContext();
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

let host: TestHost;
beforeEach(async () => {
  host = await createTestHost({ fixture: 'debian-12' });
});
afterEach(async () => {
  await host.dispose();
});

async function converge(task: AnyTask) {
  const before = task.diff(await task.observe(host, ctx));
  await task.apply(host, before, ctx);
  const after = task.diff(await task.observe(host, ctx));
  return { before, after };
}

describe('file task', () => {
  it('creates, then converges; content changes are shown as hashes, never as text', async () => {
    const t = new FileTask({ path: '/etc/app/secret.key', content: 'PRIVATE KEY', mode: 0o600 });
    const { before, after } = await converge(t);
    expect(JSON.stringify(before)).not.toContain('PRIVATE');
    expect(after).toEqual([]);
    const st = await fsp.stat(path.join(host.root, 'etc/app/secret.key'));
    expect(st.mode & 0o777).toBe(0o600);
  });

  it('repairs drifted content and mode', async () => {
    const t = new FileTask({ path: '/etc/a.conf', content: 'a=1\n', mode: 0o644 });
    await converge(t);
    await fsp.writeFile(path.join(host.root, 'etc/a.conf'), 'a=2\n');
    await fsp.chmod(path.join(host.root, 'etc/a.conf'), 0o666);
    const d = t.diff(await t.observe(host));
    expect(d.map((c) => c.field)).toEqual(['content', 'mode']);
    await t.apply(host, d, ctx);
    expect(await fsp.readFile(path.join(host.root, 'etc/a.conf'), 'utf8')).toBe('a=1\n');
  });

  it('ifNotExists never replaces content', async () => {
    await fsp.writeFile(path.join(host.root, 'etc/token'), 'user-token');
    await fsp.chmod(path.join(host.root, 'etc/token'), 0o600);
    const t = new FileTask({ path: '/etc/token', content: 'default', mode: 0o600, ifNotExists: true });
    expect(t.diff(await t.observe(host))).toEqual([]);
  });

  it('a read-only root fails with a clear error and changes nothing', async () => {
    const dir = path.join(host.root, 'etc/ro');
    await fsp.mkdir(dir);
    // A real read-only file system (root can mount one); without privileges, a 0555 directory.
    const mounted = await execFileP('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', dir]).then(
      () => true,
      () => false,
    );
    if (!mounted) await fsp.chmod(dir, 0o555);
    try {
      const t = new FileTask({ path: '/etc/ro/x.conf', content: 'new', mode: 0o644 });
      await expect(t.apply(host, t.diff(await t.observe(host)), ctx)).rejects.toThrow(
        mounted ? 'cannot write /etc/ro/x.conf: read-only file system' : 'cannot write /etc/ro/x.conf: permission denied',
      );
      expect(await fsp.readdir(dir)).toEqual([]);
    } finally {
      if (mounted) await execFileP('umount', [dir]);
      else await fsp.chmod(dir, 0o755);
    }
  });
});

describe('dir and symlink tasks', () => {
  it('create and converge', async () => {
    expect((await converge(new DirTask({ path: '/var/lib/x', mode: 0o700 }) as AnyTask)).after).toEqual([]);
    expect((await converge(new SymlinkTask({ path: '/usr/local/bin/k', target: '/opt/k' }) as AnyTask)).after).toEqual([]);
    expect(await fsp.readlink(path.join(host.root, 'usr/local/bin/k'))).toBe('/opt/k');
  });
});

describe('download task', () => {
  let tmp: string;
  let previous: Dispatcher;
  beforeEach(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-asset-'));
    previous = getGlobalDispatcher();
  });
  afterEach(async () => {
    setGlobalDispatcher(previous);
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  it('installs a verified asset, caches it by hash, and converges without re-hashing', async () => {
    const body = Buffer.from('#!/bin/sh\necho kubelet\n');
    await fsp.writeFile(path.join(tmp, 'kubelet'), body);
    const t = new DownloadTask({
      asset: { name: 'kubelet', urls: [pathToFileURL(path.join(tmp, 'kubelet')).href], sha256: sha(body) },
      path: '/usr/local/bin/kubelet',
      mode: 0o755,
    });
    const { before, after } = await converge(t);
    expect(before).toEqual([{ field: 'content', to: `sha256:${sha(body).slice(0, 12)} (download kubelet)` }]);
    expect(after).toEqual([]);
    expect(await fsp.readFile(path.join(host.root, 'var/cache/nodeup/sha256', sha(body)))).toEqual(body);
  });

  it('a hash mismatch refuses to install and leaves nothing behind', async () => {
    await fsp.writeFile(path.join(tmp, 'kubelet'), 'tampered');
    const want = sha('the real bytes');
    const t = new DownloadTask({ asset: { name: 'kubelet', urls: [pathToFileURL(path.join(tmp, 'kubelet')).href], sha256: want }, path: '/usr/local/bin/kubelet', mode: 0o755 });
    const err = await (t as AnyTask).apply(host, t.diff(await t.observe(host)), ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe('CHECKSUM_MISMATCH');
    expect((err as AgentError).details).toMatchObject({ expected: want, actual: sha('tampered') });
    expect(await fsp.readdir(path.join(host.root, 'var/cache/nodeup/sha256'))).toEqual([]);
    await expect(fsp.stat(path.join(host.root, 'usr/local/bin/kubelet'))).rejects.toThrow();
  });

  it('falls over to the next mirror, and retries a truncated download', async () => {
    const body = Buffer.alloc(4096, 7);
    const agent = new MockAgent();
    agent.disableNetConnect();
    setGlobalDispatcher(agent);
    agent.get('http://mirror-a.test').intercept({ path: '/kubelet' }).reply(503, 'down').times(3);
    const b = agent.get('http://mirror-b.test');
    // first answer claims more bytes than it sends: a truncated transfer
    b.intercept({ path: '/kubelet' }).reply(200, body.subarray(0, 1000), { headers: { 'content-length': '4096' } });
    b.intercept({ path: '/kubelet' }).reply(200, body, { headers: { 'content-length': '4096' } });
    const t = new DownloadTask({
      asset: { name: 'kubelet', urls: ['http://mirror-a.test/kubelet', 'http://mirror-b.test/kubelet'], sha256: sha(body) },
      path: '/usr/local/bin/kubelet',
      mode: 0o755,
    });
    const { after } = await converge(t);
    expect(after).toEqual([]);
    expect(await fsp.readFile(path.join(host.root, 'usr/local/bin/kubelet'))).toEqual(body);
  });

  it('no hash, no download', async () => {
    const t = new DownloadTask({ asset: { name: 'x', urls: ['http://x.test/x'], sha256: '' }, path: '/x', mode: 0o755 });
    await expect((t as AnyTask).apply(host, t.diff(await t.observe(host)), ctx)).rejects.toThrow(/no valid sha256/);
  });
});
