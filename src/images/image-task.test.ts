// The image task on a temp root with scripted ctr/crictl answers (the real containerd is exercised
// in tests/integration/images.test.ts).
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentError, NotReadyError } from '../engine/errors.ts';
import { createTestHost, type TestHost } from '../../tests/support/test-host.ts';
import * as yaml from 'js-yaml';
import { modelFromCase } from '../../tests/support/containerd-model.ts';
import { ImageTask, parseCtrImages } from './image-task.ts';
import { imagesComponent, prePullList, roleImages } from './component.ts';
import { containerdComponent } from '../containerd/component.ts';
import { buildGraph } from '../app/run.ts';

const NAME = 'registry.k8s.io/pause:3.10.1';
const DIGEST = 'sha256:' + 'ab'.repeat(32);
const header = 'REF TYPE DIGEST SIZE PLATFORMS LABELS\n';
const listed = `${header}${NAME} application/vnd.oci.image.index.v1+json ${DIGEST} 320.0 KiB linux/amd64 io.cri-containerd.image=managed\n`;

let host: TestHost;
let dir: string;
let archive: { url: string; sha256: string };
beforeEach(async () => {
  host = await createTestHost({ fixture: 'debian-12' });
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-img-'));
  const f = path.join(dir, 'pause.tar');
  await fsp.writeFile(f, 'pretend this is a docker archive');
  archive = { url: pathToFileURL(f).href, sha256: createHash('sha256').update(await fsp.readFile(f)).digest('hex') };
});
afterEach(async () => {
  await host.dispose();
  await fsp.rm(dir, { recursive: true, force: true });
});

function task(over: { sha256?: string; live?: boolean } = {}): ImageTask {
  return new ImageTask({
    name: NAME,
    source: { kind: 'archive', asset: { name: 'image pause', urls: [archive.url], sha256: over.sha256 ?? archive.sha256 } },
    ctr: '/usr/local/bin/ctr',
    crictl: '/usr/local/bin/crictl',
    address: '/run/containerd/containerd.sock',
    live: over.live ?? true,
  });
}

const ls = /^\/usr\/local\/bin\/ctr --address \/run\/containerd\/containerd\.sock --namespace k8s\.io images ls$/;

