// Registry mirrors really work: a real OCI registry (Debian's docker-registry) on 127.0.0.1 holds a
// small image; a real containerd (Debian's 1.6 and a 2.x build), configured by nodeup's renderers
// (config.toml + certs.d/<registry>/hosts.toml), pulls it under its upstream name through the CRI
// (crictl, as kubelet would), via a registry-specific mirror and via the "*" default mirror. A
// registry with no mirror is not reachable (the control: the mirror is what made the pull work).
import { execFile } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeHost } from '../../src/engine/host/node-host.ts';
import { silentLogger } from '../../src/engine/log.ts';
import { containerdConfigInput, containerdFiles } from '../../src/containerd/component.ts';
import { modelFromCase } from '../support/containerd-model.ts';
import { ImageTask } from '../../src/images/image-task.ts';
import {
  containerd2,
  crictlBinary,
  debianContainerd,
  freePort,
  makeTinyImage,
  pushWithSkopeo,
  startContainerd,
  startRegistry,
  type ContainerdBinaries,
  type RegistryInstance,
} from './containerd-harness.ts';

const execFileP = promisify(execFile);

let work: string;
let registry: RegistryInstance;
let manifestDigest: string;
const upstream = 'registry.example.test/nodeup/tiny:1.0';

beforeAll(async () => {
  work = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-mirror-'));
  const img = await makeTinyImage(path.join(work, 'img'), upstream);
  registry = await startRegistry();
  await pushWithSkopeo(img.layoutDir, upstream, `${registry.hostPort}/nodeup/tiny:1.0`);
  // skopeo compresses the layer on push: the registry's manifest digest is what a pull must yield.
  const res = await fetch(`${registry.url}/v2/nodeup/tiny/manifests/1.0`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
  });
  expect(res.status).toBe(200);
  manifestDigest = res.headers.get('docker-content-digest') ?? '';
  expect(manifestDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
});
afterAll(async () => {
  await registry?.stop();
  await fsp.rm(work, { recursive: true, force: true });
});

function mirroredModel(mirrors: Record<string, string[]>, containerdVersion: string) {
  const config = {
    apiVersion: 'nodeup.dev/v1alpha1',
    kind: 'NodeConfig',
    metadata: { cluster: 'c', instanceGroup: 'nodes' },
    spec: { role: 'worker', apiServerEndpoint: 'https://10.0.0.10:6443', containerd: { version: containerdVersion, registryMirrors: mirrors } },
  };
  return modelFromCase(yaml.dump({ config }), 'registry-mirror');
}

const matrix: readonly [string, () => Promise<ContainerdBinaries>][] = [
  ['Debian containerd 1.6', debianContainerd],
  ['containerd 2.x (Go module proxy build)', containerd2],
];

describe.each(matrix)('%s', (_label, binaries) => {
  it('pulls through the mirrors nodeup configured, under the upstream name', async () => {
    const bins = await binaries();
    const crictl = crictlBinary();
    const closed = await freePort(); // nothing listens here: an upstream that cannot answer
    const model = mirroredModel({ 'registry.example.test': [registry.url], '*': [registry.url] }, bins.version);
    const files: Record<string, string> = {};
    for (const f of containerdFiles(model)) {
      const m = /^\/etc\/containerd\/(certs\.d\/.+)$/.exec(f.path);
      if (m?.[1]) files[m[1]] = f.content;
    }
    expect(Object.keys(files).sort()).toEqual(['certs.d/_default/hosts.toml', 'certs.d/registry.example.test/hosts.toml']);
    const inst = await startContainerd({ bins, input: containerdConfigInput(model), files });
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-mirror-root-'));
    try {
      const host = new NodeHost({ root, log: silentLogger });
      for (const name of [upstream, `127.0.0.1:${closed}/nodeup/tiny:1.0`]) {
        // the first through registry.example.test's own hosts.toml, the second through _default
        const t = new ImageTask({ name, source: { kind: 'pull' }, ctr: bins.ctr, crictl, address: inst.socket, live: true });
        expect(t.diff(await t.observe(host))).toEqual([{ field: 'image', to: 'pull through the CRI' }]);
        await t.apply(host);
        expect(t.diff(await t.observe(host))).toEqual([]);
      }
      const ls = await inst.ctr(['--namespace', 'k8s.io', 'images', 'ls']);
      const row = ls.split('\n').find((l) => l.startsWith(upstream + ' '));
      expect(row).toContain(manifestDigest);

      // Control: with the mirror files gone, a pull from the unreachable upstream fails.
      await fsp.rm(path.join(inst.certsDir, '_default'), { recursive: true });
      const other = `127.0.0.1:${closed}/nodeup/tiny:1.0`;
      const res = await execFileP(crictl, ['--runtime-endpoint', `unix://${inst.socket}`, '--image-endpoint', `unix://${inst.socket}`, '--timeout', '30s', 'pull', other]).then(
        () => 'pulled',
        (err: { stderr?: string }) => err.stderr ?? 'failed',
      );
      expect(res).not.toBe('pulled');
      expect(res).toMatch(/connection refused|connect/i);
    } finally {
      await inst.stop();
      await fsp.rm(root, { recursive: true, force: true });
    }
  });
});
