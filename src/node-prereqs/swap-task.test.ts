import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestHost, type TestHost } from '../../tests/support/test-host.ts';
import { activeSwaps, commentSwapLines, fstabSwapLines, SwapOffTask } from './swap-task.ts';
import { taskContext } from '../../tests/support/task-context.ts';

const ctx = taskContext();
const fstab = 'UUID=abc / ext4 errors=remount-ro 0 1\n/swapfile none swap sw 0 0\n# /old none swap sw 0 0\nUUID=def none   swap  sw  0 0\n';
const procSwaps = 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/swapfile                               file\t\t1048572\t\t0\t\t-2\n';

let host: TestHost;
beforeEach(async () => {
  host = await createTestHost({ fixture: 'debian-12' });
});
afterEach(async () => {
  await host.dispose();
});

async function put(p: string, content: string, mode = 0o644): Promise<void> {
  const full = path.join(host.root, p);
  await fsp.mkdir(path.dirname(full), { recursive: true });
  await fsp.writeFile(full, content, { mode });
  await fsp.chmod(full, mode);
}

describe('swap parsing', () => {
  it('finds active fstab swap lines and /proc/swaps devices', () => {
    expect(fstabSwapLines(fstab)).toEqual(['/swapfile none swap sw 0 0', 'UUID=def none   swap  sw  0 0']);
    expect(activeSwaps(procSwaps)).toEqual(['/swapfile']);
    expect(activeSwaps('Filename Type Size Used Priority\n')).toEqual([]);
    expect(commentSwapLines(fstab)).toBe(
      'UUID=abc / ext4 errors=remount-ro 0 1\n# disabled by nodeup (kubelet NoSwap): /swapfile none swap sw 0 0\n# /old none swap sw 0 0\n# disabled by nodeup (kubelet NoSwap): UUID=def none   swap  sw  0 0\n',
    );
  });
});

describe('swap:off task', () => {
  it('live: swapoff -a and comments fstab swap lines, keeping the file mode; then converged', async () => {
    await put('/etc/fstab', fstab, 0o640);
    await put('/proc/swaps', procSwaps);
    host.script_([{ match: 'swapoff -a', effect: () => put('/proc/swaps', 'Filename Type Size Used Priority\n') }]);
    const t = new SwapOffTask({ live: true });
    const changes = t.diff(await t.observe(host));
    expect(changes).toEqual([
      { field: 'fstab', from: '2 swap entries', to: 'commented out' },
      { field: 'active swap', from: '/swapfile', to: 'off' },
    ]);
    await t.apply(host, changes, ctx);
    expect(host.commandLog()).toEqual(['swapoff -a']);
    expect(await fsp.readFile(path.join(host.root, 'etc/fstab'), 'utf8')).toBe(commentSwapLines(fstab));
    expect((await fsp.stat(path.join(host.root, 'etc/fstab'))).mode & 0o777).toBe(0o640);
    expect(t.diff(await t.observe(host))).toEqual([]);
  });

  it('offline root: only fstab, no command, /proc ignored', async () => {
    await put('/etc/fstab', fstab);
    await put('/proc/swaps', procSwaps);
    const t = new SwapOffTask({ live: false });
    const changes = t.diff(await t.observe(host));
    expect(changes).toEqual([{ field: 'fstab', from: '2 swap entries', to: 'commented out' }]);
    await t.apply(host, changes, ctx);
    expect(host.commandLog()).toEqual([]);
    expect(t.diff(await t.observe(host))).toEqual([]);
  });

  it('no fstab at all: nothing to do', async () => {
    const t = new SwapOffTask({ live: false });
    expect(t.diff(await t.observe(host))).toEqual([]);
  });
});
