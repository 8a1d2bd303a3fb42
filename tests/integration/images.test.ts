// Image side-loading into a real containerd (Debian's 1.6 and a 2.x build), private root and socket:
// docker and OCI archives, plain and zstd, each verified by SHA-256 before import, imported into
// the k8s.io namespace, skipped on the next run; a wrong hash is refused and nothing is imported.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execute } from '../../src/engine/executor.ts';
import { Graph } from '../../src/engine/graph.ts';
import { NodeHost } from '../../src/engine/host/node-host.ts';
import { silentLogger } from '../../src/engine/log.ts';
import { containerdConfigInput } from '../../src/containerd/component.ts';
import { loadCase } from '../support/containerd-model.ts';
import { ImageTask } from '../../src/images/image-task.ts';
import { containerd2, debianContainerd, makeTinyImage, startContainerd, type ContainerdBinaries, type ContainerdInstance } from './containerd-harness.ts';

const execFileP = promisify(execFile);
const here = path.dirname(new URL(import.meta.url).pathname);
const sha = async (f: string): Promise<string> => createHash('sha256').update(await fsp.readFile(f)).digest('hex');

let work: string;
const archives: Record<string, { file: string; name: string }> = {};
let ociManifest = '';

beforeAll(async () => {
  work = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-images-'));
  const docker = await makeTinyImage(path.join(work, 'docker'), 'example.test/nodeup/docker-tiny:1.0', 'docker\n');
  const oci = await makeTinyImage(path.join(work, 'oci'), 'example.test/nodeup/oci-tiny:1.0', 'oci\n');
  ociManifest = oci.manifestDigest;
  await execFileP('zstd', ['-q', '-19', oci.ociArchive, '-o', `${oci.ociArchive}.zst`]).catch((err: unknown) => {
    throw new Error(`zstd is missing or failed (run scripts/fixtures/apt-deps.sh): ${String(err)}`);
  });
  // a second docker image, shipped zstd-compressed
  const dz = await makeTinyImage(path.join(work, 'docker-z'), 'example.test/nodeup/docker-tiny-z:1.0', 'docker zstd\n');
  await execFileP('zstd', ['-q', dz.dockerArchive, '-o', `${dz.dockerArchive}.zst`]);
  archives.docker = { file: docker.dockerArchive, name: 'example.test/nodeup/docker-tiny:1.0' };
  archives['docker-zstd'] = { file: `${dz.dockerArchive}.zst`, name: 'example.test/nodeup/docker-tiny-z:1.0' };
  archives.oci = { file: oci.ociArchive, name: 'example.test/nodeup/oci-tiny:1.0' };
  archives['oci-zstd'] = { file: `${oci.ociArchive}.zst`, name: 'example.test/nodeup/oci-tiny:1.0' };
});
afterAll(async () => {
  await fsp.rm(work, { recursive: true, force: true });
});

async function imageTask(inst: ContainerdInstance, key: string, sha256?: string): Promise<ImageTask> {
  const a = archives[key] as { file: string; name: string };
  return new ImageTask({
    name: a.name,
    source: { kind: 'archive', asset: { name: `image ${key}`, urls: [pathToFileURL(a.file).href], sha256: sha256 ?? (await sha(a.file)) } },
    ctr: inst.bins.ctr,
    crictl: '/nonexistent/crictl',
    address: inst.socket,
    live: true,
  });
}

const matrix: readonly [string, () => Promise<ContainerdBinaries>, string][] = [
  ['Debian containerd 1.6', debianContainerd, 'worker-1.33'],
  ['containerd 2.x (Go module proxy build)', containerd2, 'worker-1.35'],
];

describe.each(matrix)('%s', (_label, binaries, caseName) => {
  it('imports docker and OCI archives (plain and zstd) into k8s.io, then skips them; a wrong hash is refused', async () => {
    const bins = await binaries();
    const model = await loadCase(path.join(here, '../../src/containerd/testdata', caseName, 'model.yaml'));
    const inst = await startContainerd({ bins, input: containerdConfigInput(model) });
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-images-root-'));
    try {
      const host = new NodeHost({ root, log: silentLogger, retryBaseMs: 1, downloadAttempts: 1 });
      const build = async (): Promise<Graph> => {
        const g = new Graph();
        g.setOwner('images');
        // (oci-zstd holds the same image as oci: one archive per image; it is tested alone below)
        for (const k of ['docker', 'docker-zstd', 'oci']) g.add(await imageTask(inst, k));
        return g;
      };
      const first = await execute((await build()).finish(), host, { mode: 'apply', log: silentLogger });
      expect(first.results.map((r) => [r.key, r.status, r.error?.message])).toEqual([
        ['image:example.test/nodeup/docker-tiny-z:1.0', 'changed', undefined],
        ['image:example.test/nodeup/docker-tiny:1.0', 'changed', undefined],
        ['image:example.test/nodeup/oci-tiny:1.0', 'changed', undefined],
      ]);
      const ls = await inst.ctr(['--namespace', 'k8s.io', 'images', 'ls']);
      for (const n of ['docker-tiny:1.0', 'docker-tiny-z:1.0', 'oci-tiny:1.0']) expect(ls).toContain(`example.test/nodeup/${n}`);
      expect(ls).toContain(ociManifest);
      // nothing in the default namespace: kubelet only sees k8s.io
      expect(await inst.ctr(['images', 'ls', '-q'])).toBe('');

      // converged: a second run imports nothing
      const second = await execute((await build()).finish(), host, { mode: 'apply', log: silentLogger });
      expect(second.changed).toBe(0);
      expect(second.ok).toBe(true);

      // the zstd OCI archive (same image) after removing the image: imported again from zstd
      await inst.ctr(['--namespace', 'k8s.io', 'images', 'rm', 'example.test/nodeup/oci-tiny:1.0']);
      const z = await imageTask(inst, 'oci-zstd');
      const zd = z.diff(await z.observe(host));
      expect(zd[0]?.field).toBe('image');
      await z.apply(host);
      expect(z.diff(await z.observe(host))).toEqual([]);
      expect(await inst.ctr(['--namespace', 'k8s.io', 'images', 'ls'])).toContain(ociManifest);

      // a wrong hash: refused before containerd sees anything
      await inst.ctr(['--namespace', 'k8s.io', 'images', 'rm', 'example.test/nodeup/docker-tiny:1.0']);
      const bad = await imageTask(inst, 'docker', 'f'.repeat(64));
      const g = new Graph();
      g.add(bad);
      const r = await execute(g.finish(), host, { mode: 'apply', log: silentLogger });
      expect(r.results[0]?.status).toBe('failed');
      expect(r.results[0]?.error?.code).toBe('CHECKSUM_MISMATCH');
      expect(await inst.ctr(['--namespace', 'k8s.io', 'images', 'ls', '-q'])).not.toContain('example.test/nodeup/docker-tiny:1.0');
    } finally {
      await inst.stop();
      await fsp.rm(root, { recursive: true, force: true });
    }
  });
});
