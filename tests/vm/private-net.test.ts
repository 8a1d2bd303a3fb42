// Two guests on one private link (`nodeup launch --count 2 --network lab`): each guest's nodeup
// starts a unit that must reach sshd on both guests' private addresses, so both receipts say
// converged only when the link between the two QEMU processes (UDP over 127.0.0.1) carries
// traffic both ways. This is the network the cluster scenario's control plane and worker use.
// The guests read their NodeConfig from a host file:// store that nodeup launch serves over HTTP
// (--state-store), as cluster nodes will read their PKI.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseImage, binary, diagnose, keepVms, nodeup, requireFixtures, tempDir, type CliResult } from './harness.ts';

const names = ['vmnet-1', 'vmnet-2'];
let workDir = '';
let stateDir = '';

const nodeConfig = `apiVersion: nodeup.dev/v1alpha1
kind: NodeConfig
metadata: {cluster: vmnet, instanceGroup: vmnet}
spec:
  role: worker
  apiServerEndpoint: https://192.168.77.11:6443
  units:
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

describe('nodeup launch --network (a private link between two guests)', () => {
  let res: CliResult | undefined;

  beforeAll(async () => {
    requireFixtures();
    workDir = await tempDir('nodeup-vm-net-');
    stateDir = path.join(workDir, 'instances');
    await fsp.writeFile(path.join(workDir, 'node.yaml'), nodeConfig);
    await fsp.mkdir(path.join(workDir, 'store', 'igconfig', 'vmnet'), { recursive: true });
    await fsp.writeFile(path.join(workDir, 'store', 'igconfig', 'vmnet', 'node.yaml'), nodeConfig);
  });

  afterAll(async () => {
    if (!stateDir || keepVms) return;
    await nodeup(['launch', '--state-dir', stateDir, '--delete', names.join(',')], { echo: false });
    await fsp.rm(workDir, { recursive: true, force: true });
  });

  it('boots two guests that reach each other at 192.168.77.11 and .12', async () => {
    res = await nodeup([
      'launch', '--node-config', path.join(workDir, 'node.yaml'),
      '--name', names[0]!, '--name', names[1]!,
      '--network', 'lab',
      '--state-store', `file://${path.join(workDir, 'store')}`,
      '--binary', binary, '--base-image', baseImage, '--state-dir', stateDir,
      '--only', 'node-files', '--timeout', process.env.NODEUP_VM_TIMEOUT ?? '2400', '--log-format', 'json',
    ]);
    try {
      expect(res.code, 'nodeup launch exit code').toBe(0);
      for (const n of names) {
        expect(await fsp.readFile(path.join(stateDir, n, 'user-data'), 'utf8')).toMatch(/stateStore: http:\/\/10\.0\.2\.2:\d+\/store\n/);
        const receipt = JSON.parse(await fsp.readFile(path.join(stateDir, n, 'receipt.json'), 'utf8')) as { result: string; tasks: { key: string; status: string }[] };
        expect(receipt.result, `${n} receipt`).toBe('converged');
        expect(receipt.tasks.find((t) => t.key === 'unit:nodeup-peer-check.service')?.status).toBe('changed');
      }
      const list = await nodeup(['launch', '--state-dir', stateDir, '--list'], { echo: false });
      expect(list.stdout).toContain('(private 192.168.77.11/24)');
      expect(list.stdout).toContain('(private 192.168.77.12/24)');
    } catch (err: unknown) {
      for (const n of names) process.stdout.write((await diagnose(stateDir, n, res)) + '\n');
      throw err;
    }
  });
});
