// Scenario 0 (the orchestrator's own path) and the private link, in one `nodeup launch` of two
// guests (one boot each, where two scenarios used to boot three guests): `nodeup launch --provider
// qemu --name vmlaunch-1 --name vmlaunch-2 --network lab --state-store file://...` boots both from
// the base image through cloud-init (NoCloud over HTTP); each guest fetches the real nodeup binary
// by SHA-256, reads its NodeConfig from the host's file:// store that launch serves over HTTP (as
// cluster nodes read their PKI), and runs `nodeup apply` for a worker whose config has only files
// and units; the receipts reach the orchestrator. Real QEMU (KVM when it works, else TCG), real
// cloud-init, real systemd.
// The link: each guest's nodeup starts a unit that must reach sshd on both guests' private
// addresses (192.168.77.11 and .12), so both receipts say converged only when the link between the
// two QEMU processes (UDP over 127.0.0.1) carries traffic both ways. This is the network the
// cluster scenarios' control plane and worker use.
// Then `--list` shows both with their private addresses, and `--delete` removes them and refuses
// unknown names.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseImage, binary, diagnose, keepVms, nodeup, readTimings, requireFixtures, tempDir, type CliResult } from './harness.ts';

const names = ['vmlaunch-1', 'vmlaunch-2'];
let workDir = '';
let stateDir = '';

const nodeConfig = `apiVersion: nodeup.dev/v1alpha1
kind: NodeConfig
metadata: {cluster: vmtest, instanceGroup: vmlaunch}
spec:
  role: worker
  apiServerEndpoint: https://192.168.77.11:6443
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
    - name: nodeup-peer-check.service
      content: |
        [Unit]
        Description=reach sshd on both guests over the private link
        [Service]
        Type=oneshot
        RemainAfterExit=yes
        ExecStart=/bin/bash -c 'for ip in 192.168.77.11 192.168.77.12; do ok=; for i in $(seq 120); do if timeout 3 bash -c "</dev/tcp/$ip/22"; then ok=1; break; fi; sleep 5; done; [ -n "$ok" ] || { echo "cannot reach $ip:22"; exit 1; }; echo "reached $ip:22"; done'
        [Install]
        WantedBy=multi-user.target
`;

describe('nodeup launch --provider qemu: two guests on a private link', () => {
  let res: CliResult | undefined;

  beforeAll(async () => {
    requireFixtures();
    workDir = await tempDir('nodeup-vm-launch-');
    stateDir = path.join(workDir, 'instances');
    await fsp.writeFile(path.join(workDir, 'node.yaml'), nodeConfig);
    await fsp.mkdir(path.join(workDir, 'store', 'igconfig', 'vmlaunch'), { recursive: true });
    await fsp.writeFile(path.join(workDir, 'store', 'igconfig', 'vmlaunch', 'node.yaml'), nodeConfig);
  });

  afterAll(async () => {
    if (!stateDir) return;
    if (keepVms) {
      process.stdout.write(`NODEUP_KEEP_VMS=1: keeping ${names.join(', ')} in ${stateDir}\n`);
      return;
    }
    const list = await nodeup(['launch', '--state-dir', stateDir, '--list', '--json'], { echo: false });
    const left = list.code === 0 ? (JSON.parse(list.stdout) as { name: string }[]).map((r) => r.name) : names;
    if (left.length > 0) await nodeup(['launch', '--state-dir', stateDir, '--delete', left.join(',')], { echo: false });
    await fsp.rm(workDir, { recursive: true, force: true });
  });

  it('boots two guests whose receipts reach the orchestrator, converged, and that reach each other at 192.168.77.11 and .12', async () => {
    res = await nodeup([
      'launch', '--provider', 'qemu', '--node-config', path.join(workDir, 'node.yaml'),
      '--name', names[0]!, '--name', names[1]!,
      '--network', 'lab',
      '--state-store', `file://${path.join(workDir, 'store')}`,
      '--binary', binary, '--base-image', baseImage, '--state-dir', stateDir,
      '--only', 'node-files', '--timeout', process.env.NODEUP_VM_TIMEOUT ?? '2400', '--log-format', 'json',
    ]);
    try {
      expect(res.code, 'nodeup launch exit code').toBe(0);
      for (const n of names) {
        expect(res.stdout).toMatch(new RegExp(`node ${n}: ready \\(converged`));
        expect(await fsp.readFile(path.join(stateDir, n, 'user-data'), 'utf8')).toMatch(/stateStore: http:\/\/10\.0\.2\.2:\d+\/store\n/);
        const receipt = JSON.parse(await fsp.readFile(path.join(stateDir, n, 'receipt.json'), 'utf8')) as {
          result: string; nodeName: string; mode: string; tasks: { key: string; status: string }[];
        };
        expect(receipt.result, `${n} receipt`).toBe('converged');
        expect(receipt.nodeName).toBe(n);
        expect(receipt.mode).toBe('apply');
        const byKey = Object.fromEntries(receipt.tasks.map((t) => [t.key, t.status]));
        expect(byKey['file:/etc/nodeup-test/hello.txt'], `${n}: the file`).toBe('changed');
        expect(byKey['unit:nodeup-hello.service'], `${n}: the unit`).toBe('changed');
        expect(byKey['unit:nodeup-peer-check.service'], `${n}: the unit that needs both guests over the link`).toBe('changed');

        const t = await readTimings(stateDir, n);
        expect(t.startedAtMs).toBeGreaterThan(t.launchedAtMs);
        expect(t.receiptAtMs).toBeGreaterThanOrEqual(t.startedAtMs!);
        process.stdout.write(
          `vm launch figures ${n} (${t.accel}, 2 guests at once): launch->nodeup start ${((t.startedAtMs! - t.launchedAtMs) / 1000).toFixed(1)}s ` +
            `(guest uptime ${t.startedUptimeS}s), nodeup wall ${((t.nodeupMs ?? 0) / 1000).toFixed(1)}s, launch->receipt ${((t.receiptAtMs! - t.launchedAtMs) / 1000).toFixed(1)}s, ` +
            `whole command ${res.seconds.toFixed(0)}s\n`,
        );
      }
      const list = await nodeup(['launch', '--state-dir', stateDir, '--list'], { echo: false });
      expect(list.stdout).toContain('(private 192.168.77.11/24)');
      expect(list.stdout).toContain('(private 192.168.77.12/24)');
      const json = await nodeup(['launch', '--state-dir', stateDir, '--list', '--json'], { echo: false });
      expect(json.code).toBe(0);
      const rows = JSON.parse(json.stdout) as { name: string; state: string; result?: string }[];
      expect(rows.sort((a, b) => a.name.localeCompare(b.name))).toEqual(names.map((name) => expect.objectContaining({ name, state: 'running', result: 'converged' })));
    } catch (err: unknown) {
      for (const n of names) process.stdout.write((await diagnose(stateDir, n, res)) + '\n');
      throw err;
    }
  });

  it('deletes the guests with --delete and refuses unknown names', async () => {
    if (keepVms) return;
    const del = await nodeup(['launch', '--state-dir', stateDir, '--delete', names.join(',')], { echo: false });
    expect(del.code, del.stderr).toBe(0);
    const list = await nodeup(['launch', '--state-dir', stateDir, '--list', '--json'], { echo: false });
    expect(JSON.parse(list.stdout)).toEqual([]);
    const again = await nodeup(['launch', '--state-dir', stateDir, '--delete', names[0]!], { echo: false });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no qemu instance named vmlaunch-1/);
  });
});
