import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { configHash, parseBootConfig } from '../agent/config.ts';
import { silentLogger } from '../agent/log.ts';
import { FileStore } from '../statestore/file-store.ts';
import { cloudRequests, launchCloud, readNodeConfigFile, renderOnly, type AwsLaunchOptions } from './launch.ts';
import type { InstanceInfo, InstanceRequest, Provider } from './provider.ts';

const nodeYaml = `apiVersion: nodeup.dev/v1alpha1
kind: NodeConfig
metadata: {cluster: c1, instanceGroup: workers}
spec:
  role: worker
  apiServerEndpoint: https://10.0.0.10:6443
`;

async function setup(): Promise<{ dir: string; file: string }> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-launch-'));
  const file = path.join(dir, 'node.yaml');
  await fsp.writeFile(file, nodeYaml);
  return { dir, file };
}

interface CloudConfig {
  write_files: { path: string; content: string; encoding?: string; permissions: string }[];
}

describe('renderOnly (user-data for Vagrant and other tools)', () => {
  it('writes one 0600 user-data per node with the config, the CA and the bootstrap token of a file:// store', async () => {
    const { dir, file } = await setup();
    const store = new FileStore(pathToFileURL(path.join(dir, 'store')).href);
    await store.write('pki/ca.crt', 'CA-CERT');
    await store.write('secrets/bootstrap-token', 'abcdef.0123456789abcdef', { secret: true });
    const out = await renderOnly({
      nodeConfigPath: file,
      count: 2,
      applyArgs: [],
      outDir: path.join(dir, 'ud'),
      stateStore: store.url,
      binary: { url: 'file:///vagrant/dist/nodeup-linux-amd64', sha256: 'c'.repeat(64) },
      log: silentLogger,
    });
    expect(out.map((f) => path.basename(f))).toEqual(['workers-1.user-data', 'workers-2.user-data']);
    expect((await fsp.stat(out[0]!)).mode & 0o777).toBe(0o600);
    const doc = yaml.load(await fsp.readFile(out[1]!, 'utf8')) as CloudConfig;
    const files = Object.fromEntries(doc.write_files.map((f) => [f.path, f.encoding === 'b64' ? Buffer.from(f.content, 'base64').toString() : f.content]));
    expect(files['/var/lib/nodeup/launch-store/igconfig/workers/node.yaml']).toBe(nodeYaml);
    expect(files['/var/lib/nodeup/launch-store/pki/ca.crt']).toBe('CA-CERT');
    expect(files['/var/lib/nodeup/launch-store/secrets/bootstrap-token']).toBe('abcdef.0123456789abcdef');
    const boot = parseBootConfig(files['/etc/nodeup/boot.yaml']!, 'boot');
    expect(boot).toMatchObject({ nodeName: 'workers-2', instanceGroup: 'workers', nodeConfigHash: configHash(nodeYaml), stateStore: 'file:///var/lib/nodeup/launch-store' });
    expect(files['/usr/local/lib/nodeup/launch-boot.sh']).toContain('file:///vagrant/dist/nodeup-linux-amd64');
  });

  it('refuses a NodeConfig with problems, naming the file', async () => {
    const { dir } = await setup();
    const bad = path.join(dir, 'bad.yaml');
    await fsp.writeFile(bad, nodeYaml.replace('role: worker', 'role: boss'));
    await expect(readNodeConfigFile(bad)).rejects.toThrow(/bad\.yaml: 1 problem:\n {2}spec\.role/);
  });
});

class FakeProvider implements Provider {
  readonly name = 'fake';
  readonly launched: InstanceRequest[] = [];
  async launch(reqs: readonly InstanceRequest[]): Promise<readonly InstanceInfo[]> {
    this.launched.push(...reqs);
    return reqs.map((r, i) => ({ name: r.name, provider: 'fake', cluster: r.cluster, instanceGroup: r.instanceGroup, state: 'pending' as const, id: `i-${i}`, createdAt: new Date().toISOString() }));
  }
  async list(): Promise<readonly InstanceInfo[]> {
    return [];
  }
  async delete(): Promise<void> {}
}

describe('launchCloud', () => {
  const opts = (file: string, provider: Provider, store: FileStore): AwsLaunchOptions => ({
    log: silentLogger,
    progress: () => {},
    nodeConfigPath: file,
    count: 2,
    applyArgs: [],
    wait: true,
    timeoutSec: 20,
    progressEverySec: 60,
    provider,
    stateStore: 's3://bucket/c1',
    binaryUrl: 'https://example.invalid/nodeup',
    binarySha256: 'd'.repeat(64),
    openStore: () => store,
  });

  it('hands each node user-data pointing at the s3 store and finishes when receipts appear there', async () => {
    const { dir, file } = await setup();
    const store = new FileStore(pathToFileURL(path.join(dir, 'store')).href);
    const provider = new FakeProvider();
    const receipt = (node: string, result: string) => JSON.stringify({ nodeName: node, result, startedAt: new Date().toISOString(), durationMs: 1234, failed: 1, blocked: 0 });
    const run = launchCloud(opts(file, provider, store));
    await new Promise((r) => setTimeout(r, 300));
    await store.write('nodes/workers-1/status.json', receipt('workers-1', 'converged'));
    await store.write('nodes/workers-2/status.json', receipt('workers-2', 'failed'));
    const res = await run;
    expect(res.ok).toBe(false);
    expect(res.nodes.map((n) => [n.name, n.phase, n.timings.nodeupMs])).toEqual([
      ['workers-1', 'ready', 1234],
      ['workers-2', 'failed', 1234],
    ]);
    const boot = (yaml.load(provider.launched[0]!.userData) as CloudConfig).write_files.find((f) => f.path === '/etc/nodeup/boot.yaml')!;
    expect(parseBootConfig(boot.content, 'boot')).toMatchObject({ stateStore: 's3://bucket/c1', nodeName: 'workers-1' });
    expect(provider.launched[0]!.userData).not.toContain('REPORT=');
  });

  it('refuses a state store cloud nodes cannot read and a binary URL without its hash', async () => {
    const { dir, file } = await setup();
    const store = new FileStore(pathToFileURL(path.join(dir, 'store')).href);
    const cfg = await readNodeConfigFile(file);
    expect(() => cloudRequests({ ...opts(file, new FakeProvider(), store), stateStore: 'file:///x' }, cfg)).toThrow(/--state-store must be an s3:\/\/ or https:\/\/ URL/);
    expect(() => cloudRequests({ ...opts(file, new FakeProvider(), store), binarySha256: undefined }, cfg)).toThrow(/--binary-url and --binary-sha256 go together/);
  });
});
