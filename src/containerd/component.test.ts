// The containerd component on a temp root: plan, apply, converged re-run (zero changes, no restart),
// what restarts containerd and what does not, pruning of stale managed files, distro source.
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AgentError } from '../engine/errors.ts';
import { execute, type RunReport } from '../engine/executor.ts';
import { createTestHost, type TestHost } from '../../tests/support/test-host.ts';
import { silentLogger } from '../engine/log.ts';
import type { NodeModel } from '../model/node-model.ts';
import { buildGraph } from '../app/run.ts';
import type { Component } from '../model/component.ts';
import { containerdComponent, cniPlugins } from './component.ts';
import { containerdUnitKey } from '../model/paths/containerd.ts';
import { modelFromCase } from '../../tests/support/containerd-model.ts';
import { fakeArchive, fakeFile } from '../../tests/support/fake-assets.ts';

let assets: string;
const overrides: Record<string, { urls: string[]; sha256: string }> = {};
beforeAll(async () => {
  assets = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-containerd-assets-'));
  overrides.containerd = await fakeArchive(assets, 'containerd', { 'bin/containerd': '#!containerd\n', 'bin/containerd-shim-runc-v2': '#!shim\n', 'bin/ctr': '#!ctr\n', 'bin/containerd-stress': 'x' });
  overrides.crictl = await fakeArchive(assets, 'crictl', { crictl: '#!crictl\n' });
  overrides['cni-plugins'] = await fakeArchive(assets, 'cni-plugins', Object.fromEntries([...cniPlugins, 'dummy'].map((p) => [p, `#!${p}\n`])), { prefix: './' });
  overrides.runc = await fakeFile(assets, 'runc.amd64', '#!runc\n');
});
afterAll(async () => {
  await fsp.rm(assets, { recursive: true, force: true });
});

let host: TestHost;
beforeEach(async () => {
  host = await createTestHost({ fixture: 'debian-12' });
});
afterEach(async () => {
  await host.dispose();
});

function model(spec: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): NodeModel {
  const config = {
    apiVersion: 'nodeup.dev/v1alpha1',
    kind: 'NodeConfig',
    metadata: { cluster: 'c', instanceGroup: 'nodes' },
    spec: { role: 'worker', apiServerEndpoint: 'https://10.0.0.10:6443', assets: { overrides }, ...spec },
  };
  return modelFromCase(yaml.dump({ config, ...extra }), 'test');
}

async function run(m: NodeModel, mode: 'plan' | 'apply' = 'apply'): Promise<RunReport> {
  const g = buildGraph(m, [containerdComponent]);
  const report = await execute(g.finish(), host, { mode, log: silentLogger, owner: g.owner });
  const failed = report.results.filter((r) => r.status !== 'unchanged' && r.status !== 'changed' && r.status !== 'planned');
  expect(failed).toEqual([]);
  return report;
}

const changedKeys = (r: RunReport): string[] => r.results.filter((x) => x.changes.length > 0).map((x) => x.key).sort();
const unitResult = (r: RunReport) => r.results.find((x) => x.key === containerdUnitKey);
const read = (p: string): Promise<string> => fsp.readFile(path.join(host.root, p), 'utf8');

