import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as yaml from 'js-yaml';
import { MockAgent, getGlobalDispatcher, setGlobalDispatcher, type Dispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components } from '../app/components.ts';
import { execute } from '../engine/executor.ts';
import { createTestHost } from '../../tests/support/test-host.ts';
import { silentLogger } from '../engine/log.ts';
import { buildGraph } from '../app/run.ts';
import { caNames, ensureClusterPki } from '../engine/pki/cluster-pki.ts';
import { loadNodeSecrets } from '../model/node-secrets.ts';
import { CertTask, StoreFileTask } from '../engine/pki/tasks.ts';
import { FileStore } from '../statestore/file-store.ts';
import { apiServerSans, controlPlaneComponent, controlPlaneInput, firstServiceIp } from './component.ts';
import { renderApiServerManifest, renderAuditPolicy, renderControllerManagerManifest, renderSchedulerManifest } from './render-manifests.ts';
import { cpModel } from '../../tests/support/controlplane-model.ts';
import { Graph } from '../engine/graph.ts';

const cases: [string, Record<string, unknown>][] = [
  ['default', { kubernetesVersion: 'v1.35.1' }],
  [
    'audit-private-registry-1.33',
    {
      kubernetesVersion: 'v1.33.5',
      controlPlane: {
        imageRegistry: 'mirror.internal:5000/k8s',
        apiServer: { port: 443, extraSANs: ['api.lb.example', '192.0.2.10'], audit: { enabled: true, maxAgeDays: 7 }, extraArgs: { v: '2' } },
        scheduler: { extraArgs: { 'leader-elect': 'false' } },
      },
      etcd: { clusters: [{ name: 'main', clientPort: 4001, peerPort: 2380 }] },
      networking: { cni: 'external' },
    },
  ],
];

describe.each(cases)('control-plane static pods: %s', (name, spec) => {
  it('match the golden files', async () => {
    const input = controlPlaneInput(cpModel({ spec }));
    const dir = `testdata/${name}/expected`;
    await expect(renderApiServerManifest(input)).toMatchFileSnapshot(`${dir}/kube-apiserver.yaml`);
    await expect(renderControllerManagerManifest(input)).toMatchFileSnapshot(`${dir}/kube-controller-manager.yaml`);
    await expect(renderSchedulerManifest(input)).toMatchFileSnapshot(`${dir}/kube-scheduler.yaml`);
  });
});

