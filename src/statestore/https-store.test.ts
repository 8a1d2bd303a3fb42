// The https:// backend against real node:http and node:https servers on 127.0.0.1 (a throw-away
// self-signed certificate made with openssl for the TLS case).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentError } from '../engine/errors.ts';
import { createLogger } from '../engine/log.ts';
import { HttpsStore } from './https-store.ts';
import { openStateStore } from './open.ts';
import { LazyStore } from './backends.ts';

const fast = { attempts: 3, baseMs: 20, maxMs: 50 };

interface Served {
  readonly hits: Map<string, number>;
  /** Paths that answer 503 this many times before serving. */
  readonly flaky: Map<string, number>;
}

function handler(served: Served): http.RequestListener {
  const files: Record<string, string> = {
    '/cluster/igconfig/nodes/node.yaml': 'kind: NodeConfig\n',
    '/cluster/pki/ca%20crt': 'spaced\n',
  };
  return (req, res) => {
    const p = req.url ?? '/';
    served.hits.set(p, (served.hits.get(p) ?? 0) + 1);
    const left = served.flaky.get(p) ?? 0;
    if (left > 0) {
      served.flaky.set(p, left - 1);
      res.writeHead(503).end('busy');
      return;
    }
    if (p === '/cluster/forbidden') {
      res.writeHead(403).end('no');
      return;
    }
    if (p === '/cluster/broken') {
      res.writeHead(500).end('oops');
      return;
    }
    const body = files[p];
    if (body === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
  };
}

function listen(server: http.Server | https.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

describe('https state store over http on loopback', () => {
  const served: Served = { hits: new Map(), flaky: new Map() };
  const server = http.createServer(handler(served));
  let base = '';
  beforeAll(async () => {
    base = `http://127.0.0.1:${await listen(server)}/cluster`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('reads a key, and undefined for a missing one', async () => {
    const store = new HttpsStore(base + '/', { retry: fast });
    expect(store.writable).toBe(false);
    expect((await store.read('igconfig/nodes/node.yaml'))?.toString()).toBe('kind: NodeConfig\n');
    expect(await store.read('igconfig/nodes/missing.yaml')).toBeUndefined();
    expect((await store.read('pki/ca crt'))?.toString()).toBe('spaced\n');
    await store.close();
  });

  it('is what openStateStore returns (lazily) for http:// URLs', async () => {
    const store = openStateStore(base, { retry: fast });
    expect(store).toBeInstanceOf(LazyStore);
    expect(store.writable).toBe(false);
    expect(await (store as LazyStore).backend()).toBeInstanceOf(HttpsStore);
    expect((await store.read('igconfig/nodes/node.yaml'))?.toString()).toBe('kind: NodeConfig\n');
  });

  it('retries 503 with backoff, logging why it waits, then succeeds', async () => {
    served.flaky.set('/cluster/igconfig/nodes/node.yaml', 2);
    const lines: string[] = [];
    const log = createLogger({ format: 'json', level: 'info', stream: { write: (l: string) => void lines.push(l) } });
    const store = new HttpsStore(base, { retry: fast, log });
    expect((await store.read('igconfig/nodes/node.yaml'))?.toString()).toBe('kind: NodeConfig\n');
    const waits = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.msg === 'state store not reachable, retrying');
    expect(waits).toHaveLength(2);
    expect(waits[0]).toMatchObject({ op: 'read igconfig/nodes/node.yaml', attempt: 1, waitMs: 20 });
    expect(String(waits[0]?.reason)).toContain('HTTP 503');
  });

  it('gives up on a persistent 500 after the policy attempts, with a clear error', async () => {
    const before = served.hits.get('/cluster/broken') ?? 0;
    const store = new HttpsStore(base, { retry: fast });
    const err = await store.read('broken').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe('STATE_STORE');
    expect((err as AgentError).message).toMatch(/cannot read http:\/\/127\.0\.0\.1:\d+\/cluster\/broken: HTTP 500.*gave up after 3 attempts/);
    expect((served.hits.get('/cluster/broken') ?? 0) - before).toBe(3);
  });

  it('does not retry a 403 and says what to do', async () => {
    const before = served.hits.get('/cluster/forbidden') ?? 0;
    const store = new HttpsStore(base, { retry: fast });
    await expect(store.read('forbidden')).rejects.toThrow(/HTTP 403; the server refused access.*use s3:\/\//);
    expect((served.hits.get('/cluster/forbidden') ?? 0) - before).toBe(1);
  });

  it('refuses writes, removes and lists with a clear error', async () => {
    const store = new HttpsStore(base, { retry: fast });
    await expect(store.write('nodes/a/status.json', '{}')).rejects.toMatchObject({
      code: 'STATE_STORE',
      message: expect.stringMatching(/is read-only \(https:\/\/\): cannot write nodes\/a\/status\.json; publish through a file:\/\/ or s3:\/\/ store/),
    });
    await expect(store.remove('x')).rejects.toMatchObject({ code: 'STATE_STORE' });
    await expect(store.list('backups/')).rejects.toThrow(/cannot list keys under backups\//);
  });

  it('refuses keys that climb out of the prefix', async () => {
    const store = new HttpsStore(base, { retry: fast });
    await expect(store.read('../etc/passwd')).rejects.toThrow(/key is not valid/);
  });

  it('rejects URLs with credentials or a query, also at open time', () => {
    expect(() => openStateStore('https://user:pw@example.invalid/x')).toThrow(/takes no query, fragment or credentials/);
    expect(() => new HttpsStore('https://user:pw@example.invalid/x')).toThrow(/takes no query, fragment or credentials/);
    expect(() => new HttpsStore('https://example.invalid/x?a=b')).toThrow(/takes no query/);
  });
});

describe('opening an http:// store', () => {
  it('warns when plain http leaves loopback, and not on loopback', () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'json', stream: { write: (l: string) => void lines.push(l) } });
    openStateStore('http://10.1.2.3/cluster', { log });
    openStateStore('http://127.0.0.1:8080/cluster', { log });
    openStateStore('https://10.1.2.3/cluster', { log });
    const warns = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(warns).toHaveLength(1);
    expect(warns[0]).toMatchObject({ level: 40, store: 'http://10.1.2.3/cluster' });
  });
});

describe('https state store, unreachable', () => {
  it('retries a refused connection, then fails with STATE_STORE naming the URL', async () => {
    // A port that was free a moment ago: nothing listens there.
    const probe = http.createServer();
    const port = await listen(probe);
    await new Promise<void>((r) => probe.close(() => r()));
    const lines: string[] = [];
    const log = createLogger({ format: 'json', level: 'info', stream: { write: (l: string) => void lines.push(l) } });
    const store = new HttpsStore(`https://127.0.0.1:${port}/c`, { retry: fast, log });
    const err = await store.read('igconfig/nodes/node.yaml').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'STATE_STORE' });
    expect((err as Error).message).toMatch(/cannot read https:\/\/127\.0\.0\.1:\d+\/c\/igconfig\/nodes\/node\.yaml: .*ECONNREFUSED.*gave up after 3 attempts/);
    expect(lines.filter((l) => l.includes('state store not reachable, retrying'))).toHaveLength(2);
  });
});

describe('https state store over TLS on loopback', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nodeup-https-'));
  let server: https.Server;
  let base = '';
  let cert = '';
  beforeAll(async () => {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    server = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert }, handler({ hits: new Map(), flaky: new Map() }));
    base = `https://127.0.0.1:${await listen(server)}/cluster`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads over TLS when the CA is trusted', async () => {
    const store = new HttpsStore(base, { retry: fast, ca: cert });
    expect((await store.read('igconfig/nodes/node.yaml'))?.toString()).toBe('kind: NodeConfig\n');
    await store.close();
  });

  it('refuses an untrusted certificate without retrying it as transient', async () => {
    const store = new HttpsStore(base, { retry: fast });
    await expect(store.read('igconfig/nodes/node.yaml')).rejects.toThrow(/self-signed certificate/);
    await store.close();
  });
});
