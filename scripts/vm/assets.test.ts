// scripts/vm/assets.sh against fake fixtures (tiny scripts standing in for the Go builds): every
// archive lands where src/model/assets/versions.ts's mirrorUrl looks for it, with the upstream layout,
// reproducibly, and SHA256SUMS / assets.env carry the real hashes of the files written.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as tar from 'tar';
import { describe, expect, it } from 'vitest';
import { mirrorUrl, type AssetName } from '../../src/model/assets/versions.ts';
import { cniPlugins as nodeupCniPlugins } from '../../src/containerd/component.ts';

const run = promisify(execFile);
/** The plugins nodeup installs: a release-style archive must hold every one. */
const cniPlugins: string[] = [...nodeupCniPlugins].sort();
const script = path.join(import.meta.dirname, 'assets.sh');

const fixtures: Record<string, [string, string[]]> = {
  kubernetes: ['v1.35.4', ['kubelet', 'kubectl', 'kube-apiserver']],
  containerd2: ['v2.2.9', ['containerd', 'ctr', 'containerd-shim-runc-v2']],
  runc: ['v1.3.6', ['runc']],
  cni: ['v1.9.1', cniPlugins],
  crictl: ['v1.34.0', ['crictl']],
  etcd36: ['v3.6.16', ['etcd', 'etcdctl', 'etcdutl']],
  minio: ['v0.0.0-20260212201848-7aac2a2c5b7c', ['minio']],
};

async function fakeCache(): Promise<string> {
  const cache = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-assets-'));
  for (const [name, [version, bins]] of Object.entries(fixtures)) {
    const dir = path.join(cache, 'fixtures', `${name}-${version}`);
    await fsp.mkdir(path.join(dir, 'bin'), { recursive: true });
    for (const b of bins) await fsp.writeFile(path.join(dir, 'bin', b), `#!/bin/sh\necho ${b}\n`, { mode: 0o755 });
    await fsp.writeFile(path.join(dir, '.ok'), '');
  }
  return cache;
}

async function pack(cache: string): Promise<string> {
  const { stdout } = await run('bash', [script], { env: { ...process.env, NODEUP_CACHE: cache }, timeout: 60_000 });
  return stdout.trim();
}

const sha = async (f: string): Promise<string> => createHash('sha256').update(await fsp.readFile(f)).digest('hex');

async function entries(file: string): Promise<string[]> {
  const out: string[] = [];
  await tar.t({ file, onReadEntry: (e) => void out.push(e.path) });
  return out.sort();
}

describe('scripts/vm/assets.sh', () => {
  it('lays archives out where mirrorUrl looks, in the upstream layouts, with real hashes', async () => {
    const cache = await fakeCache();
    const mirror = await pack(cache);
    const want: [AssetName, string][] = [
      ['kubelet', '1.35.4'], ['kubectl', '1.35.4'], ['containerd', '2.2.9'], ['runc', '1.3.6'],
      ['cni-plugins', '1.9.1'], ['crictl', '1.34.0'], ['etcd', '3.6.16'],
    ];
    const sums = new Map((await fsp.readFile(path.join(mirror, 'SHA256SUMS'), 'utf8')).trim().split('\n').map((l) => {
      const [h, f] = l.split(/\s+/);
      return [f!, h!] as const;
    }));
    for (const [name, version] of want) {
      const rel = mirrorUrl('MIRROR', name, version, 'amd64').replace(/^MIRROR\//, '');
      const file = path.join(mirror, rel);
      expect(sums.get(rel), rel).toBe(await sha(file));
    }
    expect(await entries(path.join(mirror, 'containerd/2.2.9/linux-amd64/containerd-2.2.9-linux-amd64.tar.gz'))).toEqual(['bin/', 'bin/containerd', 'bin/containerd-shim-runc-v2', 'bin/ctr']);
    expect(await entries(path.join(mirror, 'etcd/3.6.16/linux-amd64/etcd-v3.6.16-linux-amd64.tar.gz'))).toEqual(['etcd-v3.6.16-linux-amd64/', 'etcd-v3.6.16-linux-amd64/etcd', 'etcd-v3.6.16-linux-amd64/etcdctl', 'etcd-v3.6.16-linux-amd64/etcdutl']);
    expect(await entries(path.join(mirror, 'cni-plugins/1.9.1/linux-amd64/cni-plugins-linux-amd64-v1.9.1.tgz'))).toEqual(cniPlugins.map((p) => `./${p}`));
    expect(await entries(path.join(mirror, 'crictl/1.34.0/linux-amd64/crictl-v1.34.0-linux-amd64.tar.gz'))).toEqual(['crictl']);
    const env = await fsp.readFile(path.join(mirror, 'assets.env'), 'utf8');
    expect(env).toContain(`ETCD_SHA256=${sums.get('etcd/3.6.16/linux-amd64/etcd-v3.6.16-linux-amd64.tar.gz')}`);
    expect(env).toContain('CONTAINERD_VERSION=2.2.9');
    expect(env, 'no minor before without its fixture').not.toContain('KUBELET_PREV');

    // Reproducible: packing again from scratch gives the same bytes.
    await fsp.rm(path.join(cache, 'vm'), { recursive: true });
    const again = await pack(cache);
    expect(await fsp.readFile(path.join(again, 'SHA256SUMS'), 'utf8')).toBe(await fsp.readFile(path.join(mirror, 'SHA256SUMS'), 'utf8'));
    await fsp.rm(cache, { recursive: true, force: true });
  });

  it("adds the minor before's kubelet and kubectl when fixture kubernetes134 is built (the upgrade scenario's start)", async () => {
    const cache = await fakeCache();
    const dir = path.join(cache, 'fixtures', 'kubernetes134-v1.34.4');
    await fsp.mkdir(path.join(dir, 'bin'), { recursive: true });
    for (const b of ['kubelet', 'kubectl']) await fsp.writeFile(path.join(dir, 'bin', b), `#!/bin/sh\necho ${b} 1.34\n`, { mode: 0o755 });
    await fsp.writeFile(path.join(dir, '.ok'), '');
    const mirror = await pack(cache);
    const env = await fsp.readFile(path.join(mirror, 'assets.env'), 'utf8');
    for (const b of ['kubelet', 'kubectl'] as const) {
      const rel = mirrorUrl('MIRROR', b, '1.34.4', 'amd64').replace(/^MIRROR\//, '');
      expect(await fsp.readFile(path.join(mirror, rel), 'utf8')).toBe(`#!/bin/sh\necho ${b} 1.34\n`);
      expect(env).toContain(`${b.toUpperCase()}_PREV_VERSION=1.34.4\n${b.toUpperCase()}_PREV_SHA256=${await sha(path.join(mirror, rel))}\n`);
    }
    expect(env).toContain('KUBELET_VERSION=1.35.4');
    await fsp.rm(cache, { recursive: true, force: true });
  });
});
