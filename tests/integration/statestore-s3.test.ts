// The s3:// state store against a REAL S3-compatible server: MinIO, built from the Go module proxy
// by scripts/fixtures/build.sh minio (run scripts/setup-foundation.sh to get everything this test
// needs). The server listens on 127.0.0.1 with a temp data dir and random credentials, which reach
// the store through the AWS SDK's default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configHash } from '../../src/model/config.ts';
import { AgentError } from '../../src/engine/errors.ts';
import { createLogger } from '../../src/engine/log.ts';
import { S3Store } from '../../src/statestore/s3-store.ts';
import { openStateStore } from '../../src/statestore/open.ts';
import '../../src/statestore/backends.ts';

const repo = resolve(import.meta.dirname, '../..');
const fast = { attempts: 3, baseMs: 50, maxMs: 200 };

function minioBinary(): string {
  let dir: string;
  try {
    dir = execFileSync(join(repo, 'scripts/fixtures/build.sh'), ['--bin', 'minio'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    throw new Error('MinIO is not built: run scripts/setup-foundation.sh (or scripts/fixtures/build.sh minio) first');
  }
  return join(dir, 'minio');
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => res(port));
    });
  });
}

async function waitLive(endpoint: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`minio exited with ${child.exitCode}:\n${output()}`);
    try {
      const res = await fetch(`${endpoint}/minio/health/live`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`minio did not become live within 60s:\n${output()}`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

const env = {
  user: `nodeup-${randomBytes(4).toString('hex')}`,
  password: randomBytes(18).toString('base64url'),
};
const saved: Record<string, string | undefined> = {};
function setEnv(vars: Record<string, string>): void {
  for (const [k, v] of Object.entries(vars)) {
    if (!(k in saved)) saved[k] = process.env[k];
    process.env[k] = v;
  }
}

describe('s3:// state store against a real MinIO on 127.0.0.1', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'nodeup-minio-'));
  let child: ChildProcess;
  let endpoint = '';
  let out = '';
  const bucket = 'nodeup-state';
  const s3Settings = (): { endpoint: string; region: string; forcePathStyle: boolean } => ({ endpoint, region: 'us-east-1', forcePathStyle: true });
  const stores: S3Store[] = [];
  const open = (url: string, extra: { log?: ReturnType<typeof createLogger> } = {}): S3Store => {
    const s = new S3Store(url, { s3: s3Settings(), retry: fast, ...extra });
    stores.push(s);
    return s;
  };

  beforeAll(async () => {
    const bin = minioBinary();
    const [port, consolePort] = [await freePort(), await freePort()];
    endpoint = `http://127.0.0.1:${port}`;
    child = spawn(bin, ['server', '--quiet', '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`, dataDir], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dataDir, MINIO_ROOT_USER: env.user, MINIO_ROOT_PASSWORD: env.password, MINIO_BROWSER: 'off', MINIO_UPDATE: 'off' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    await waitLive(endpoint, child, () => out);
    // Credentials through the SDK's default chain; never the instance metadata service here.
    setEnv({ AWS_ACCESS_KEY_ID: env.user, AWS_SECRET_ACCESS_KEY: env.password, AWS_EC2_METADATA_DISABLED: 'true' });
    const admin = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true });
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    admin.destroy();
  });

  afterAll(async () => {
    for (const s of stores) s.close();
    if (child) await stop(child);
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('writes, reads, lists and removes keys under the cluster prefix', async () => {
    const store = open(`s3://${bucket}/clusters/alpha`);
    expect(await store.read('igconfig/nodes/node.yaml')).toBeUndefined();
    expect(await store.write('igconfig/nodes/node.yaml', 'kind: NodeConfig\n')).toBe(true);
    expect(await store.write('pki/ca.crt', Buffer.from('-----BEGIN CERTIFICATE-----\n'))).toBe(true);
    expect(await store.write('secrets/bootstrap-token', 'abcdef.0123456789abcdef', { secret: true })).toBe(true);
    expect((await store.read('igconfig/nodes/node.yaml'))?.toString()).toBe('kind: NodeConfig\n');
    expect(await store.list('')).toEqual(['igconfig/nodes/node.yaml', 'pki/ca.crt', 'secrets/bootstrap-token']);
    expect(await store.list('pki/')).toEqual(['pki/ca.crt']);
    // Overwrite (not create-only) replaces.
    expect(await store.write('igconfig/nodes/node.yaml', 'kind: NodeConfig # v2\n')).toBe(true);
    expect((await store.read('igconfig/nodes/node.yaml'))?.toString()).toBe('kind: NodeConfig # v2\n');
    await store.remove('pki/ca.crt');
    await store.remove('pki/ca.crt'); // removing a missing key is not an error
    expect(await store.read('pki/ca.crt')).toBeUndefined();
    expect(await store.list('pki/')).toEqual([]);
  });

  it('keeps clusters apart: a prefix never lists another cluster with a longer name', async () => {
    const a = open(`s3://${bucket}/clusters/beta`);
    const b = open(`s3://${bucket}/clusters/beta2`);
    await a.write('backups/etcd/main/1.db', 'one');
    await b.write('backups/etcd/main/2.db', 'two');
    await a.write('backups/etcd/main2/3.db', 'three');
    expect(await a.list('backups/etcd/main/')).toEqual(['backups/etcd/main/1.db']);
    expect(await b.list('')).toEqual(['backups/etcd/main/2.db']);
  });

  it('create-only writes: the second one returns false and leaves the first content', async () => {
    const store = open(`s3://${bucket}/clusters/gamma`);
    expect(await store.write('locks/apply', 'first', { ifAbsent: true })).toBe(true);
    expect(await store.write('locks/apply', 'second', { ifAbsent: true })).toBe(false);
    expect((await store.read('locks/apply'))?.toString()).toBe('first');
    await store.remove('locks/apply');
    expect(await store.write('locks/apply', 'third', { ifAbsent: true })).toBe(true);
  });

  it('create-only races: of two concurrent writers exactly one wins, every time', async () => {
    const store1 = open(`s3://${bucket}/clusters/delta`);
    const store2 = open(`s3://${bucket}/clusters/delta`);
    for (let i = 0; i < 20; i++) {
      const key = `etcd/main/lock-${i}`;
      const [r1, r2] = await Promise.all([store1.write(key, 'writer-1', { ifAbsent: true }), store2.write(key, 'writer-2', { ifAbsent: true })]);
      expect([r1, r2].filter(Boolean), `race ${i}`).toHaveLength(1);
      expect((await store1.read(key))?.toString()).toBe(r1 ? 'writer-1' : 'writer-2');
    }
  });

  it('lists past one page (more than 1000 keys)', async () => {
    const store = open(`s3://${bucket}/clusters/epsilon`);
    const keys = Array.from({ length: 1003 }, (_, i) => `nodes/n${String(i).padStart(4, '0')}/status.json`);
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => store.write(k, '{}')));
    const listed = await store.list('nodes/');
    expect(listed).toHaveLength(1003);
    expect(listed).toEqual(keys);
  });

  it('openStateStore builds the s3 backend from the boot config settings', async () => {
    const store = openStateStore(`s3://${bucket}/clusters/alpha`, { s3: s3Settings(), retry: fast });
    expect((await store.read('igconfig/nodes/node.yaml'))?.toString()).toBe('kind: NodeConfig # v2\n');
  });

  it('the agent reads its NodeConfig from s3:// (boot config s3 settings) and publishes its receipt there', async () => {
    const store = open(`s3://${bucket}/clusters/e2e`);
    const nodeConfig = [
      'apiVersion: nodeup.dev/v1alpha1',
      'kind: NodeConfig',
      'metadata: { cluster: e2e, instanceGroup: workers }',
      'spec:',
      '  role: control-plane',
      '  apiServerEndpoint: https://10.0.0.10:6443',
      '  files:',
      '    - path: /etc/nodeup-e2e/hello.txt',
      '      content: "hello from s3\\n"',
      '',
    ].join('\n');
    await store.write('igconfig/workers/node.yaml', nodeConfig);
    const work = mkdtempSync(join(tmpdir(), 'nodeup-s3-e2e-'));
    try {
      mkdirSync(join(work, 'root/etc'), { recursive: true });
      writeFileSync(join(work, 'root/etc/os-release'), 'ID=debian\nVERSION_ID="12"\n');
      writeFileSync(
        join(work, 'boot.yaml'),
        [
          'apiVersion: nodeup.dev/v1alpha1',
          'kind: BootConfig',
          `stateStore: s3://${bucket}/clusters/e2e`,
          'clusterName: e2e',
          'instanceGroup: workers',
          `nodeConfigHash: ${configHash(nodeConfig)}`,
          'nodeName: e2e-node',
          's3:',
          `  endpoint: ${endpoint}`,
          '  forcePathStyle: true',
          '',
        ].join('\n'),
      );
      const cli = (mode: string): string =>
        execFileSync(process.execPath, [join(repo, 'src/app/main.ts'), mode, '--config', join(work, 'boot.yaml'), '--root', join(work, 'root'), '--only', 'node-files', '--log-format', 'json'], {
          encoding: 'utf8',
          env: { ...process.env, NODEUP_LOG_LEVEL: 'warn' },
        });
      expect(cli('plan')).toContain('+ file:/etc/nodeup-e2e/hello.txt');
      expect(await store.read('nodes/e2e-node/status.json')).toBeUndefined(); // plan publishes nothing
      cli('apply');
      const receipt = JSON.parse((await store.read('nodes/e2e-node/status.json'))?.toString() ?? '{}') as { result?: string; configHash?: string };
      expect(receipt).toMatchObject({ result: 'converged', configHash: configHash(nodeConfig) });
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('nodeup mirror --s3 uploads the verified files and the manifest, skips what the bucket has, replaces what someone changed', async () => {
    const work = mkdtempSync(join(tmpdir(), 'nodeup-mirror-s3-'));
    try {
      // A local "upstream" in mirror layout (--source file://...), one file per asset of a worker.
      const versions: Record<string, [string, string]> = {
        kubelet: ['1.35.1', 'kubelet'],
        kubectl: ['1.35.1', 'kubectl'],
        containerd: ['2.2.1', 'containerd-2.2.1-linux.tar.gz'],
        runc: ['1.3.4', 'runc'],
        'cni-plugins': ['1.8.0', 'cni-plugins-v1.8.0.tgz'],
        crictl: ['1.35.0', 'crictl-v1.35.0-linux.tar.gz'],
      };
      const overrides: string[] = [];
      const paths: string[] = [];
      for (const [name, [version, file]] of Object.entries(versions)) {
        const bytes = randomBytes(50_000 + paths.length * 1000);
        const rel = `${name}/${version}/linux-amd64/${file}`;
        mkdirSync(join(work, 'upstream', rel, '..'), { recursive: true });
        writeFileSync(join(work, 'upstream', rel), bytes);
        overrides.push(`      ${name}: {version: "${version}", urls: ["https://downloads.example.invalid/${file}"], sha256: ${createHash('sha256').update(bytes).digest('hex')}}`);
        paths.push(rel);
      }
      const spec = ['role: worker', 'kubernetesVersion: v1.35.1', 'apiServerEndpoint: https://10.0.0.10:6443', 'kubeProxy: {enabled: false}', 'assets:', '  overrides:'];
      writeFileSync(
        join(work, 'node.yaml'),
        ['apiVersion: nodeup.dev/v1alpha1', 'kind: NodeConfig', 'metadata: {cluster: airgap, instanceGroup: nodes}', 'spec:', ...spec.map((l) => `  ${l}`), ...overrides, ''].join('\n'),
      );
      const target = `s3://${bucket}/mirror/v1`;
      const args = ['--arch', 'amd64', '--dir', join(work, 'mirror'), '--no-images', '--source', `file://${join(work, 'upstream')}`, '--s3', target, '--s3-endpoint', endpoint, '--s3-path-style'];
      const run = (): { status: number | null; stdout: string; stderr: string } =>
        spawnSync(process.execPath, [join(repo, 'src/app/main.ts'), 'mirror', '--node-config', join(work, 'node.yaml'), ...args, '--log-format', 'json'], { encoding: 'utf8' });
      const first = run();
      expect(first.status, first.stdout + first.stderr).toBe(0);
      expect(first.stdout).toContain(`s3: ${target}: 7 uploaded`);
      expect(first.stdout).toContain('0 already there, 0 failed');
      const store = open(target);
      for (const rel of paths) expect((await store.read(rel))?.equals(readFileSync(join(work, 'upstream', rel))), rel).toBe(true);
      const manifest = JSON.parse(String(await store.read('mirror-manifest.json'))) as { files: { path: string }[] };
      expect(manifest.files.map((f) => f.path).sort()).toEqual([...paths].sort());

      // Again: only the manifest (it carries the time) goes up.
      const second = run();
      expect(second.status, second.stdout + second.stderr).toBe(0);
      expect(second.stdout).toContain(`s3: ${target}: 1 uploaded`);
      expect(second.stdout).toContain('6 already there, 0 failed');

      // An object replaced by other bytes (no sha256 metadata) is uploaded again.
      await store.write(paths[0]!, 'tampered');
      expect(run().stdout).toContain(`s3: ${target}: 2 uploaded`);
      expect((await store.read(paths[0]!))?.equals(readFileSync(join(work, 'upstream', paths[0]!)))).toBe(true);

      // The request checksum: the server refuses bytes that do not hash to what the mirror verified.
      const err = await store.putFile('mirror-wrong/file', join(work, 'upstream', paths[0]!), 'f'.repeat(64)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AgentError);
      expect((err as AgentError).message).toMatch(/cannot upload s3:\/\/nodeup-state\/mirror\/v1\/mirror-wrong\/file: \S*(Digest|Checksum)/i);
      expect(await store.read('mirror-wrong/file')).toBeUndefined();
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 120_000);

  it('a missing bucket is a clear, non-retried error naming the bucket', async () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'json', stream: { write: (l: string) => void lines.push(l) } });
    const store = open('s3://no-such-bucket-here/c', { log });
    const err = await store.read('igconfig/nodes/node.yaml').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe('STATE_STORE');
    expect((err as AgentError).message).toMatch(/cannot read s3:\/\/no-such-bucket-here\/c\/igconfig\/nodes\/node\.yaml: NoSuchBucket.*create it or fix stateStore/);
    expect(lines.filter((l) => l.includes('retrying'))).toEqual([]);
  });

  it('wrong credentials are a clear, non-retried error that says which settings to check', async () => {
    const good = process.env.AWS_SECRET_ACCESS_KEY;
    process.env.AWS_SECRET_ACCESS_KEY = 'not-the-password';
    try {
      const store = open(`s3://${bucket}/clusters/alpha`);
      const err = await store.read('igconfig/nodes/node.yaml').catch((e: unknown) => e);
      expect((err as AgentError).code).toBe('STATE_STORE');
      expect((err as AgentError).message).toMatch(/SignatureDoesNotMatch.*check AWS_ACCESS_KEY_ID \/ AWS_SECRET_ACCESS_KEY or the instance role/);
      expect((err as AgentError).message).not.toContain('not-the-password');
      expect((err as AgentError).message).not.toContain(env.password);
    } finally {
      process.env.AWS_SECRET_ACCESS_KEY = good;
    }
  });

  it('an unreachable endpoint is retried with backoff (each wait logged), then a clear STATE_STORE error', async () => {
    const deadPort = await freePort();
    const lines: string[] = [];
    const log = createLogger({ format: 'json', stream: { write: (l: string) => void lines.push(l) } });
    const store = new S3Store(`s3://${bucket}/clusters/alpha`, {
      s3: { endpoint: `http://127.0.0.1:${deadPort}`, region: 'us-east-1', forcePathStyle: true },
      retry: fast,
      log,
    });
    stores.push(store);
    const t0 = Date.now();
    const err = await store.read('igconfig/nodes/node.yaml').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe('STATE_STORE');
    expect((err as AgentError).message).toMatch(
      /state store s3:\/\/nodeup-state\/clusters\/alpha: cannot read s3:\/\/nodeup-state\/clusters\/alpha\/igconfig\/nodes\/node\.yaml: .*ECONNREFUSED.*check s3\.endpoint.*gave up after 3 attempts/,
    );
    expect((err as AgentError).details).toMatchObject({ bucket, key: 'clusters/alpha/igconfig/nodes/node.yaml', attempts: 3 });
    const waits = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.msg === 'state store not reachable, retrying');
    expect(waits.map((w) => w.waitMs)).toEqual([50, 100]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    const writeErr = await store.write('x', 'y', { ifAbsent: true }).catch((e: unknown) => e);
    expect((writeErr as AgentError).message).toMatch(/cannot write s3:\/\/nodeup-state\/clusters\/alpha\/x/);
  });
});
