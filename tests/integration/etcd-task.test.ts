// The etcd component as a node runs it: for three "nodes" (temp roots sharing one file:// state
// store), the PKI tasks issue the etcd certificates and the etcd-member task creates or joins the
// cluster by writing its static pod manifest. A stand-in kubelet starts the manifest's own command
// with real etcd 3.6 (paths mapped into the node's root). Then a second apply changes nothing.
// Issue 7: cp-3 dies for good and a fourth node with memberCount 3 replaces it through the same graph.
// Needs scripts/setup-etcd.sh.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openSync, closeSync, readFileSync, existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execute } from '../../src/engine/executor.ts';
import { Graph } from '../../src/engine/graph.ts';
import { NodeHost } from '../../src/engine/host/node-host.ts';
import { silentLogger } from '../../src/engine/log.ts';
import { cpModel } from '../support/controlplane-model.ts';
import { EtcdClient } from '../../src/etcd/client.ts';
import { etcdComponent } from '../../src/etcd/component.ts';
import { clusterHealth } from '../../src/etcd/membership.ts';
import { listBackups } from '../../src/etcd/backup.ts';
import { configHash } from '../../src/model/config.ts';
import { FileStore } from '../../src/statestore/file-store.ts';
import { etcd36, EtcdProcess, freePort, type EtcdBinaries } from './etcd-harness.ts';

/** A real host whose files live under a temp root but which reports itself live (root "/"). */
class LiveRootHost extends NodeHost {
  override readonly root = '/';
}

interface FakeNode {
  readonly name: string;
  readonly dir: string;
  readonly host: LiveRootHost;
  readonly clientPort: number;
  readonly peerPort: number;
  proc?: EtcdProcess;
  lastManifest?: string;
}

