import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestHost, type TestHost } from '../../../tests/support/test-host.ts';
import type { AnyTask } from '../task.ts';
import { KmodTask } from './kmod.ts';
import { SysctlTask, procSysPath } from './sysctl.ts';
import { taskContext } from '../../../tests/support/task-context.ts';

const ctx = taskContext();
const values = { 'net.ipv4.ip_forward': '1', 'net.bridge.bridge-nf-call-iptables': '1', 'net.ipv4.tcp_rmem': '4096 87380 16777216' };

let host: TestHost;
afterEach(async () => {
  await host.dispose();
});

async function put(p: string, content: string): Promise<void> {
  const full = path.join(host.root, p);
  await fsp.mkdir(path.dirname(full), { recursive: true });
  await fsp.writeFile(full, content);
}

async function step(task: AnyTask) {
  const changes = task.diff(await task.observe(host, ctx));
  if (changes.length > 0) await task.apply(host, changes, ctx);
  return changes;
}

describe('sysctl task', () => {
  beforeEach(async () => {
    host = await createTestHost({ fixture: 'debian-12' });
  });

  it('offline root: writes only the file, runs nothing, then converges', async () => {
    const t = new SysctlTask({ name: '99-kubernetes', values, live: false });
    expect(t.key).toBe('sysctl:/etc/sysctl.d/99-kubernetes.conf');
    const first = await step(t);
    expect(first.map((c) => c.field)).toEqual(['file']);
    expect(await fsp.readFile(path.join(host.root, 'etc/sysctl.d/99-kubernetes.conf'), 'utf8')).toBe(
      '# Managed by nodeup: local edits are replaced on the next run.\nnet.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-iptables = 1\nnet.ipv4.tcp_rmem = 4096 87380 16777216\n',
    );
    expect(host.commandLog()).toEqual([]);
    expect(await step(t)).toEqual([]);
  });

  it('live: applies differing running values with sysctl -p, tab-separated kernel output counts as equal', async () => {
    await put(procSysPath('net.ipv4.ip_forward'), '0\n');
    await put(procSysPath('net.ipv4.tcp_rmem'), '4096\t87380\t16777216\n');
    host.script_([
      {
        match: 'sysctl -p /etc/sysctl.d/99-kubernetes.conf',
        effect: async () => {
          await put(procSysPath('net.ipv4.ip_forward'), '1\n');
          await put(procSysPath('net.bridge.bridge-nf-call-iptables'), '1\n');
        },
      },
    ]);
    const t = new SysctlTask({ name: '99-kubernetes', values, live: true });
    const first = await step(t);
    expect(first).toContainEqual({ field: 'net.ipv4.ip_forward', from: '0', to: '1' });
    expect(first).toContainEqual({ field: 'net.bridge.bridge-nf-call-iptables', from: '(not set)', to: '1' });
    expect(first.some((c) => c.field === 'net.ipv4.tcp_rmem')).toBe(false);
    expect(host.commandLog()).toEqual(['sysctl -p /etc/sysctl.d/99-kubernetes.conf']);
    host.clearLog();
    expect(await step(t)).toEqual([]);
    expect(host.commandLog()).toEqual([]);
  });

  it('live: a value changed by someone else is set again', async () => {
    await put(procSysPath('net.ipv4.ip_forward'), '1\n');
    await put(procSysPath('net.bridge.bridge-nf-call-iptables'), '1\n');
    await put(procSysPath('net.ipv4.tcp_rmem'), '4096 87380 16777216\n');
    host.script_([{ match: /^sysctl -p / }]);
    const t = new SysctlTask({ name: '99-kubernetes', values, live: true });
    expect((await step(t)).map((c) => c.field)).toEqual(['file']);
    await put(procSysPath('net.ipv4.ip_forward'), '0\n');
    expect(await step(t)).toEqual([{ field: 'net.ipv4.ip_forward', from: '0', to: '1' }]);
    expect(host.commandLog()).toEqual(['sysctl -p /etc/sysctl.d/99-kubernetes.conf', 'sysctl -p /etc/sysctl.d/99-kubernetes.conf']);
  });
});

describe('kmod task', () => {
  beforeEach(async () => {
    host = await createTestHost({ fixture: 'debian-12' });
  });

  it('offline root: only the modules-load.d file', async () => {
    const t = new KmodTask({ name: 'kubernetes', modules: ['overlay', 'br_netfilter'], live: false });
    expect(t.key).toBe('kmod:/etc/modules-load.d/kubernetes.conf');
    expect((await step(t)).map((c) => c.field)).toEqual(['file']);
    expect(await fsp.readFile(path.join(host.root, 'etc/modules-load.d/kubernetes.conf'), 'utf8')).toBe(
      '# Managed by nodeup: local edits are replaced on the next run.\noverlay\nbr_netfilter\n',
    );
    expect(host.commandLog()).toEqual([]);
    expect(await step(t)).toEqual([]);
  });

  it('live: modprobes only the modules /sys/module does not list', async () => {
    await fsp.mkdir(path.join(host.root, 'sys/module/overlay'), { recursive: true });
    host.script_([{ match: 'modprobe br_netfilter', effect: () => fsp.mkdir(path.join(host.root, 'sys/module/br_netfilter'), { recursive: true }).then(() => undefined) }]);
    const t = new KmodTask({ name: 'kubernetes', modules: ['overlay', 'br_netfilter'], live: true });
    const first = await step(t);
    expect(first).toContainEqual({ field: 'module br_netfilter', from: 'not loaded', to: 'loaded' });
    expect(first.some((c) => c.field === 'module overlay')).toBe(false);
    expect(host.commandLog()).toEqual(['modprobe br_netfilter']);
    host.clearLog();
    expect(await step(t)).toEqual([]);
    expect(host.commandLog()).toEqual([]);
  });

  it('live: a failing modprobe fails the task with the command error', async () => {
    host.script_([{ match: 'modprobe nosuchmod', exitCode: 1, stderr: "modprobe: FATAL: Module nosuchmod not found in directory /lib/modules/6.1.0" }]);
    const t = new KmodTask({ name: 'x', modules: ['nosuchmod'], live: true });
    await expect(step(t)).rejects.toMatchObject({ code: 'COMMAND_FAILED' });
  });
});
