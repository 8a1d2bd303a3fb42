// The node's run lock on a real file system (a temp root): one holder, a waiter that gets it when
// the holder releases, --no-wait naming the holder, a dead holder's stale lock taken over.
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentError, exitCodeFor } from './errors.ts';
import { NodeHost } from './host/node-host.ts';
import { createLogger, silentLogger } from './log.ts';
import { runLockPath, takeRunLock } from './run-lock.ts';

let root: string;
let host: NodeHost;
beforeEach(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-lock-'));
  host = new NodeHost({ root, log: silentLogger });
});
afterEach(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});

describe('run lock', () => {
  it('a second run with --no-wait stops at once naming the holder; after the release it gets the lock', async () => {
    const first = await takeRunLock({ host, mode: 'apply', wait: true, log: silentLogger });
    const holder = JSON.parse(await fsp.readFile(path.join(root, `${runLockPath}.json`), 'utf8')) as { pid: number; mode: string };
    expect(holder).toMatchObject({ pid: process.pid, mode: 'apply' });
    let err: unknown;
    try {
      await takeRunLock({ host, mode: 'bake', wait: false, log: silentLogger });
    } catch (e: unknown) {
      err = e;
    }
    expect((err as AgentError).code).toBe('LOCKED');
    expect((err as Error).message).toMatch(new RegExp(`^another nodeup run is converging this node \\(pid ${process.pid}, apply \\(\`nodeup[^\`]*\`\\) since \\d{4}-`));
    expect(exitCodeFor(err)).toBe(1);
    await first.release();
    await expect(fsp.stat(path.join(root, runLockPath))).rejects.toThrow();
    await expect(fsp.stat(path.join(root, `${runLockPath}.json`))).rejects.toThrow();
    const second = await takeRunLock({ host, mode: 'bake', wait: false, log: silentLogger });
    await second.release();
  });

  it('a waiting run logs who holds the lock and takes it when the holder releases it', async () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'json', stream: { write: (l: string) => void lines.push(l) } });
    const first = await takeRunLock({ host, mode: 'apply', wait: true, log: silentLogger });
    let released = 0;
    setTimeout(() => void first.release().then(() => (released = Date.now())), 400);
    const second = await takeRunLock({ host, mode: 'apply', wait: true, log, pollMs: 50 });
    expect(released, 'taken only after the release').toBeGreaterThan(0);
    expect(Date.now()).toBeGreaterThanOrEqual(released);
    expect(second.waitedMs).toBeGreaterThanOrEqual(300);
    const waiting = lines.map((l) => JSON.parse(l) as { msg: string; holder?: string }).find((m) => m.msg === 'waiting for another nodeup run to finish');
    expect(waiting?.holder).toMatch(new RegExp(`^pid ${process.pid}, apply`));
    await second.release();
  });

  it('the stale lock of a run that died without releasing it is taken over', async () => {
    const dir = path.join(root, runLockPath);
    await fsp.mkdir(dir, { recursive: true });
    const past = new Date(Date.now() - 120_000);
    await fsp.utimes(dir, past, past);
    const lock = await takeRunLock({ host, mode: 'apply', wait: false, log: silentLogger });
    expect(lock.waitedMs).toBeLessThan(1000);
    await lock.release();
  });
});