describe('image task', () => {
  it('imports a verified archive once, records it, and is converged after', async () => {
    host.script_([
      { match: ls, stdout: header, times: 2 },
      { match: /^od -An -tx1 -N4 /, stdout: ' 70 72 65 74\n' },
      { match: /^\/usr\/local\/bin\/ctr --address \S+ --namespace k8s\.io images import \S+\/var\/cache\/nodeup\/sha256\/[0-9a-f]{64}$/ },
      { match: ls, stdout: listed },
    ]);
    const t = task();
    const before = t.diff(await t.observe(host));
    expect(before).toEqual([{ field: 'image', to: expect.stringMatching(/^import archive sha256:[0-9a-f]{12} \(download image pause\)$/) }]);
    await t.apply(host);
    expect(host.commandLog().filter((c) => c.includes(' import '))).toHaveLength(1);
    expect(t.diff(await t.observe(host))).toEqual([]);
  });

  it('a wrong hash is refused before anything reaches containerd', async () => {
    host.script_([{ match: ls, stdout: header }]);
    const t = task({ sha256: 'f'.repeat(64) });
    await expect(t.apply(host)).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    expect(host.commandLog().filter((c) => c.includes('import'))).toEqual([]);
    expect(await host.cachedAsset('f'.repeat(64))).toBeUndefined();
  });

  it('a zstd archive goes through zstd -dc into ctr import -', async () => {
    host.script_([
      { match: ls, stdout: header, times: 1 },
      { match: /^od /, stdout: ' 28 b5 2f fd\n' },
      { match: /^bash -o pipefail -c zstd -dcq -- "\$1" \| "\$2" "\$\{@:3\}" - nodeup-import \S+ \/usr\/local\/bin\/ctr --address \S+ --namespace k8s\.io images import$/ },
      { match: ls, stdout: listed },
    ]);
    await task().apply(host);
    expect(host.commandLog().some((c) => c.startsWith('bash -o pipefail'))).toBe(true);
  });

  it('an archive that names another image fails and says which names it carried', async () => {
    host.script_([
      { match: ls, stdout: header, times: 1 },
      { match: /^od /, stdout: ' 70 72 65 74\n' },
      { match: / images import / },
      { match: ls, stdout: `${header}docker.io/library/other:1 x ${DIGEST} 1 KiB linux/amd64 -\n` },
    ]);
    const err = await task().apply(host).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).message).toContain('it imported docker.io/library/other:1');
  });

  it('a re-tagged image (digest differs from the record) is imported again; so is a new archive', async () => {
    await fsp.mkdir(path.join(host.root, 'var/lib/nodeup/images'), { recursive: true });
    host.script_([{ match: ls, stdout: header, times: 1 }, { match: /^od /, stdout: ' 70 72 65 74\n' }, { match: / images import / }, { match: ls, stdout: listed, times: 3 }]);
    await task().apply(host);
    expect(task().diff(await task().observe(host))).toEqual([]);
    // another archive for the same name (a new hash in the config)
    expect(task({ sha256: 'e'.repeat(64) }).diff(await task().observe(host))[0]).toMatchObject({ field: 'image', from: `sha256:${'ab'.repeat(6)}` });
    host.script_([{ match: ls, stdout: listed.replace(DIGEST, 'sha256:' + 'cd'.repeat(32)) }]);
    expect(task().diff(await task().observe(host))[0]?.field).toBe('image');
  });

  it('containerd not answering is NotReady (the executor retries)', async () => {
    host.script_([{ match: ls, exitCode: 1, stderr: 'ctr: failed to dial "/run/containerd/containerd.sock": connection refused' }]);
    await expect(task().observe(host)).rejects.toBeInstanceOf(NotReadyError);
  });

  it('offline root: only caches the verified archive for the first boot', async () => {
    const t = task({ live: false });
    expect(t.diff(await t.observe(host))[0]?.to).toContain('imported at first boot');
    await t.apply(host);
    expect(t.diff(await t.observe(host))).toEqual([]);
    expect(host.commandLog()).toEqual([]);
    await expect(fsp.stat(path.join(host.root, 'var/cache/nodeup/sha256', archive.sha256))).resolves.toBeTruthy();
  });

  it('pull source: pulls through the CRI when absent', async () => {
    host.script_([
      { match: ls, stdout: header, times: 1 },
      { match: '/usr/local/bin/crictl --runtime-endpoint unix:///run/containerd/containerd.sock --image-endpoint unix:///run/containerd/containerd.sock pull registry.k8s.io/pause:3.10.1' },
      { match: ls, stdout: listed },
    ]);
    const t = new ImageTask({ name: NAME, source: { kind: 'pull' }, ctr: '/usr/local/bin/ctr', crictl: '/usr/local/bin/crictl', address: '/run/containerd/containerd.sock', live: true });
    expect(t.diff(await t.observe(host))).toEqual([{ field: 'image', to: 'pull through the CRI' }]);
    await t.apply(host);
    expect(t.diff(await t.observe(host))).toEqual([]);
  });

  it('parses ctr images ls', () => {
    expect([...parseCtrImages(listed)]).toEqual([[NAME, DIGEST]]);
    expect(parseCtrImages(header).size).toBe(0);
  });
});

function model(spec: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const config = { apiVersion: 'nodeup.dev/v1alpha1', kind: 'NodeConfig', metadata: { cluster: 'c', instanceGroup: 'g' }, spec: { apiServerEndpoint: 'https://10.0.0.10:6443', ...spec } };
  return modelFromCase(yaml.dump({ config, ...extra }), 'test');
}

