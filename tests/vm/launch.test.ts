// Scenario 0 (the orchestrator's own path): `nodeup launch --provider qemu` boots one guest from the
// base image through cloud-init (NoCloud over HTTP), the guest fetches the real nodeup binary by
// SHA-256, runs `nodeup apply` for a worker whose config has only files and a unit, and its receipt
// reaches the orchestrator. Real QEMU (KVM when it works, else TCG), real cloud-init, real systemd.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseImage, binary, diagnose, keepVms, nodeup, readTimings, requireFixtures, tempDir, type CliResult } from './harness.ts';

const name = 'vmlaunch-1';
let stateDir = '';
let workDir = '';

const nodeConfig = `apiVersion: nodeup.dev/v1alpha1
kind: NodeConfig
metadata:
  cluster: vmtest
  instanceGroup: vmlaunch
spec:
  role: worker
  apiServerEndpoint: https://10.0.2.2:6443
  files:
    - path: /etc/nodeup-test/hello.txt
      content: "hello from nodeup launch\\n"
      mode: "0600"
  units:
    - name: nodeup-hello.service
      content: |
        [Unit]
        Description=nodeup VM test unit
        [Service]
        Type=oneshot
        RemainAfterExit=yes
        ExecStart=/bin/sh -c 'cat /etc/nodeup-test/hello.txt > /run/nodeup-hello'
        [Install]
        WantedBy=multi-user.target
`;

describe('nodeup launch --provider qemu', () => {
  let res: CliResult | undefined;

  beforeAll(async () => {
    requireFixtures();
    workDir = await tempDir('nodeup-vm-launch-');
    stateDir = path.join(workDir, 'instances');
    await fsp.writeFile(path.join(workDir, 'node.yaml'), nodeConfig);
  });

  afterAll(async () => {
    if (!stateDir) return;
    if (keepVms) {
      process.stdout.write(`NODEUP_KEEP_VMS=1: keeping ${name} in ${stateDir}\n`);
      return;
    }
    await nodeup(['launch', '--state-dir', stateDir, '--delete', name], { echo: false });
    await fsp.rm(workDir, { recursive: true, force: true });
  });

  it('boots a guest whose nodeup receipt reaches the orchestrator and says converged', async () => {
    res = await nodeup([
      'launch', '--provider', 'qemu',
      '--node-config', path.join(workDir, 'node.yaml'),
      '--name', name,
      '--binary', binary,
      '--base-image', baseImage,
      '--state-dir', stateDir,
      '--only', 'node-files',
      '--timeout', process.env.NODEUP_VM_TIMEOUT ?? '1500',
      '--log-format', 'json',
    ]);
    try {
      expect(res.code, 'nodeup launch exit code').toBe(0);
      expect(res.stdout).toMatch(new RegExp(`node ${name}: ready \\(converged`));
      const receipt = JSON.parse(await fsp.readFile(path.join(stateDir, name, 'receipt.json'), 'utf8')) as {
        result: string; nodeName: string; mode: string; tasks: { key: string; status: string }[];
      };
      expect(receipt.result).toBe('converged');
      expect(receipt.nodeName).toBe(name);
      expect(receipt.mode).toBe('apply');
      const byKey = Object.fromEntries(receipt.tasks.map((t) => [t.key, t.status]));
      expect(byKey['file:/etc/nodeup-test/hello.txt']).toBe('changed');
      expect(byKey['unit:nodeup-hello.service']).toBe('changed');

      const t = await readTimings(stateDir, name);
      expect(t.startedAtMs).toBeGreaterThan(t.launchedAtMs);
      expect(t.receiptAtMs).toBeGreaterThanOrEqual(t.startedAtMs!);
      process.stdout.write(
        `vm launch figures (${t.accel}): launch->nodeup start ${((t.startedAtMs! - t.launchedAtMs) / 1000).toFixed(1)}s ` +
          `(guest uptime ${t.startedUptimeS}s), nodeup wall ${((t.nodeupMs ?? 0) / 1000).toFixed(1)}s, launch->receipt ${((t.receiptAtMs! - t.launchedAtMs) / 1000).toFixed(1)}s, ` +
          `whole command ${res.seconds.toFixed(0)}s\n`,
      );

      const list = await nodeup(['launch', '--state-dir', stateDir, '--list', '--json'], { echo: false });
      expect(list.code).toBe(0);
      const rows = JSON.parse(list.stdout) as { name: string; state: string; result?: string }[];
      expect(rows).toEqual([expect.objectContaining({ name, state: 'running', result: 'converged' })]);
    } catch (err: unknown) {
      process.stdout.write((await diagnose(stateDir, name, res)) + '\n');
      throw err;
    }
  });

  it('deletes the guest with --delete and refuses unknown names', async () => {
    if (keepVms) return;
    const del = await nodeup(['launch', '--state-dir', stateDir, '--delete', name], { echo: false });
    expect(del.code, del.stderr).toBe(0);
    const list = await nodeup(['launch', '--state-dir', stateDir, '--list', '--json'], { echo: false });
    expect(JSON.parse(list.stdout)).toEqual([]);
    const again = await nodeup(['launch', '--state-dir', stateDir, '--delete', name], { echo: false });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no qemu instance named vmlaunch-1/);
  });
});
