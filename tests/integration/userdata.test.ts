// Runs the rendered user-data script with real bash, curl, xz and sha256sum against HTTP mirrors
// on 127.0.0.1. The "nodeup" binary served is a small shell script that records its arguments, so
// the script's last step (`nodeup install-unit ...`) is observed without touching this host.
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiVersion, type BootConfig } from '../../src/model/config.ts';
import { renderBootstrapScript } from '../../src/bootstrap/render-userdata.ts';

const setup = 'scripts/boot-paths-deps.sh';

const boot: BootConfig = {
  apiVersion,
  kind: 'BootConfig',
  stateStore: 'file:///var/lib/nodeup-test-store',
  clusterName: 'test',
  instanceGroup: 'nodes',
  nodeConfigHash: `sha256:${'cd'.repeat(32)}`,
  assetMirrors: [],
};

const fakeBinary = '#!/bin/sh\n# stand-in for nodeup: records how user-data called it\nprintf "%s\\n" "$*" >>"$NODEUP_TEST_RECORD"\n';
const wrongBinary = '#!/bin/sh\necho tampered\n';

let dir: string;
let server: http.Server;
let base: string;
let deadMirror: string;
let goodXz: Buffer;
let wrongXz: Buffer;
const requests: string[] = [];
/** Requests to /flaky/ answer with the wrong binary this many times, then the right one. */
let flakyWrongLeft = 0;

async function xz(data: string): Promise<Buffer> {
  const res = await execa('xz', ['-c', '-6'], { input: data, encoding: 'buffer' });
  return Buffer.from(res.stdout);
}

beforeAll(async () => {
  for (const tool of ['bash', 'curl', 'xz', 'sha256sum']) {
    const found = await execa('sh', ['-c', `command -v ${tool}`], { reject: false });
    if (found.exitCode !== 0) throw new Error(`${tool} is missing: run ${setup} (installs curl, xz-utils, coreutils)`);
  }
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-userdata-'));
  goodXz = await xz(fakeBinary);
  wrongXz = await xz(wrongBinary);
  server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    requests.push(url);
    const name = url.split('/').pop() ?? '';
    if (url.startsWith('/plain/') && /^nodeup-linux-(amd64|arm64)$/.test(name)) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(Buffer.byteLength(fakeBinary)) }).end(fakeBinary);
      return;
    }
    if (!/^nodeup-linux-(amd64|arm64)\.xz$/.test(name)) {
      res.writeHead(404).end();
      return;
    }
    let body: Buffer;
    if (url.startsWith('/good/')) body = goodXz;
    else if (url.startsWith('/wrong/')) body = wrongXz;
    else if (url.startsWith('/flaky/')) {
      body = flakyWrongLeft > 0 ? wrongXz : goodXz;
      flakyWrongLeft--;
    } else {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/x-xz', 'content-length': String(body.length) }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // A port that was just free: nothing listens there, so connections are refused.
  const probe = http.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  deadMirror = `http://127.0.0.1:${(probe.address() as AddressInfo).port}/dead`;
  await new Promise<void>((r) => probe.close(() => r()));
});

afterAll(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  if (dir) await fsp.rm(dir, { recursive: true, force: true });
});

const goodHash = (): string => createHash('sha256').update(fakeBinary).digest('hex');

interface Case {
  readonly root: string;
  readonly script: string;
  readonly env: Record<string, string>;
}

async function prepare(name: string, mirrors: string[]): Promise<Case> {
  const root = path.join(dir, name);
  await fsp.mkdir(root, { recursive: true });
  const h = goodHash();
  const script = path.join(root, 'user-data.sh');
  await fsp.writeFile(script, renderBootstrapScript({ bootConfig: boot, mirrors, sha256: { amd64: h, arm64: h } }));
  return {
    root,
    script,
    env: {
      NODEUP_INSTALL_PATH: path.join(root, 'usr/local/bin/nodeup'),
      NODEUP_CONFIG_PATH: path.join(root, 'etc/nodeup/boot.yaml'),
      NODEUP_SKIP_HOST_PREP: '1',
      NODEUP_RETRY_BASE_SECONDS: '1',
      NODEUP_RETRY_MAX_SECONDS: '1',
      NODEUP_CURL_RETRY: '0',
      NODEUP_TEST_RECORD: path.join(root, 'record.txt'),
    },
  };
}

async function runScript(c: Case, timeoutMs = 60_000) {
  return execa('bash', [c.script], { env: c.env, reject: false, timeout: timeoutMs, all: true });
}

