// Golden files for everything the containerd component renders, across the version matrix
// (containerd 1.7 / 2.x, control plane / worker, release / distro source), plus the pure helpers.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ContainerdSpec, splitDottedPath } from './schema.ts';
import { containerdFiles, containerdUnitContent } from './component.ts';
import { configSchemaFor, renderContainerdConfig } from './render-config.ts';
import { hostsDirName, renderHostsToml } from './render-hosts.ts';
import { loadCase } from '../../tests/support/containerd-model.ts';
import { setPath, writeToml } from './toml.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const cases = (await fsp.readdir(path.join(here, 'testdata'))).sort();

/** certs.d/docker.io/hosts.toml -> certs.d_docker.io_hosts.toml: one flat folder per case. */
const goldenName = (p: string): string => p.replace(/^\/etc\//, '').replaceAll('/', '_');

describe('containerd goldens', () => {
  it('has cases', () => expect(cases.length).toBeGreaterThanOrEqual(8));
  it.each(cases)('%s', async (name) => {
    const model = await loadCase(path.join(here, 'testdata', name, 'model.yaml'));
    const files = containerdFiles(model);
    const expected = new Set<string>();
    for (const f of files) {
      expected.add(goldenName(f.path));
      await expect(f.content).toMatchFileSnapshot(`testdata/${name}/expected/${goldenName(f.path)}`);
    }
    expected.add('containerd.service');
    await expect(containerdUnitContent(model)).toMatchFileSnapshot(`testdata/${name}/expected/containerd.service`);
    // No stale goldens: the folder holds exactly what is rendered.
    const onDisk = await fsp.readdir(path.join(here, 'testdata', name, 'expected')).catch(() => [] as string[]);
    if (onDisk.length > 0) expect(onDisk.sort()).toEqual([...expected].sort());
  });
});

describe('config schema by containerd version', () => {
  it.each([
    ['1.6.20', 2],
    ['1.7.28', 2],
    ['2.0.5', 3],
    ['2.1.4', 3],
    ['2.2.9', 3],
    ['v2.3.4', 3],
  ] as const)('%s -> version %d', (v, schema) => expect(configSchemaFor(v)).toBe(schema));

  const base = {
    root: '/r',
    state: '/s',
    address: '/s/c.sock',
    sandboxImage: 'registry.k8s.io/pause:3.10.1',
    logLevel: 'info',
    imports: ['/etc/containerd/conf.d/*.toml'],
    certsDir: '/etc/containerd/certs.d',
    cniBinDir: '/opt/cni/bin',
    cniConfDir: '/etc/cni/net.d',
    selinux: false,
    additions: {},
  };
  it('2.0 uses cni.bin_dir, 2.1 and later bin_dirs', () => {
    expect(renderContainerdConfig({ ...base, version: '2.0.5' })).toContain('bin_dir = "/opt/cni/bin"');
    expect(renderContainerdConfig({ ...base, version: '2.1.4' })).toContain('bin_dirs = ["/opt/cni/bin"]');
  });
  it('v2 pins the sandbox with sandbox_image, v3 with pinned_images.sandbox', () => {
    expect(renderContainerdConfig({ ...base, version: '1.7.28' })).toMatch(/\[plugins\."io\.containerd\.grpc\.v1\.cri"\]\n  sandbox_image = "registry\.k8s\.io\/pause:3\.10\.1"/);
    expect(renderContainerdConfig({ ...base, version: '2.1.4' })).toMatch(/\[plugins\."io\.containerd\.cri\.v1\.images"\.pinned_images\]\n  sandbox = "registry\.k8s\.io\/pause:3\.10\.1"/);
  });
  it('additions override rendered values and create tables', () => {
    const out = renderContainerdConfig({ ...base, version: '2.1.4', additions: { 'grpc.address': '/x.sock', 'plugins."io.containerd.nri.v1.nri".disable': false } });
    expect(out).toContain('[grpc]\n  address = "/x.sock"');
    expect(out).not.toContain('/s/c.sock');
    expect(out).toContain('[plugins."io.containerd.nri.v1.nri"]\n  disable = false');
  });
});

describe('toml writer', () => {
  it('splits dotted paths with quoted segments', () => {
    expect(splitDottedPath('plugins."io.containerd.cri.v1.runtime".cni.bin_dirs')).toEqual(['plugins', 'io.containerd.cri.v1.runtime', 'cni', 'bin_dirs']);
    expect(splitDottedPath('a..b')).toBeUndefined();
    expect(splitDottedPath('a."b')).toBeUndefined();
    expect(splitDottedPath('a.')).toBeUndefined();
  });
  it('quotes keys and escapes strings', () => {
    expect(writeToml({ 'a b': 'x"y\\z\n', t: { k: [1, 'two', true] } })).toBe('"a b" = "x\\"y\\\\z\\n"\n\n[t]\n  k = [1, "two", true]\n');
  });
  it('setPath does not change its input', () => {
    const doc = { a: { b: 1 } };
    const out = setPath(doc, 'a.c', 2);
    expect(doc).toEqual({ a: { b: 1 } });
    expect(out).toEqual({ a: { b: 1, c: 2 } });
  });
});

describe('hosts.toml', () => {
  it('"*" is containerd\'s _default and has no upstream server', () => {
    expect(hostsDirName('*')).toBe('_default');
    expect(renderHostsToml('*', ['https://m'])).not.toContain('server =');
  });
  it('docker.io goes upstream to registry-1.docker.io, mirrors in the given order', () => {
    const t = renderHostsToml('docker.io', ['https://b/', 'http://a:5000']);
    expect(t).toContain('server = "https://registry-1.docker.io"');
    expect(t.indexOf('[host."https://b"]')).toBeLessThan(t.indexOf('[host."http://a:5000"]'));
  });
});

describe('containerd config validation', () => {
  it('distro source without a version names the field and what to do', () => {
    const r = ContainerdSpec.safeParse({ source: 'distro' });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['version']);
    expect(r.error?.issues[0]?.message).toContain("version of the distro's containerd package");
  });
  it('a malformed configAdditions path is refused', () => {
    const r = ContainerdSpec.safeParse({ configAdditions: { 'plugins."oops': 1 } });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['configAdditions', 'plugins."oops']);
  });
  it('unknown keys and bad mirrors are refused', () => {
    expect(ContainerdSpec.safeParse({ mirrors: {} }).success).toBe(false);
    expect(ContainerdSpec.safeParse({ registryMirrors: { 'docker.io': ['ftp://x'] } }).success).toBe(false);
    expect(ContainerdSpec.safeParse({ registryMirrors: { 'Bad Host': ['https://x'] } }).success).toBe(false);
  });
});
