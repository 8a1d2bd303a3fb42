// Bad configs, as a new user would write them, refused at the edge (issue 16): for each one the real
// CLI (main.ts, bundled as the binary bundles it) runs `nodeup plan` against a scratch root and a
// file:// state store, and must exit 2, name the field, print no stack trace in either log format,
// and leave the root as it was; `nodeup validate` (no node) refuses the same config, naming the
// same field. The first row is the good config every other row breaks in one place.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundle } from '../../scripts/build.ts';
import { configHash } from '../model/config.ts';
import { silentLogger } from '../engine/log.ts';
import { validateFiles } from './validate-command.ts';

type Doc = Record<string, unknown>;

interface Case {
  readonly name: string;
  /** Dotted paths (numeric segments index lists) set in the NodeConfig / BootConfig. */
  readonly node?: Readonly<Record<string, unknown>>;
  readonly boot?: Readonly<Record<string, unknown>>;
  /** The field path the message must name; undefined: the config is good. */
  readonly path: string | undefined;
}

const baseNode = (): Doc => ({
  apiVersion: 'nodeup.dev/v1alpha1',
  kind: 'NodeConfig',
  metadata: { cluster: 'demo', instanceGroup: 'control-plane' },
  spec: {
    role: 'control-plane',
    apiServerEndpoint: 'https://10.0.2.15:6443',
    networking: { podCIDR: '10.244.0.0/16', serviceCIDR: '10.96.0.0/12' },
    etcd: { memberCount: 3 },
    files: [{ path: '/etc/nodeup/motd', content: 'a control plane of demo\n', mode: '0644' }],
    units: [{ name: 'hook.service', content: '[Service]\nType=oneshot\nExecStart=/bin/true\n' }],
  },
});

const baseBoot = (state: string, hash: string): Doc => ({
  apiVersion: 'nodeup.dev/v1alpha1',
  kind: 'BootConfig',
  stateStore: `file://${state}`,
  clusterName: 'demo',
  instanceGroup: 'control-plane',
  nodeConfigHash: hash,
  nodeName: 'cp-1',
});

function set(doc: Doc, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let at: Record<string, unknown> = doc;
  keys.slice(0, -1).forEach((k, i) => {
    if (typeof at[k] !== 'object' || at[k] === null) at[k] = /^\d+$/.test(keys[i + 1] ?? '') ? [] : {};
    at = at[k] as Record<string, unknown>;
  });
  at[keys[keys.length - 1] as string] = value;
}

const file = (path: string, extra: Doc = {}): Doc => ({ path, content: 'x\n', mode: '0644', ...extra });