describe('etcd component on three nodes (etcd 3.6 as static pods)', () => {
  let bin: EtcdBinaries;
  let storeDir: string;
  let store: FileStore;
  const nodes: FakeNode[] = [];
  let kubelet: NodeJS.Timeout | undefined;

  // The stand-in kubelet: (re)starts etcd when a node's manifest appears or changes.
  const syncPods = (): void => {
    for (const n of nodes) {
      const manifest = path.join(n.dir, 'etc/kubernetes/manifests/etcd-main.yaml');
      if (!existsSync(manifest)) continue;
      const text = readFileSync(manifest, 'utf8');
      if (text === n.lastManifest) continue;
      n.lastManifest = text;
      const pod = yaml.load(text) as { spec: { containers: { command: string[] }[] } };
      const args = (pod.spec.containers[0]?.command ?? []).slice(1).map((a) => a.replace(/=(\/etc\/kubernetes\/|\/var\/lib\/etcd)/, (_m, p: string) => `=${n.dir}${p}`));
      const old = n.proc;
      const start = (): void => {
        const fd = openSync(path.join(n.dir, 'etcd.log'), 'a');
        n.proc = new EtcdProcess(spawn(bin.etcd, args, { stdio: ['ignore', fd, fd] }), path.join(n.dir, 'etcd.log'));
        closeSync(fd);
      };
      if (old) void old.stop().then(start);
      else start();
    }
  };

  beforeAll(async () => {
    bin = etcd36();
    storeDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-etcd-task-store-'));
    store = new FileStore(pathToFileURL(storeDir).toString());
    for (const name of ['cp-1', 'cp-2', 'cp-3']) {
      const dir = await fsp.mkdtemp(path.join(os.tmpdir(), `nodeup-etcd-task-${name}-`));
      nodes.push({ name, dir, host: new LiveRootHost({ root: dir }), clientPort: await freePort(), peerPort: await freePort() });
    }
    kubelet = setInterval(syncPods, 100);
  });

  afterAll(async () => {
    if (kubelet) clearInterval(kubelet);
    await Promise.all(nodes.map((n) => n.proc?.stop() ?? Promise.resolve()));
    for (const d of [storeDir, ...nodes.map((n) => n.dir)]) if (d) await fsp.rm(d, { recursive: true, force: true });
  });

  function graphFor(n: FakeNode, etcd: Record<string, unknown> = {}) {
    const model = cpModel({
      store,
      nodeName: n.name,
      facts: { ipv4: ['127.0.0.1'] },
      spec: { etcd: { clusters: [{ name: 'main', clientPort: n.clientPort, peerPort: n.peerPort }], backup: { schedule: '' }, ...etcd } },
    });
    const g = new Graph();
    g.setOwner('etcd');
    etcdComponent.build(model, g);
    return { graph: g.finish(), owner: g.owner };
  }

  it('the first node creates the cluster, the others join as learners and are promoted; re-runs change nothing', async () => {
    for (const n of nodes) {
      const { graph, owner } = graphFor(n);
      const report = await execute(graph, n.host, { mode: 'apply', log: silentLogger, owner, notReadyDeadlineMs: 0, store });
      const failed = report.results.filter((r) => r.status !== 'changed' && r.status !== 'unchanged');
      expect(failed, `${n.name}: ${JSON.stringify(failed)}\n${await fsp.readFile(path.join(n.dir, 'etcd.log'), 'utf8').catch(() => '')}`).toEqual([]);
      expect(report.results.find((r) => r.key === 'etcd-member:main')?.status).toBe('changed');
    }
    // nodeup's own client certificate, issued by the PKI tasks, talks to the cluster.
    const n1 = nodes[0] as FakeNode;
    const read = (p: string): string => readFileSync(path.join(n1.dir, p), 'utf8');
    const client = new EtcdClient(new NodeHost(), nodes.map((n) => `https://127.0.0.1:${n.clientPort}`), {
      ca: read('etc/kubernetes/pki/etcd/ca.crt'),
      cert: read('etc/kubernetes/pki/etcd/nodeup-client.crt'),
      key: read('etc/kubernetes/pki/etcd/nodeup-client.key'),
    });
    const h = await clusterHealth(client);
    expect(h.members.map((m) => [m.member.name, m.member.isLearner, m.healthy]).sort()).toEqual([
      ['cp-1', false, true],
      ['cp-2', false, true],
      ['cp-3', false, true],
    ]);
    const manifest2 = readFileSync(path.join((nodes[1] as FakeNode).dir, 'etc/kubernetes/manifests/etcd-main.yaml'), 'utf8');
    expect(manifest2).toContain('--initial-cluster-state=existing');
    expect(manifest2).toContain('image: registry.k8s.io/etcd:3.6.4-0');
    for (const n of nodes) {
      const { graph, owner } = graphFor(n);
      const again = await execute(graph, n.host, { mode: 'apply', log: silentLogger, owner, store });
      expect(again.results.filter((r) => r.status !== 'unchanged').map((r) => r.key)).toEqual([]);
    }
    expect((await fsp.stat(path.join(n1.dir, 'etc/kubernetes/pki/etcd/main/server.key'))).mode & 0o777).toBe(0o600);
  });

  it('the scheduled backup command (what the timer runs) backs up through the node config and keeps the retention', async () => {
    const n1 = nodes[0] as FakeNode;
    const nodeConfig = yaml.dump({
      apiVersion: 'nodeup.dev/v1alpha1',
      kind: 'NodeConfig',
      metadata: { cluster: 'test', instanceGroup: 'control-plane' },
      spec: {
        role: 'control-plane',
        apiServerEndpoint: 'https://api.test.example:6443',
        etcd: { clusters: [{ name: 'main', clientPort: n1.clientPort, peerPort: n1.peerPort }], backup: { schedule: '', retention: 3 } },
      },
    });
    await store.write('igconfig/control-plane/node.yaml', nodeConfig);
    const boot = path.join(n1.dir, 'boot.yaml');
    await fsp.writeFile(path.join(n1.dir, 'etc/os-release'), 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n');
    await fsp.writeFile(
      boot,
      yaml.dump({ apiVersion: 'nodeup.dev/v1alpha1', kind: 'BootConfig', stateStore: store.url, clusterName: 'test', instanceGroup: 'control-plane', nodeConfigHash: configHash(nodeConfig), nodeName: 'cp-1' }),
    );
    const main = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/app/main.ts');
    const run = (...args: string[]) => spawnSync(process.execPath, [main, 'etcd', ...args, '--config', boot, '--root', n1.dir, '--log-format', 'json'], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, NODEUP_LOG_LEVEL: 'warn' } });
    expect((await listBackups(store, 'main')).length).toBeGreaterThan(3); // the joins took 4
    const r = run('backup', '--all', '--scheduled');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^main\t\d{8}T\d{9}Z-scheduled\t\d+ bytes\n$/);
    const left = await listBackups(store, 'main');
    expect(left).toHaveLength(3);
    expect(left[2]).toMatch(/-scheduled$/);
    const members = run('members');
    expect(members.status).toBe(0);
    expect(members.stdout).toContain('3 of 3 voting members healthy; quorum needs 2.');
  });

  it('issue 7: with memberCount 3, a replacement node removes the dead member, joins and is promoted; a second apply changes nothing', async () => {
    const dead = nodes[2] as FakeNode;
    await dead.proc?.kill();
    await fsp.rm(path.join(dead.dir, 'etc/kubernetes/manifests'), { recursive: true, force: true });
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-etcd-task-cp-4-'));
    const n4: FakeNode = { name: 'cp-4', dir, host: new LiveRootHost({ root: dir }), clientPort: await freePort(), peerPort: await freePort() };
    nodes.push(n4);
    const wanted = { memberCount: 3, deadMemberGraceSeconds: 30 };
    const { graph, owner } = graphFor(n4, wanted);
    const report = await execute(graph, n4.host, { mode: 'apply', log: silentLogger, owner, store });
    const failed = report.results.filter((r) => r.status === 'failed' || r.status === 'blocked');
    expect(failed, `${JSON.stringify(failed)}\n${await fsp.readFile(path.join(dir, 'etcd.log'), 'utf8').catch(() => '')}`).toEqual([]);
    expect(report.results.find((r) => r.key === 'etcd-member:main')?.status).toBe('changed');
    expect(report.results.find((r) => r.key === 'etcd-membership:main')?.status).toBe('unchanged');
    const read = (p: string): string => readFileSync(path.join(dir, p), 'utf8');
    const client = new EtcdClient(new NodeHost(), [`https://127.0.0.1:${n4.clientPort}`], {
      ca: read('etc/kubernetes/pki/etcd/ca.crt'),
      cert: read('etc/kubernetes/pki/etcd/nodeup-client.crt'),
      key: read('etc/kubernetes/pki/etcd/nodeup-client.key'),
    });
    const h = await clusterHealth(client);
    expect(h.members.map((m) => [m.member.name, m.member.isLearner, m.healthy]).sort()).toEqual([
      ['cp-1', false, true],
      ['cp-2', false, true],
      ['cp-4', false, true],
    ]);
    expect((await listBackups(store, 'main')).some((b) => b.endsWith('-before-remove-cp-3'))).toBe(true);
    for (const n of [n4, nodes[0] as FakeNode]) {
      const again = graphFor(n, wanted);
      const r = await execute(again.graph, n.host, { mode: 'apply', log: silentLogger, owner: again.owner, store });
      expect(r.results.filter((x) => x.status !== 'unchanged').map((x) => x.key)).toEqual([]);
    }
  });
});
