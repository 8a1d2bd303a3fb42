// bake on a temp root seeded with a build machine's leftovers: the run in bake mode, the binary and
// nodeup.service installed, the image sealed, the manifest written; a failed run seals nothing.
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Component } from '../model/component.ts';
import type { BootConfig } from '../model/config.ts';
import { exampleNodeConfig, publishNodeConfig } from '../app/example.ts';
import { createTestHost, testFacts, type TestHost } from '../../tests/support/test-host.ts';
import { silentLogger } from '../engine/log.ts';
import { nodeFilesComponent } from '../app/node-files.ts';
import { FileStore } from '../statestore/file-store.ts';
import { bakeNode } from './bake.ts';
import { bakeManifestPath, type BakeManifest } from './bake-manifest.ts';
import { sealSteps } from './seal.ts';

let host: TestHost;
let storeDir: string;
let boot: BootConfig;
let self: string;
const cached = createHash('sha256').update('cached asset').digest('hex');

async function put(p: string, content: string, mode = 0o644): Promise<void> {
  const full = path.join(host.root, p);
  await fsp.mkdir(path.dirname(full), { recursive: true });
  await fsp.writeFile(full, content, { mode });
}
const exists = (p: string) => fsp.lstat(path.join(host.root, p)).then(() => true, () => false);
const read = (p: string) => fsp.readFile(path.join(host.root, p), 'utf8');

beforeEach(async () => {
  host = await createTestHost({ fixture: 'debian-12', unmatched: 'succeed' });
  storeDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-bake-store-'));
  const raw = exampleNodeConfig('nodes', 'worker').replace(
    '  files:\n',
    '  units:\n    - name: hook.service\n      content: "[Service]\\nExecStart=/bin/true\\n"\n  files:\n    - path: /etc/nodeup/extra.conf\n      content: "x=1\\n"\n',
  );
  boot = await publishNodeConfig(new FileStore(pathToFileURL(storeDir).href), raw, 'test');
  self = path.join(storeDir, 'nodeup-binary');
  await fsp.writeFile(self, '#!/bin/sh\necho nodeup\n');
  // what a build VM leaves behind
  await put('/etc/machine-id', '0123456789abcdef0123456789abcdef\n', 0o444);
  await put('/etc/hostname', 'packer-build-vm\n');
  await fsp.mkdir(path.join(host.root, 'var/lib/dbus'), { recursive: true });
  await fsp.symlink('/etc/machine-id', path.join(host.root, 'var/lib/dbus/machine-id'));
  await put('/etc/ssh/ssh_host_ed25519_key', 'PRIVATE', 0o600);
  await put('/etc/ssh/ssh_host_ed25519_key.pub', 'ssh-ed25519 AAAA');
  await put('/etc/ssh/sshd_config', 'PermitRootLogin no\n');
  await put('/var/lib/cloud/instances/i-0abc/user-data.txt', '#!/bin/bash\n');
  await put('/var/lib/cloud/data/instance-id', 'i-0abc\n');
  await put('/var/lib/cloud/seed/nocloud/meta-data', 'instance-id: seed\n');
  await put('/var/log/cloud-init.log', 'boot\n');
  await put('/var/log/syslog', 'lots of lines\n', 0o640);
  await put('/var/log/syslog.1', 'older\n');
  await put('/var/log/apt/history.log.2.gz', 'gz');
  await put('/var/log/apt/history.log', 'apt-get install\n');
  await put('/var/log/journal/0123/system.journal', 'journal');
  await put('/root/.bash_history', 'ls\n');
  await put('/home/admin/.bash_history', 'sudo -i\n');
  await put('/var/lib/systemd/random-seed', 'seed');
  await put(`/var/cache/nodeup/sha256/${cached}`, 'cached asset');
  // The bytes of a download that stopped: kept on a node to resume, never carried by an image.
  await put(`/var/cache/nodeup/sha256/${'e'.repeat(64)}.partial`, 'half an asset');
});

afterEach(async () => {
  await host.dispose();
  await fsp.rm(storeDir, { recursive: true, force: true });
});

const only: readonly Component[] = [nodeFilesComponent];

