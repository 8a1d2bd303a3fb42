import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { configHash, parseBootConfig } from '../model/config.ts';
import { silentLogger } from '../engine/log.ts';
import { FileStore } from '../statestore/file-store.ts';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { renderEnvironmentFile, renderLaunchScript } from './render-user-data.ts';
import { cloudRequests, launchCloud, renderOnly, type AwsLaunchOptions } from './launch.ts';
import { readNodeConfigFile, xzUnpacksTo } from './launch-inputs.ts';
import { parseS3Credentials } from './user-data.ts';
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

function filesOf(userData: string): Record<string, string> {
  const doc = yaml.load(userData) as CloudConfig;
  return Object.fromEntries(doc.write_files.map((f) => [f.path, f.encoding === 'b64' ? Buffer.from(f.content, 'base64').toString() : f.content]));
}

/** The boot config the bootstrap script writes (its heredoc). */
function bootOf(userData: string): ReturnType<typeof parseBootConfig> {
  const script = filesOf(userData)['/usr/local/lib/nodeup/bootstrap.sh']!;
  return parseBootConfig(/<<'NODEUP_BOOT_CONFIG_EOF'\n([\s\S]*?)\nNODEUP_BOOT_CONFIG_EOF\n/.exec(script)![1]!, 'boot');
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
      pins: { mirrors: ['file:///vagrant/dist'], sha256: { amd64: 'c'.repeat(64) } },
      log: silentLogger,
    });
    expect(out.map((f) => path.basename(f))).toEqual(['workers-1.user-data', 'workers-2.user-data']);
    expect((await fsp.stat(out[0]!)).mode & 0o777).toBe(0o600);
    const text = await fsp.readFile(out[1]!, 'utf8');
    const files = filesOf(text);
    expect(files['/var/lib/nodeup/launch-store/igconfig/workers/node.yaml']).toBe(nodeYaml);
    expect(files['/var/lib/nodeup/launch-store/pki/ca.crt']).toBe('CA-CERT');
    expect(files['/var/lib/nodeup/launch-store/secrets/bootstrap-token']).toBe('abcdef.0123456789abcdef');
    expect(bootOf(text)).toMatchObject({ nodeName: 'workers-2', instanceGroup: 'workers', nodeConfigHash: configHash(nodeYaml), stateStore: 'file:///var/lib/nodeup/launch-store' });
    expect(files['/usr/local/lib/nodeup/bootstrap.sh']).toContain(`  'file:///vagrant/dist'\n`);
    expect(files['/usr/local/lib/nodeup/bootstrap.sh']).toContain(`NODEUP_SHA256_AMD64='${'c'.repeat(64)}'`);
    expect(files['/usr/local/lib/nodeup/launch-boot.sh']).not.toContain('post');
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
    pins: { mirrors: ['https://example.invalid/nodeup/v1'], sha256: { amd64: 'd'.repeat(64) } },
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
    expect(bootOf(provider.launched[0]!.userData)).toMatchObject({ stateStore: 's3://bucket/c1', nodeName: 'workers-1' });
    expect(provider.launched[0]!.userData).not.toContain('REPORT=');
    expect(filesOf(provider.launched[0]!.userData)['/etc/nodeup/environment']).toBeUndefined();
  });

  it('refuses a state store cloud nodes cannot read, no mirror, no binary hash', async () => {
    const { dir, file } = await setup();
    const store = new FileStore(pathToFileURL(path.join(dir, 'store')).href);
    const cfg = await readNodeConfigFile(file);
    expect(() => cloudRequests({ ...opts(file, new FakeProvider(), store), stateStore: 'file:///x' }, cfg)).toThrow(/--state-store must be an s3:\/\/ or https:\/\/ URL/);
    expect(() => cloudRequests({ ...opts(file, new FakeProvider(), store), pins: { mirrors: [], sha256: { amd64: 'd'.repeat(64) } } }, cfg)).toThrow(/--mirror URL is required/);
    expect(() => cloudRequests({ ...opts(file, new FakeProvider(), store), pins: { mirrors: ['https://m.example.invalid'], sha256: {} } }, cfg)).toThrow(/--sha256-amd64/);
  });
});

describe('parseS3Credentials (--s3-credentials-file)', () => {
  it('reads the key id and secret, with export prefixes, quotes and comments', () => {
    const text = '# lab MinIO\nexport AWS_ACCESS_KEY_ID=minio-lab\nAWS_SECRET_ACCESS_KEY="s3cr3t/+="\n\n';
    expect(parseS3Credentials(text, 'creds.env')).toEqual([
      ['AWS_ACCESS_KEY_ID', 'minio-lab'],
      ['AWS_SECRET_ACCESS_KEY', 's3cr3t/+='],
    ]);
  });
  it('refuses other variables and a missing secret, naming the file and line', () => {
    expect(() => parseS3Credentials('AWS_ACCESS_KEY_ID=a\nPATH=/x\n', 'creds.env')).toThrow(/creds\.env: line 2/);
    expect(() => parseS3Credentials('AWS_ACCESS_KEY_ID=a\n', 'creds.env')).toThrow(/no AWS_SECRET_ACCESS_KEY/);
  });
});

describe('xzUnpacksTo', () => {
  it('tells whether an .xz beside the binary unpacks to it', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-xz-'));
    const file = path.join(dir, 'nodeup-linux-amd64');
    await fsp.writeFile(file, 'binary bytes\n');
    execFileSync('xz', ['-k', file]);
    const sha = createHash('sha256').update('binary bytes\n').digest('hex');
    expect(await xzUnpacksTo(`${file}.xz`, sha)).toBe(true);
    expect(await xzUnpacksTo(`${file}.xz`, 'e'.repeat(64))).toBe(false);
    expect(await xzUnpacksTo(file, sha)).toBe(false); // not xz at all
    await fsp.rm(dir, { recursive: true, force: true });
  });
});

describe('the launch scripts under a real sh', () => {
  it('the launch script parses as POSIX sh, with and without reports', () => {
    const base = { nodeName: 'w-1', bootstrap: '#!/bin/bash\n', binarySha256: 'a'.repeat(64), files: [], preCommands: ['networkctl reload'] };
    execFileSync('sh', ['-n'], { input: renderLaunchScript({ ...base, reportUrl: 'http://10.0.2.2:1' }) });
    execFileSync('sh', ['-n'], { input: renderLaunchScript(base) });
  });
  it('the environment file reads back in sh as systemd reads it', () => {
    const text = renderEnvironmentFile([['NODEUP_APPLY_ARGS', '--only node-files'], ['AWS_SECRET_ACCESS_KEY', 'ab/cd+ef=']]);
    const sourced = execFileSync('sh', ['-c', `eval "$(cat)"; printf '%s|%s' "$NODEUP_APPLY_ARGS" "$AWS_SECRET_ACCESS_KEY"`], { input: text }).toString();
    expect(sourced).toBe('--only node-files|ab/cd+ef=');
  });
});