describe('control-plane inputs', () => {
  it('pins images to the Kubernetes version from the configured registry', () => {
    const m = cpModel({ spec: { kubernetesVersion: 'v1.34.2', controlPlane: { imageRegistry: 'reg.example/k8s' } } });
    expect(renderApiServerManifest(controlPlaneInput(m))).toContain('image: reg.example/k8s/kube-apiserver:v1.34.2');
  });

  it('gives the apiserver certificate the service IP, node names and IPs, and the endpoint', () => {
    const sans = apiServerSans(cpModel({ facts: { ipv4: ['10.0.0.10'] }, nodeName: 'cp-1' }));
    expect(sans.dnsNames).toEqual(['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', 'cp-1', 'localhost', 'api.test.example']);
    expect(sans.ips).toEqual(['10.96.0.1', '10.0.0.10', '127.0.0.1']);
  });

  it('advertises the node IP from spec.networking.nodeAddress; SANs keep the other host addresses but not the pod network', () => {
    const facts = { ipv4: ['10.0.2.15', '10.244.0.1', '192.168.77.11'], interfaces: { ens3: ['10.0.2.15'], cni0: ['10.244.0.1'], ens4: ['192.168.77.11'] }, defaultRouteInterface: 'ens3' };
    const m = cpModel({ facts, nodeName: 'cp-1', spec: { networking: { nodeAddress: { cidr: '192.168.77.0/24' } } } });
    expect(m.nodeIp).toBe('192.168.77.11');
    const api = renderApiServerManifest(controlPlaneInput(m));
    expect(api).toContain('- --advertise-address=192.168.77.11');
    expect(api).toContain('host: 192.168.77.11');
    expect(apiServerSans(m).ips).toEqual(['10.96.0.1', '192.168.77.11', '10.0.2.15', '127.0.0.1']);
    // Default: the interface with the default route.
    expect(controlPlaneInput(cpModel({ facts })).advertiseAddress).toBe('10.0.2.15');
  });

  it('bridge CNI: the controller-manager allocates per-node pod subnets of nodeCIDRMaskSize; external CNI: no allocation', () => {
    const cm = (networking: Record<string, unknown>): string => renderControllerManagerManifest(controlPlaneInput(cpModel({ spec: { networking } })));
    const flags = cm({ podCIDR: '10.200.0.0/16', bridge: { nodeCIDRMaskSize: 26 } });
    for (const f of ['--allocate-node-cidrs=true', '--cluster-cidr=10.200.0.0/16', '--node-cidr-mask-size=26']) expect(flags).toContain(`- ${f}\n`);
    expect(cm({ cni: 'external' })).not.toContain('allocate-node-cidrs');
  });

  it('leader election: no duration flags at the components\' defaults; spec.controlPlane.leaderElection sets them on the controller-manager and the scheduler', () => {
    const both = (leaderElection?: Record<string, number>): string[] => {
      const input = controlPlaneInput(cpModel({ spec: leaderElection ? { controlPlane: { leaderElection } } : {} }));
      return [renderControllerManagerManifest(input), renderSchedulerManifest(input)];
    };
    for (const m of both()) {
      expect(m).toContain('- --leader-elect=true\n');
      expect(m).not.toContain('--leader-elect-');
    }
    for (const m of both({ leaseDurationSeconds: 60, renewDeadlineSeconds: 40, retryPeriodSeconds: 5 })) {
      for (const f of ['--leader-elect-lease-duration=60s', '--leader-elect-renew-deadline=40s', '--leader-elect-retry-period=5s']) expect(m).toContain(`- ${f}\n`);
    }
    const one = both({ renewDeadlineSeconds: 12 })[0]!;
    expect(one).toContain('- --leader-elect-renew-deadline=12s\n');
    expect(one).not.toContain('--leader-elect-lease-duration');
  });

  it('probes: kubeadm\'s thresholds by default; spec.controlPlane.probes loosens them on all three pods', () => {
    const thresholds = (m: string): [number, number] => {
      const pod = yaml.load(m) as { spec: { containers: { startupProbe: { failureThreshold: number }; livenessProbe: { failureThreshold: number } }[] } };
      const c = pod.spec.containers[0]!;
      return [c.startupProbe.failureThreshold, c.livenessProbe.failureThreshold];
    };
    const renderers = [renderApiServerManifest, renderControllerManagerManifest, renderSchedulerManifest];
    for (const r of renderers) expect(thresholds(r(controlPlaneInput(cpModel())))).toEqual([24, 8]);
    const slow = controlPlaneInput(cpModel({ spec: { controlPlane: { probes: { startupFailureThreshold: 90, livenessFailureThreshold: 30 } } } }));
    for (const r of renderers) expect(thresholds(r(slow))).toEqual([90, 30]);
  });

  it.each([
    ['10.96.0.0/12', '10.96.0.1'],
    ['172.20.0.0/16', '172.20.0.1'],
    ['fd00::/108', 'fd00::1'],
  ])('first service IP of %s is %s', (cidr, ip) => {
    expect(firstServiceIp(cidr)).toBe(ip);
  });

  it('refuses a service CIDR it cannot use, naming the field', () => {
    expect(() => firstServiceIp('10.0.0.1/32')).toThrow(/spec\.networking\.serviceCIDR/);
  });

  it('builds only on control planes, and only pure tasks (no I/O at build)', () => {
    expect(controlPlaneComponent.enabled(cpModel({ role: 'worker' }))).toBe(false);
    const g = new Graph();
    controlPlaneComponent.build(cpModel(), g);
    const keys = [...g.finish().order];
    expect(keys).toContain('pki:cluster');
    expect(keys).toContain('cert:apiserver');
    expect(keys).toContain('file:/etc/kubernetes/manifests/kube-apiserver.yaml');
  });

  it('renders a metadata-only default audit policy', async () => {
    await expect(renderAuditPolicy()).toMatchFileSnapshot('testdata/audit-private-registry-1.33/expected/audit-policy.yaml');
  });
});