const cases: readonly Case[] = [
  { name: 'the good config', path: undefined },
  // Addresses and ranges
  { name: 'pod CIDR octet above 255', node: { 'spec.networking.podCIDR': '10.300.0.0/16' }, path: 'spec.networking.podCIDR' },
  { name: 'pod CIDR prefix out of range', node: { 'spec.networking.podCIDR': '10.244.0.0/33' }, path: 'spec.networking.podCIDR' },
  { name: 'pod CIDR with host bits', node: { 'spec.networking.podCIDR': '10.244.0.1/16' }, path: 'spec.networking.podCIDR' },
  { name: 'pod CIDR without prefix', node: { 'spec.networking.podCIDR': '10.244.0.0' }, path: 'spec.networking.podCIDR' },
  { name: 'service CIDR with host bits', node: { 'spec.networking.serviceCIDR': '10.96.0.5/12' }, path: 'spec.networking.serviceCIDR' },
  { name: 'IPv6 service CIDR prefix out of range', node: { 'spec.networking.serviceCIDR': 'fd00::/129' }, path: 'spec.networking.serviceCIDR' },
  { name: 'service CIDR with a leading-zero octet', node: { 'spec.networking.serviceCIDR': '10.096.0.0/12' }, path: 'spec.networking.serviceCIDR' },
  { name: 'pod and service ranges overlap', node: { 'spec.networking.podCIDR': '10.96.0.0/16' }, path: 'spec.networking.serviceCIDR' },
  { name: 'pod range contains the service range', node: { 'spec.networking.podCIDR': '10.0.0.0/8' }, path: 'spec.networking.serviceCIDR' },
  { name: 'pod and service ranges of two families', node: { 'spec.networking.podCIDR': 'fd00:10:244::/56' }, path: 'spec.networking.serviceCIDR' },
  { name: 'service range too small for the cluster DNS address', node: { 'spec.networking.serviceCIDR': '10.96.0.0/29' }, path: 'spec.kubelet.clusterDNS' },
  { name: 'node address CIDR octet above 255', node: { 'spec.networking.nodeAddress.cidr': '192.168.300.0/24' }, path: 'spec.networking.nodeAddress.cidr' },
  { name: 'node address CIDR with host bits', node: { 'spec.networking.nodeAddress.cidr': '192.168.77.5/24' }, path: 'spec.networking.nodeAddress.cidr' },
  { name: 'node address CIDR of IPv6', node: { 'spec.networking.nodeAddress.cidr': 'fd00::/64' }, path: 'spec.networking.nodeAddress.cidr' },
  { name: 'node address range inside the pod range', node: { 'spec.networking.nodeAddress.cidr': '10.244.7.0/24' }, path: 'spec.networking.nodeAddress.cidr' },
  { name: 'node CIDR mask not longer than the pod prefix', node: { 'spec.networking.bridge.nodeCIDRMaskSize': 16 }, path: 'spec.networking.bridge.nodeCIDRMaskSize' },
  { name: 'cluster DNS octet above 255', node: { 'spec.kubelet.clusterDNS': ['10.96.0.300'] }, path: 'spec.kubelet.clusterDNS.0' },
  { name: 'cluster DNS outside the service range', node: { 'spec.kubelet.clusterDNS': ['10.0.0.10'] }, path: 'spec.kubelet.clusterDNS.0' },
  { name: 'cluster DNS is the kubernetes Service address', node: { 'spec.kubelet.clusterDNS': ['10.96.0.1'] }, path: 'spec.kubelet.clusterDNS.0' },
  { name: 'cluster DNS of the other family', node: { 'spec.kubelet.clusterDNS': ['fd00::a'] }, path: 'spec.kubelet.clusterDNS.0' },
  { name: 'second cluster DNS is a host name', node: { 'spec.kubelet.clusterDNS': ['10.96.0.10', 'dns.local'] }, path: 'spec.kubelet.clusterDNS.1' },
  // URLs
  { name: 'endpoint host octet above 255', node: { 'spec.apiServerEndpoint': 'https://10.0.2.300:6443' }, path: 'spec.apiServerEndpoint' },
  { name: 'endpoint port above 65535', node: { 'spec.apiServerEndpoint': 'https://10.0.2.15:70000' }, path: 'spec.apiServerEndpoint' },
  { name: 'endpoint port 0', node: { 'spec.apiServerEndpoint': 'https://10.0.2.15:0' }, path: 'spec.apiServerEndpoint' },
  { name: 'endpoint without a host', node: { 'spec.apiServerEndpoint': 'https://:6443' }, path: 'spec.apiServerEndpoint' },
  { name: 'endpoint of another scheme', node: { 'spec.apiServerEndpoint': 'tcp://10.0.2.15:6443' }, path: 'spec.apiServerEndpoint' },
  { name: 'endpoint inside the service range', node: { 'spec.apiServerEndpoint': 'https://10.96.0.1:443' }, path: 'spec.apiServerEndpoint' },
  { name: 'endpoint inside the pod range', node: { 'spec.apiServerEndpoint': 'https://10.244.0.5:6443' }, path: 'spec.apiServerEndpoint' },
  { name: 'asset mirror port above 65535', node: { 'spec.assets.mirrors': ['https://mirror.example:99999/k8s'] }, path: 'spec.assets.mirrors.0' },
  { name: 'asset mirror over ftp', node: { 'spec.assets.mirrors': ['ftp://mirror.example/k8s'] }, path: 'spec.assets.mirrors.0' },
  { name: 'asset override URL host octet above 255', node: { 'spec.assets.overrides.runc': { urls: ['https://10.0.0.256/runc'], sha256: 'a'.repeat(64) } }, path: 'spec.assets.overrides.runc.urls.0' },
  { name: 'registry mirror port above 65535', node: { 'spec.containerd.registryMirrors': { 'docker.io': ['https://mirror.example:65536'] } }, path: 'spec.containerd.registryMirrors.docker.io.0' },
  { name: 'image archive URL without a host', node: { 'spec.images.archives': [{ name: 'registry.k8s.io/pause:3.10', urls: ['https://'], sha256: 'b'.repeat(64) }] }, path: 'spec.images.archives.0.urls.0' },
  // Files and units
  { name: 'file path with ..', node: { 'spec.files.0.path': '/etc/nodeup/../motd' }, path: 'spec.files.0.path' },
  { name: 'file path with //', node: { 'spec.files.0.path': '/etc//motd' }, path: 'spec.files.0.path' },
  { name: 'file path with a trailing /', node: { 'spec.files.0.path': '/etc/nodeup/motd/' }, path: 'spec.files.0.path' },
  { name: 'file path with ./', node: { 'spec.files.0.path': '/etc/./motd' }, path: 'spec.files.0.path' },
  { name: 'relative file path', node: { 'spec.files.0.path': 'etc/motd' }, path: 'spec.files.0.path' },
  { name: 'the same file path twice', node: { 'spec.files.1': file('/etc/nodeup/motd') }, path: 'spec.files.1.path' },
  { name: 'file mode as a bare YAML number', node: { 'spec.files.0.mode': 644 }, path: 'spec.files.0.mode' },
  { name: 'file mode with a digit above 7', node: { 'spec.files.0.mode': '0694' }, path: 'spec.files.0.mode' },
  { name: 'file over kubelet config', node: { 'spec.files.0.path': '/var/lib/kubelet/config.yaml' }, path: 'spec.files.0.path' },
  { name: 'file over containerd config', node: { 'spec.files.0.path': '/etc/containerd/config.toml' }, path: 'spec.files.0.path' },
  { name: 'file over the kubelet binary', node: { 'spec.files.0.path': '/usr/local/bin/kubelet' }, path: 'spec.files.0.path' },
  { name: 'file over the containerd archive member', node: { 'spec.files.0.path': '/usr/local/bin/containerd' }, path: 'spec.files.0.path' },
  { name: 'file over the API server manifest', node: { 'spec.files.0.path': '/etc/kubernetes/manifests/kube-apiserver.yaml' }, path: 'spec.files.0.path' },
  { name: 'file over the kubelet unit file', node: { 'spec.files.0.path': '/etc/systemd/system/kubelet.service' }, path: 'spec.files.0.path' },
  { name: 'file where nodeup needs a directory', node: { 'spec.files.0.path': '/etc/kubernetes/pki' }, path: 'spec.files.0.path' },
  { name: 'file over the run receipt', node: { 'spec.files.0.path': '/var/lib/nodeup/status.json' }, path: 'spec.files.0.path' },
  { name: "file over the user's own unit", node: { 'spec.files.0.path': '/etc/systemd/system/hook.service' }, path: 'spec.files.0.path' },
  { name: 'the same unit twice', node: { 'spec.units.1': { name: 'hook.service', content: '[Service]\nExecStart=/bin/true\n' } }, path: 'spec.units.1.name' },
  { name: "unit named as nodeup's kubelet unit", node: { 'spec.units.0.name': 'kubelet.service' }, path: 'spec.units.0.name' },
  { name: "unit named as nodeup's containerd unit", node: { 'spec.units.0.name': 'containerd.service' }, path: 'spec.units.0.name' },
  { name: "unit named as nodeup's backup timer", node: { 'spec.units.0.name': 'nodeup-etcd-backup.timer' }, path: 'spec.units.0.name' },
  { name: "unit named as nodeup's own service", node: { 'spec.units.0.name': 'nodeup.service' }, path: 'spec.units.0.name' },
  { name: 'unit name without a type', node: { 'spec.units.0.name': 'hook' }, path: 'spec.units.0.name' },
  // Cross-field rules
  { name: 'unknown asset override', node: { 'spec.assets.overrides.kubelett': { urls: ['https://mirror.example/kubelet'], sha256: 'c'.repeat(64) } }, path: 'spec.assets.overrides.kubelett' },
  { name: 'unknown preflight check ignored', node: { 'spec.preflight.ignore': ['Swapp'] }, path: 'spec.preflight.ignore.0' },
  { name: 'preflight check name in the wrong case', node: { 'spec.preflight.ignore': ['Swap', 'memory'] }, path: 'spec.preflight.ignore.1' },
  { name: 'two etcd members', node: { 'spec.etcd.memberCount': 2 }, path: 'spec.etcd.memberCount' },
  { name: 'four etcd members', node: { 'spec.etcd.memberCount': 4 }, path: 'spec.etcd.memberCount' },
  { name: 'a leader renew deadline as long as the lease', node: { 'spec.controlPlane.leaderElection': { leaseDurationSeconds: 30, renewDeadlineSeconds: 30 } }, path: 'spec.controlPlane.leaderElection.renewDeadlineSeconds' },
  { name: 'a leader retry period too close to the renew deadline', node: { 'spec.controlPlane.leaderElection': { retryPeriodSeconds: 9 } }, path: 'spec.controlPlane.leaderElection.retryPeriodSeconds' },
  { name: 'backup schedule in words', node: { 'spec.etcd.backup.schedule': 'every 15 minutes' }, path: 'spec.etcd.backup.schedule' },
  { name: 'backup schedule hour 25', node: { 'spec.etcd.backup.schedule': '25:00' }, path: 'spec.etcd.backup.schedule' },
  { name: 'backup schedule month 13', node: { 'spec.etcd.backup.schedule': '*-13-01 00:00:00' }, path: 'spec.etcd.backup.schedule' },
  { name: 'backup schedule misspelt weekday', node: { 'spec.etcd.backup.schedule': 'Mon..Fry 02:00' }, path: 'spec.etcd.backup.schedule' },
  { name: 'unsupported Kubernetes minor', node: { 'spec.kubernetesVersion': 'v1.99.0' }, path: 'spec.kubernetesVersion' },
  { name: 'Kubernetes version without v', node: { 'spec.kubernetesVersion': '1.35.1' }, path: 'spec.kubernetesVersion' },
  { name: "API server port is etcd's client port", node: { 'spec.controlPlane.apiServer.port': 2379 }, path: 'spec.controlPlane.apiServer.port' },
  { name: "API server port is kubelet's", node: { 'spec.controlPlane.apiServer.port': 10250 }, path: 'spec.controlPlane.apiServer.port' },
  { name: 'SAN that is neither an IP nor a name', node: { 'spec.controlPlane.apiServer.extraSANs': ['10.0.0.300'] }, path: 'spec.controlPlane.apiServer.extraSANs.0' },
  { name: 'SAN with an underscore', node: { 'spec.controlPlane.apiServer.extraSANs': ['api_lb.example.com'] }, path: 'spec.controlPlane.apiServer.extraSANs.0' },
  { name: 'metadata names another instance group', node: { 'metadata.instanceGroup': 'nodes' }, path: 'metadata.instanceGroup' },
  { name: 'metadata names another cluster', node: { 'metadata.cluster': 'prod' }, path: 'metadata.cluster' },
  // The boot config
  { name: 'node name with capitals', boot: { nodeName: 'CP-1' }, path: 'nodeName' },
  { name: 'node name that climbs the state store', boot: { nodeName: '../pki/ca' }, path: 'nodeName' },
  { name: 'node name with a slash', boot: { nodeName: 'cp/1' }, path: 'nodeName' },
  { name: 'node name with an underscore', boot: { nodeName: 'cp_1' }, path: 'nodeName' },
  { name: 'node name over 253 characters', boot: { nodeName: `${'a'.repeat(60)}.`.repeat(4) + 'a'.repeat(10) }, path: 'nodeName' },
  { name: 'node name ending in a dot', boot: { nodeName: 'cp-1.' }, path: 'nodeName' },
  { name: 'state store over ftp', boot: { stateStore: 'ftp://store.example/x' }, path: 'stateStore' },
  { name: 'state store bucket missing', boot: { stateStore: 's3://' }, path: 'stateStore' },
  { name: 'state store host octet above 255', boot: { stateStore: 'https://10.0.0.300/store' }, path: 'stateStore' },
  { name: 'state store port 0', boot: { stateStore: 'https://store.example:0/x' }, path: 'stateStore' },
  { name: 'S3 endpoint port above 65535', boot: { s3: { endpoint: 'http://minio.example:99999' } }, path: 's3.endpoint' },
  { name: 'asset mirror host octet above 255', boot: { assetMirrors: ['https://999.0.0.1/assets'] }, path: 'assetMirrors.0' },
  { name: 'cluster name with capitals', boot: { clusterName: 'Demo' }, path: 'clusterName' },
  { name: 'instance group with an underscore', boot: { instanceGroup: 'control_plane' }, path: 'instanceGroup' },
  { name: 'short config hash', boot: { nodeConfigHash: 'sha256:abc' }, path: 'nodeConfigHash' },
  { name: 'misspelt key', boot: { nodename: 'cp-1' }, path: 'nodename' },
  { name: 'boot config of another cluster', boot: { clusterName: 'prod' }, path: 'metadata.cluster' },
];

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly before: readonly string[];
  readonly after: readonly string[];
  readonly validate: { readonly ok: readonly string[]; readonly failures: readonly string[] };
}