async function expectInstalled(c: Case): Promise<void> {
  const bin = await fsp.readFile(c.env.NODEUP_INSTALL_PATH!);
  expect(createHash('sha256').update(bin).digest('hex')).toBe(goodHash());
  expect((await fsp.stat(c.env.NODEUP_INSTALL_PATH!)).mode & 0o777).toBe(0o755);
  const conf = await fsp.readFile(c.env.NODEUP_CONFIG_PATH!, 'utf8');
  expect(conf).toContain(`nodeConfigHash: ${boot.nodeConfigHash}`);
  expect(conf).toContain('instanceGroup: nodes');
  const record = await fsp.readFile(c.env.NODEUP_TEST_RECORD!, 'utf8');
  expect(record.trim().split('\n')).toEqual([`install-unit --config ${c.env.NODEUP_CONFIG_PATH} --binary ${c.env.NODEUP_INSTALL_PATH}`]);
  // nothing half-downloaded is left next to the binary
  const left = await fsp.readdir(path.dirname(c.env.NODEUP_INSTALL_PATH!));
  expect(left).toEqual(['nodeup']);
}

describe('user-data script (bash, curl, xz against 127.0.0.1 mirrors)', () => {
  it('installs from a good mirror, writes the boot config and runs install-unit', async () => {
    const c = await prepare('good', [`${base}/good`]);
    const res = await runScript(c);
    expect(res.exitCode, res.all).toBe(0);
    await expectInstalled(c);
  });

  it('refuses a binary with the wrong hash and retries until the mirror serves the right one', async () => {
    const c = await prepare('flaky', [`${base}/flaky`]);
    flakyWrongLeft = 2;
    const before = requests.filter((r) => r.startsWith('/flaky/')).length;
    const res = await runScript(c);
    expect(res.exitCode, res.all).toBe(0);
    expect(res.all).toMatch(/sha256 mismatch from http:\/\/127\.0\.0\.1:\d+\/flaky\/nodeup-linux-(amd64|arm64)\.xz/);
    expect(res.all).toContain('retrying in 1s');
    expect(requests.filter((r) => r.startsWith('/flaky/')).length - before).toBe(3);
    await expectInstalled(c);
  });

  it('falls over from a dead first mirror to the second', async () => {
    const c = await prepare('failover', [deadMirror, `${base}/good`]);
    const res = await runScript(c);
    expect(res.exitCode, res.all).toBe(0);
    expect(res.all).toContain(`download failed: ${deadMirror}/nodeup-linux-`);
    expect(res.all).not.toContain('retrying in'); // the second mirror answered in the same round
    await expectInstalled(c);
  });

  it('falls back to the plain binary when the mirror has no .xz (404), over http and file://', async () => {
    const c = await prepare('plain', [`${base}/plain`]);
    const before = requests.length;
    const res = await runScript(c);
    expect(res.exitCode, res.all).toBe(0);
    expect(requests.slice(before)).toEqual([expect.stringMatching(/^\/plain\/nodeup-linux-(amd64|arm64)\.xz$/), expect.stringMatching(/^\/plain\/nodeup-linux-(amd64|arm64)$/)]);
    expect(res.all).toMatch(/no http:\/\/127\.0\.0\.1:\d+\/plain\/nodeup-linux-(amd64|arm64)\.xz there; trying the uncompressed binary/);
    await expectInstalled(c);

    const folder = path.join(dir, 'file-mirror');
    await fsp.mkdir(folder, { recursive: true });
    for (const arch of ['amd64', 'arm64']) await fsp.writeFile(path.join(folder, `nodeup-linux-${arch}`), fakeBinary);
    const f = await prepare('file-mirror-node', [`file://${folder}`]);
    const res2 = await runScript(f);
    expect(res2.exitCode, res2.all).toBe(0);
    expect(res2.all).toContain('trying the uncompressed binary');
    await expectInstalled(f);
  });

  it('never installs a wrong binary: keeps retrying (forever) while every mirror is bad', async () => {
    const c = await prepare('all-bad', [deadMirror, `${base}/wrong`]);
    const res = await runScript(c, 5_000);
    expect(res.timedOut).toBe(true);
    expect((res.all?.match(/sha256 mismatch/g) ?? []).length).toBeGreaterThanOrEqual(2);
    expect(await fsp.stat(c.env.NODEUP_INSTALL_PATH!).catch(() => undefined)).toBeUndefined();
    expect(await fsp.stat(c.env.NODEUP_TEST_RECORD!).catch(() => undefined)).toBeUndefined();
  });

  it('does not download again when the pinned binary is already installed (re-run, baked image)', async () => {
    const c = await prepare('rerun', [`${base}/good`]);
    expect((await runScript(c)).exitCode).toBe(0);
    const before = requests.length;
    await fsp.rm(c.env.NODEUP_TEST_RECORD!);
    const res = await runScript(c);
    expect(res.exitCode, res.all).toBe(0);
    expect(res.all).toContain('already installed');
    expect(requests.length).toBe(before);
    await expectInstalled(c);
  });
});