describe('a worker never receives a CA key', () => {
  let previous: Dispatcher;
  let storeDir: string;
  let store: FileStore;
  let caKeys: string[];
  beforeAll(async () => {
    previous = getGlobalDispatcher();
    const agent = new MockAgent();
    agent.disableNetConnect(); // downloads fail at once: this test is about what gets written
    setGlobalDispatcher(agent);
    storeDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-worker-pki-'));
    store = new FileStore(pathToFileURL(storeDir).toString());
    await ensureClusterPki(store, { holder: 'cp-1' });
    caKeys = [];
    for (const n of caNames) caKeys.push(((await store.read(`pki/${n}.key`)) as Buffer).toString('utf8'));
    caKeys.push(((await store.read('pki/sa.key')) as Buffer).toString('utf8'));
  });
  afterAll(async () => {
    setGlobalDispatcher(previous);
    await fsp.rm(storeDir, { recursive: true, force: true });
  });

  async function applyAll(role: 'worker' | 'control-plane'): Promise<{ files: Map<string, string>; taskKeys: string[] }> {
    const secrets = await loadNodeSecrets(store, role);
    const model = cpModel({ role, store, secrets });
    const builder = buildGraph(model, components);
    const graph = builder.finish();
    const host = await createTestHost({ unmatched: 'succeed' });
    try {
      await execute(graph, host, { mode: 'apply', log: silentLogger, owner: builder.owner, notReadyDeadlineMs: 0, store });
      const files = new Map<string, string>();
      for (const rel of await host.tree()) files.set('/' + rel, ((await host.fs.read('/' + rel)) ?? Buffer.alloc(0)).toString('utf8'));
      return { files, taskKeys: [...graph.order] };
    } finally {
      await host.dispose();
    }
  }

  const leaks = (files: Map<string, string>): string[] =>
    [...files].filter(([p, text]) => /ca\.key$|sa\.key$/.test(p) || caKeys.some((k) => text.includes(k.trim()))).map(([p]) => p);

  it('the worker graph has no PKI task and writes no CA or service-account key', async () => {
    const secrets = await loadNodeSecrets(store, 'worker');
    expect(JSON.stringify(secrets)).not.toContain('PRIVATE KEY');
    const { files, taskKeys } = await applyAll('worker');
    expect(taskKeys.filter((k) => k.startsWith('pki:') || k.startsWith('cert:') || k.startsWith('etcd-member:'))).toEqual([]);
    expect(files.get('/etc/kubernetes/pki/ca.crt')).toBe(secrets.clusterCaCert); // it does get the CA certificate
    expect(leaks(files)).toEqual([]);
  });

  it('the same check finds the CA key on a control plane (so it can fail)', async () => {
    const { files } = await applyAll('control-plane');
    expect(leaks(files)).toContain('/etc/kubernetes/pki/ca.key');
    expect(leaks(files)).not.toContain('/etc/kubernetes/pki/etcd/ca.key');
  });

  it('control-plane cert tasks write keys 0600 and no CA key but the cluster CA one', () => {
    const g = buildGraph(cpModel({ store }), components).finish();
    const written = [...g.tasks.values()].flatMap((t) => (t instanceof CertTask ? t.paths() : t instanceof StoreFileTask ? [t.spec.path] : []));
    expect(written.filter((p) => p.endsWith('.key')).sort()).toEqual([
      '/etc/kubernetes/pki/apiserver-etcd-client.key',
      '/etc/kubernetes/pki/apiserver-kubelet-client.key',
      '/etc/kubernetes/pki/apiserver.key',
      '/etc/kubernetes/pki/ca.key',
      '/etc/kubernetes/pki/etcd/events/peer.key',
      '/etc/kubernetes/pki/etcd/events/server.key',
      '/etc/kubernetes/pki/etcd/main/peer.key',
      '/etc/kubernetes/pki/etcd/main/server.key',
      '/etc/kubernetes/pki/etcd/nodeup-client.key',
      '/etc/kubernetes/pki/front-proxy-client.key',
      '/etc/kubernetes/pki/kube-proxy.key',
      '/etc/kubernetes/pki/kubelet-client.key',
      '/etc/kubernetes/pki/sa.key',
    ]);
  });
});

describe('control-plane apply on a test root', () => {
  it('converges, then restarts the pods whose certificates were renewed, then is converged again', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-cp-'));
    const store = new FileStore(pathToFileURL(dir).toString());
    const host = await createTestHost();
    try {
      const g = new Graph();
      g.setOwner('control-plane');
      controlPlaneComponent.build(cpModel({ store }), g);
      const graph = g.finish();
      const run = () => execute(graph, host, { mode: 'apply', log: silentLogger, owner: g.owner, store });
      const first = await run();
      expect(first.ok).toBe(true);
      expect(first.changed).toBe(graph.order.length);
      expect((await run()).changed).toBe(0);
      // 250 of 365 days later a third of the life is left: certificates renew, pods restart.
      host.virtualTime = 250 * 86400_000;
      const renewal = await run();
      const changed = renewal.results.filter((r) => r.status === 'changed').map((r) => r.key);
      expect(changed).toEqual(expect.arrayContaining(['cert:apiserver', 'cert:kubeconfig-scheduler', 'file:/etc/kubernetes/manifests/kube-apiserver.yaml', 'file:/etc/kubernetes/manifests/kube-scheduler.yaml']));
      const apiserver = renewal.results.find((r) => r.key === 'file:/etc/kubernetes/manifests/kube-apiserver.yaml');
      expect(apiserver?.changes[0]?.field).toBe('restart');
      expect(((await host.fs.read('/etc/kubernetes/manifests/kube-scheduler.yaml')) as Buffer).toString()).toContain('nodeup.dev/restarted-at:');
      expect((await run()).changed).toBe(0);
    } finally {
      await host.dispose();
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