describe('containerd component', () => {
  it('plan writes nothing; apply installs everything; a converged re-run has zero changes and no restart', async () => {
    const m = model({ containerd: { registryMirrors: { 'docker.io': ['https://mirror.example.com'] } } });
    const before = await host.tree();
    const plan = await run(m, 'plan');
    expect(plan.changed).toBeGreaterThan(10);
    expect(await host.tree()).toEqual(before);

    const first = await run(m);
    expect(first.changed).toBe(plan.changed);
    for (const b of ['containerd', 'containerd-shim-runc-v2', 'ctr', 'runc', 'crictl']) {
      expect((await fsp.stat(path.join(host.root, 'usr/local/bin', b))).mode & 0o777).toBe(0o755);
    }
    await expect(fsp.stat(path.join(host.root, 'usr/local/bin/containerd-stress'))).rejects.toThrow();
    expect(await read('opt/cni/bin/bridge')).toBe('#!bridge\n');
    expect(await read('etc/containerd/config.toml')).toContain('version = 3');
    expect(await read('etc/containerd/certs.d/docker.io/hosts.toml')).toContain('[host."https://mirror.example.com"]');
    expect(await read('etc/crictl.yaml')).toContain('runtime-endpoint: unix:///run/containerd/containerd.sock');
    // Per-node pod subnets (the default): containerd renders the network from nodeup's template.
    expect(await read('etc/containerd/config.toml')).toContain('conf_template = "/etc/containerd/nodeup-bridge.conflist.tmpl"');
    expect(await read('etc/containerd/nodeup-bridge.conflist.tmpl')).toContain('{{range $i, $r := .PodCIDRRanges}}');
    await expect(fsp.stat(path.join(host.root, 'etc/cni/net.d/10-nodeup-bridge.conflist'))).rejects.toThrow();
    expect(await read('etc/systemd/system/containerd.service')).toContain('Delegate=yes');
    expect(await fsp.readlink(path.join(host.root, 'etc/systemd/system/multi-user.target.wants/containerd.service'))).toBe('/etc/systemd/system/containerd.service');

    const second = await run(m);
    expect(changedKeys(second)).toEqual([]);
    expect(unitResult(second)?.notifiedBy).toEqual([]);
  });

  it('a changed config.toml restarts containerd; a changed mirror does not', async () => {
    await run(model());
    const mirrors = await run(model({ containerd: { registryMirrors: { 'registry.k8s.io': ['https://m.example.com'] } } }));
    expect(changedKeys(mirrors)).toEqual(['file:/etc/containerd/certs.d/registry.k8s.io/hosts.toml']);
    expect(unitResult(mirrors)?.changes).toEqual([]);

    const level = await run(model({ containerd: { logLevel: 'debug', registryMirrors: { 'registry.k8s.io': ['https://m.example.com'] } } }));
    expect(changedKeys(level)).toEqual(['file:/etc/containerd/config.toml', containerdUnitKey]);
    expect(unitResult(level)?.notifiedBy).toEqual(['file:/etc/containerd/config.toml']);
    expect(unitResult(level)?.changes.map((c) => c.field)).toEqual(['restart']);
  });

  it('a new containerd archive restarts containerd; a new runc does not', async () => {
    await run(model());
    const old = overrides.containerd;
    try {
      overrides.containerd = await fakeArchive(assets, 'containerd-v2', { 'bin/containerd': '#!containerd v2\n', 'bin/containerd-shim-runc-v2': '#!shim\n', 'bin/ctr': '#!ctr\n' });
      const r = await run(model());
      expect(changedKeys(r)).toEqual(['archive:containerd', containerdUnitKey]);
      expect(unitResult(r)?.notifiedBy).toEqual(['archive:containerd']);
    } finally {
      overrides.containerd = old as (typeof overrides)['containerd'];
    }
  });

  it('removes managed files it no longer wants and never touches the user\'s own', async () => {
    await run(model({ containerd: { registryMirrors: { 'docker.io': ['https://a'] }, dropIns: { '50-a': 'x = 1' } } }));
    await fsp.writeFile(path.join(host.root, 'etc/containerd/conf.d/90-mine.toml'), '# mine\n');
    await fsp.mkdir(path.join(host.root, 'etc/containerd/certs.d/quay.io'));
    await fsp.writeFile(path.join(host.root, 'etc/containerd/certs.d/quay.io/hosts.toml'), 'server = "https://quay.io"\n');
    await fsp.writeFile(path.join(host.root, 'etc/containerd/certs.d/README'), 'a stray file\n');

    const r = await run(model({ networking: { cni: 'external' } }));
    expect(changedKeys(r)).toEqual([
      'dir:/etc/containerd/certs.d',
      'dir:/etc/containerd/conf.d',
      'file:/etc/containerd/config.toml',
      'file:/etc/containerd/nodeup-bridge.conflist.tmpl',
      containerdUnitKey,
    ]);
    expect(unitResult(r)?.notifiedBy).toEqual(['dir:/etc/containerd/conf.d', 'file:/etc/containerd/config.toml']);
    expect(await fsp.readdir(path.join(host.root, 'etc/containerd/conf.d'))).toEqual(['90-mine.toml']);
    expect(await fsp.readdir(path.join(host.root, 'etc/containerd/certs.d'))).toEqual(['README', 'quay.io']);
    expect(await fsp.readdir(path.join(host.root, 'etc/cni/net.d'))).toEqual([]);
    expect(changedKeys(await run(model({ networking: { cni: 'external' } })))).toEqual([]);
  });

  it('switching bridge.podSubnet removes the other mode\'s files, and only a generated network that is nodeup\'s own', async () => {
    await run(model());
    const net = (f: string): string => path.join(host.root, 'etc/cni/net.d', f);
    // What containerd writes from the template once kubelet sends the pod CIDR.
    const generated = (await read('etc/containerd/nodeup-bridge.conflist.tmpl'))
      .replace('[{{range $i, $r := .PodCIDRRanges}}{{if $i}}, {{end}}[{"subnet": "{{$r}}"}]{{end}}]', '[[{"subnet": "10.244.1.0/24"}]]')
      .replace('[{{range $i, $r := .Routes}}{{if $i}}, {{end}}{"dst": "{{$r}}"}{{end}}]', '[{"dst": "0.0.0.0/0"}]');
    expect(JSON.parse(generated)).toMatchObject({ name: 'nodeup-bridge', plugins: [{ ipam: { ranges: [[{ subnet: '10.244.1.0/24' }]] } }, {}] });
    await fsp.writeFile(net('10-containerd-net.conflist'), generated);

    const cluster = await run(model({ networking: { bridge: { podSubnet: 'cluster' } } }));
    expect(changedKeys(cluster)).toEqual([
      'file:/etc/cni/net.d/10-containerd-net.conflist',
      'file:/etc/cni/net.d/10-nodeup-bridge.conflist',
      'file:/etc/containerd/config.toml',
      'file:/etc/containerd/nodeup-bridge.conflist.tmpl',
      containerdUnitKey,
    ]);
    expect(await fsp.readdir(path.join(host.root, 'etc/cni/net.d'))).toEqual(['10-nodeup-bridge.conflist']);
    expect(await read('etc/cni/net.d/10-nodeup-bridge.conflist')).toContain('"subnet": "10.244.0.0/16"');
    expect(await read('etc/containerd/config.toml')).not.toContain('conf_template');

    // Back to per-node: the static network goes (containerd renders its template only while no network loads).
    const perNode = await run(model());
    expect(changedKeys(perNode)).toEqual(['file:/etc/cni/net.d/10-nodeup-bridge.conflist', 'file:/etc/containerd/config.toml', 'file:/etc/containerd/nodeup-bridge.conflist.tmpl', containerdUnitKey]);
    expect(await fsp.readdir(path.join(host.root, 'etc/cni/net.d'))).toEqual([]);

    // A 10-containerd-net.conflist that is not nodeup's network stays.
    await fsp.writeFile(net('10-containerd-net.conflist'), '{"cniVersion": "1.0.0", "name": "mine", "plugins": []}\n');
    await run(model({ networking: { cni: 'external' } }));
    expect(await fsp.readdir(path.join(host.root, 'etc/cni/net.d'))).toEqual(['10-containerd-net.conflist']);
  });

  it('distro source: waits for the package, uses the distro binaries, installs no containerd or runc', async () => {
    const m = model({ containerd: { source: 'distro', version: '1.7.24' }, packages: { extra: ['containerd'] } });
    // Stands in for the packages component, which owns `package:` tasks (order is by key only).
    const fakePackages: Component = {
      name: 'packages',
      enabled: () => true,
      build: (_m, graph) =>
        graph.add({ key: 'package:containerd', after: [], observe: async () => undefined, diff: () => [], apply: async () => undefined }),
    };
    const g = buildGraph(m, [fakePackages, containerdComponent]).finish();
    expect(g.deps.get(containerdUnitKey)).toContain('package:containerd');
    expect(g.tasks.has('archive:containerd')).toBe(false);
    expect(g.tasks.has('download:/usr/local/bin/runc')).toBe(false);
    expect(g.tasks.has('archive:crictl')).toBe(true);
  });

  it('distro source without the package task is a config error naming what to add', () => {
    const m = model({ containerd: { source: 'distro', version: '1.7.24' } });
    let err: unknown;
    try {
      buildGraph(m, [containerdComponent]);
    } catch (e: unknown) {
      err = e;
    }
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe('CONFIG_INVALID');
    expect((err as AgentError).message).toContain('add it to spec.packages.extra');
  });

  it('preflight refuses containerd older than 1.7', () => {
    const checks = containerdComponent.preflight?.(model({ containerd: { version: '1.6.20' } })) ?? [];
    expect(checks.map((c) => c.check(model({ containerd: { version: '1.6.20' } })))).toEqual([expect.stringContaining('too old'), undefined]);
    const ok = containerdComponent.preflight?.(model()) ?? [];
    expect(ok.map((c) => c.check(model()))).toEqual([undefined, undefined]);
  });

  it('preflight catches configAdditions written for the other config schema', () => {
    const check = (spec: Record<string, unknown>): (string | undefined)[] => {
      const m = model({ containerd: spec });
      return (containerdComponent.preflight?.(m) ?? []).filter((c) => c.name === 'containerd-config-additions').map((c) => c.check(m));
    };
    expect(check({ version: '1.7.28', configAdditions: { 'plugins."io.containerd.cri.v1.runtime".enable_cdi': true } })).toEqual([
      expect.stringContaining('reads version 2'),
    ]);
    expect(check({ version: '2.1.4', configAdditions: { 'plugins."io.containerd.grpc.v1.cri".containerd.snapshotter': 'overlayfs' } })).toEqual([
      expect.stringContaining('reads version 3'),
    ]);
    expect(check({ version: '2.1.4', configAdditions: { 'plugins."io.containerd.cri.v1.runtime".enable_cdi': true } })).toEqual([undefined]);
    expect(check({ version: '1.7.28', configAdditions: { 'plugins."io.containerd.grpc.v1.cri".enable_cdi': true } })).toEqual([undefined]);
  });
});