describe('pre-pull lists', () => {
  it('a baked control plane pulls everything it runs; a worker only pause and kube-proxy', () => {
    const cp = model({ role: 'control-plane', kubernetesVersion: 'v1.35.4' }, { bake: true });
    expect(roleImages(cp)).toEqual([
      expect.stringMatching(/^registry\.k8s\.io\/pause:/),
      'registry.k8s.io/kube-proxy:v1.35.4',
      'registry.k8s.io/kube-apiserver:v1.35.4',
      'registry.k8s.io/kube-controller-manager:v1.35.4',
      'registry.k8s.io/kube-scheduler:v1.35.4',
      expect.stringMatching(/^registry\.k8s\.io\/etcd:3\.\d+\.\d+-0$/),
      expect.stringMatching(/^registry\.k8s\.io\/coredns\/coredns:v/),
    ]);
    const w = model({ role: 'worker', kubeProxy: { enabled: false } }, { bake: true });
    expect(roleImages(w)).toEqual([expect.stringMatching(/pause/)]);
  });
  it('a bake pulls what the manifests name: the registries, etcd mode and CoreDNS settings count', () => {
    const cp = model(
      {
        role: 'control-plane',
        kubernetesVersion: 'v1.35.4',
        kubeProxy: { enabled: false },
        controlPlane: { imageRegistry: 'mirror.example.com:5000/k8s' },
        etcd: { version: '3.6.16', image: 'mirror.example.com:5000/k8s/etcd' },
        addons: { coredns: { enabled: false } },
      },
      { bake: true },
    );
    expect(roleImages(cp).slice(1)).toEqual([
      'mirror.example.com:5000/k8s/kube-apiserver:v1.35.4',
      'mirror.example.com:5000/k8s/kube-controller-manager:v1.35.4',
      'mirror.example.com:5000/k8s/kube-scheduler:v1.35.4',
      'mirror.example.com:5000/k8s/etcd:3.6.16-0',
    ]);
    const systemdEtcd = model({ role: 'control-plane', kubeProxy: { enabled: false }, etcd: { mode: 'systemd' }, addons: { coredns: { imageRegistry: 'r.example.com', version: 'v1.12.9' } } }, { bake: true });
    expect(roleImages(systemdEtcd).filter((i) => /etcd|coredns/.test(i))).toEqual(['r.example.com/coredns/coredns:v1.12.9']);
  });
  it('role images only in a bake; archived images are never pulled', () => {
    expect(prePullList(model({ role: 'worker', images: { prePull: ['docker.io/library/busybox:1.36'] } }))).toEqual(['docker.io/library/busybox:1.36']);
    const baked = model({ role: 'worker', containerd: { sandboxImage: 'registry.k8s.io/pause:3.10.1' }, images: { archives: [{ name: 'registry.k8s.io/pause:3.10.1', urls: ['https://x/p.tar'], sha256: 'a'.repeat(64) }] } }, { bake: true });
    expect(prePullList(baked)).toEqual([expect.stringMatching(/kube-proxy/)]);
  });
  it('duplicate archives and bad references are config errors', async () => {
    const { ImagesSpec } = await import('./schema.ts');
    const a = { name: 'registry.k8s.io/pause:3.10.1', urls: ['https://x/p.tar'], sha256: 'a'.repeat(64) };
    expect(ImagesSpec.safeParse({ archives: [a, a] }).error?.issues[0]?.path).toEqual(['archives', 1, 'name']);
    expect(ImagesSpec.safeParse({ prePull: ['no-tag'] }).success).toBe(false);
  });
});

describe('images component', () => {
  const archive = { name: 'registry.k8s.io/pause:3.10.1', urls: ['https://x/p.tar'], sha256: 'a'.repeat(64) };
  const overrides = Object.fromEntries(['containerd', 'runc', 'crictl', 'cni-plugins'].map((n) => [n, { urls: ['https://x/a'], sha256: 'b'.repeat(64) }]));
  it('orders images after containerd and the mirrors\' hosts.toml, by key', () => {
    const m = model(
      { role: 'worker', assets: { overrides }, containerd: { registryMirrors: { 'registry.k8s.io': ['https://m'] } }, images: { archives: [archive], prePull: ['docker.io/library/busybox:1.36'] } },
      { live: true },
    );
    const g = buildGraph(m, [containerdComponent, imagesComponent]).finish();
    for (const k of ['image:registry.k8s.io/pause:3.10.1', 'image:docker.io/library/busybox:1.36'] as const) {
      expect(g.deps.get(k)).toEqual(['file:/etc/containerd/certs.d/registry.k8s.io/hosts.toml', 'unit:containerd.service']);
    }
  });
  it('on an offline root only archives are planned (cached for the first boot), no pulls', () => {
    const m = model({ role: 'control-plane', images: { archives: [archive] } }, { live: false, bake: true });
    const g = buildGraph(m, [imagesComponent]).finish();
    expect([...g.tasks.keys()]).toEqual(['image:registry.k8s.io/pause:3.10.1']);
  });
  it('is disabled when there is nothing to load', () => {
    expect(imagesComponent.enabled(model({ role: 'worker' }))).toBe(false);
  });
});