describe('bakeNode', () => {
  it('converges in bake mode, installs binary and unit, seals, writes the manifest', async () => {
    const out = await bakeNode({ host, log: silentLogger, bootConfig: boot, facts: testFacts(), components: only, selfBinary: self });
    expect(out.error).toBeUndefined();
    expect(out.run.model?.bake).toBe(true);
    expect(await read('/etc/nodeup/extra.conf')).toBe('x=1\n');
    // the user's unit is enabled in the image but nothing is started on an offline root
    expect(await exists('/etc/systemd/system/multi-user.target.wants/hook.service')).toBe(true);
    expect(host.commandLog().filter((c) => c.startsWith('systemctl'))).toEqual([]);
    // binary and nodeup.service (enabled by user-data's install-unit at first boot, not here)
    expect(await read('/usr/local/bin/nodeup')).toBe('#!/bin/sh\necho nodeup\n');
    expect((await fsp.stat(path.join(host.root, 'usr/local/bin/nodeup'))).mode & 0o777).toBe(0o755);
    expect(await read('/etc/systemd/system/nodeup.service')).toContain('ExecStart=/usr/local/bin/nodeup apply --config /etc/nodeup/boot.yaml');
    expect(await exists('/etc/systemd/system/multi-user.target.wants/nodeup.service')).toBe(false);

    // sealed
    expect(await read('/etc/machine-id')).toBe('');
    expect((await fsp.stat(path.join(host.root, 'etc/machine-id'))).mode & 0o777).toBe(0o444);
    expect(await fsp.readlink(path.join(host.root, 'var/lib/dbus/machine-id'))).toBe('/etc/machine-id');
    for (const gone of [
      '/etc/ssh/ssh_host_ed25519_key',
      '/etc/ssh/ssh_host_ed25519_key.pub',
      '/var/lib/cloud/instances',
      '/var/lib/cloud/data',
      '/var/log/cloud-init.log',
      '/var/log/syslog.1',
      '/var/log/apt/history.log.2.gz',
      '/var/log/journal/0123',
      '/root/.bash_history',
      '/home/admin/.bash_history',
      '/var/lib/systemd/random-seed',
      '/var/lib/nodeup/status.json',
      `/var/cache/nodeup/sha256/${'e'.repeat(64)}.partial`,
    ]) {
      expect(await exists(gone), gone).toBe(false);
    }
    expect(await read('/etc/ssh/sshd_config')).toBe('PermitRootLogin no\n');
    expect(await read('/var/lib/cloud/seed/nocloud/meta-data')).toBe('instance-id: seed\n');
    expect(await read('/var/log/syslog')).toBe('');
    expect((await fsp.stat(path.join(host.root, 'var/log/syslog'))).mode & 0o777).toBe(0o640);
    expect(await read('/var/log/apt/history.log')).toBe('');

    const manifest = JSON.parse(await read(bakeManifestPath)) as BakeManifest;
    expect(manifest).toMatchObject({
      kind: 'BakeManifest',
      cluster: boot.clusterName,
      instanceGroup: 'nodes',
      configHash: boot.nodeConfigHash,
      distro: 'debian-12',
      arch: 'amd64',
      role: 'worker',
      nodeupSha256: createHash('sha256').update('#!/bin/sh\necho nodeup\n').digest('hex'),
      assets: [{ name: 'unknown', sha256: cached, bytes: 12 }],
      units: ['hook.service'],
    });
    expect(manifest.sealed.removed).toContain('/etc/ssh/ssh_host_ed25519_key');
    expect(manifest.sealed.truncated).toEqual(['/etc/hostname', '/etc/machine-id', '/var/log/apt/history.log', '/var/log/syslog']);
    expect(await read('/etc/hostname')).toBe('localhost\n');
    expect(out.manifest).toEqual(manifest);
  });

  it('keeps the image unsealed and writes no manifest when the run fails', async () => {
    const broken: Component = {
      name: 'broken',
      enabled: () => true,
      build(_m, g) {
        g.add({
          key: 'file:/broken',
          after: [],
          observe: async () => undefined,
          diff: () => [{ field: 'content', to: 'x' }],
          apply: async () => {
            throw new Error('disk on fire');
          },
        });
      },
    };
    const out = await bakeNode({ host, log: silentLogger, bootConfig: boot, facts: testFacts(), components: [...only, broken], selfBinary: self });
    expect(out.error).toBeDefined();
    expect(await read('/etc/machine-id')).not.toBe('');
    expect(await exists('/etc/ssh/ssh_host_ed25519_key')).toBe(true);
    expect(await exists(bakeManifestPath)).toBe(false);
  });

  it('--keep-boot-config and --no-seal are honoured; sealing is a pure list', async () => {
    await put('/etc/nodeup/boot.yaml', 'kept\n');
    const out = await bakeNode({ host, log: silentLogger, bootConfig: boot, facts: testFacts(), components: only, keepBootConfig: true, seal: false });
    expect(out.error).toBeUndefined();
    expect(await read('/etc/nodeup/boot.yaml')).toBe('kept\n');
    expect(await exists('/etc/ssh/ssh_host_ed25519_key')).toBe(true);
    expect(out.manifest?.nodeupSha256).toBeNull(); // no binary given and none in the root
    expect(sealSteps({ bootConfigPath: '/etc/nodeup/boot.yaml' }).map((s) => s.action + ' ' + ('path' in s ? s.path : 'dir' in s ? s.dir : 'argv' in s ? s.argv.join(' ') : s.name))).toMatchInlineSnapshot(`
      [
        "run-live journalctl --relinquish-var",
        "run-live systemctl stop systemd-random-seed.service systemd-update-utmp.service",
        "truncate /etc/machine-id",
        "reset /etc/hostname",
        "remove /var/lib/dbus/machine-id",
        "remove-children /var/lib/cloud",
        "remove-children /var/log",
        "remove-children /etc/ssh",
        "remove-children /var/log/journal",
        "truncate-tree /var/log",
        "remove-in-homes .bash_history",
        "remove-in-homes .lesshst",
        "remove /var/lib/systemd/random-seed",
        "remove /etc/nodeup/boot.yaml",
      ]
    `);
  });
});