async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { recursive: true, withFileTypes: true })) {
    const p = join(e.parentPath, e.name);
    const st = await fsp.lstat(p);
    out.push(`${p.slice(dir.length)} ${st.size} ${st.mtimeMs}`);
  }
  return out.sort();
}

const repo = resolve(import.meta.dirname, '../..');
const fixtureRoot = join(repo, 'tests/fixtures/roots/debian-12');
const work = fs.mkdtempSync(join(tmpdir(), 'nodeup-bad-configs-'));
const results = new Map<string, Outcome>();

function runCli(cli: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [cli, ...args], { cwd: work, env: { ...process.env, NODEUP_LOG_LEVEL: 'info' } }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

async function runCase(cli: string, c: Case, i: number): Promise<Outcome> {
  const dir = join(work, `case-${i}`);
  const state = join(dir, 'state');
  const root = join(dir, 'root');
  await fsp.mkdir(join(state, 'igconfig/control-plane'), { recursive: true });
  await fsp.cp(fixtureRoot, root, { recursive: true });
  const node = baseNode();
  for (const [k, v] of Object.entries(c.node ?? {})) set(node, k, v);
  const nodeText = yaml.dump(node);
  await fsp.writeFile(join(state, 'igconfig/control-plane/node.yaml'), nodeText);
  const boot = baseBoot(state, configHash(nodeText));
  for (const [k, v] of Object.entries(c.boot ?? {})) set(boot, k, v);
  const bootFile = join(dir, 'boot.yaml');
  await fsp.writeFile(bootFile, yaml.dump(boot));
  const before = await tree(root);
  const format = i % 2 === 0 ? 'json' : 'pretty';
  const res = await runCli(cli, ['plan', '--config', bootFile, '--root', root, '--skip', 'packages', '--log-format', format]);
  const after = await tree(root);
  const validate = await validateFiles([bootFile], silentLogger);
  return { ...res, before, after, validate };
}

describe('bad configs are refused at the edge', () => {
  beforeAll(async () => {
    const cli = await bundle({ version: '0.0.0-test', commit: 'test' }, join(work, 'nodeup.cjs'));
    const queue = cases.map((c, i) => [c, i] as const);
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next; next = queue.shift()) results.set(next[0].name, await runCase(cli, next[0], next[1]));
    };
    await Promise.all([worker(), worker(), worker()]);
  }, 600_000);
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  it('has at least 60 bad configs across both documents', () => {
    expect(cases.filter((c) => c.path !== undefined).length).toBeGreaterThanOrEqual(60);
    expect(cases.filter((c) => c.boot !== undefined).length).toBeGreaterThanOrEqual(15);
  });

  it('passes the good config (plan exits 0, validate says ok)', () => {
    const r = results.get('the good config');
    expect(r?.stderr).not.toMatch(/CONFIG_INVALID/);
    expect(r?.code).toBe(0);
    expect(r?.validate).toEqual({ ok: [expect.stringMatching(/^ok: /)], failures: [] });
  });

  it.each(cases.filter((c) => c.path !== undefined).map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const r = results.get(c.name);
    if (r === undefined) throw new Error(`no result for ${c.name}`);
    expect(r.code, r.stderr).toBe(2);
    // The field's path starts a problem line (or the message after the file name).
    const named = new RegExp(`(^|\\s|: )${(c.path ?? '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `, 'm');
    expect(r.stderr).toMatch(named);
    expect(r.stderr).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
    expect(r.stderr).not.toMatch(/"stack"|\\n\s+at /);
    expect(r.stderr).not.toMatch(/internal error|duplicate task key/);
    expect(r.after).toEqual(r.before);
    expect(r.validate.failures.join('\n')).toMatch(named);
    expect(r.validate.ok).toEqual([]);
  });
});
