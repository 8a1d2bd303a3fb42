// NodeHost.fetchAsset against a real HTTP server on 127.0.0.1: the bytes arrive verified, a
// redirect (release hosts answer 302 to their CDN) is followed, and a download that stopped
// resumes with a Range request (or starts over where the server cannot do that). Guards the undici request options:
// undici 7+ rejects `maxRedirections` as a request option, which failed every download.
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeHost } from './node-host.ts';

const payload = Buffer.from('a release asset\n'.repeat(1000));
const sha256 = createHash('sha256').update(payload).digest('hex');
let server: http.Server;
let base = '';
let root = '';
/** What each request asked for: its path and Range header. */
const seen: { url: string; range: string | undefined }[] = [];
let flakyCalls = 0;

/** Answers a Range request as a server that supports them does (206, or 416 past the end). */
function ranged(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (!m) return void res.writeHead(200, { 'content-length': body.length }).end(body);
  const start = Number(m[1]);
  if (start >= body.length) return void res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
  res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` }).end(body.subarray(start));
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', range: req.headers.range });
    if (req.url === '/moved') res.writeHead(302, { location: '/asset' }).end();
    else if (req.url === '/asset') ranged(req, res, payload);
    else if (req.url === '/norange') res.writeHead(200, { 'content-length': payload.length }).end(payload);
    else if (req.url === '/flaky' && flakyCalls++ === 0) {
      // The first answer stops after 6000 bytes: the connection drops.
      res.writeHead(200, { 'content-length': payload.length });
      res.write(payload.subarray(0, 6000), () => setTimeout(() => res.socket?.destroy(), 50));
    } else if (req.url === '/flaky') ranged(req, res, payload);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-download-'));
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await fsp.rm(root, { recursive: true, force: true });
});

describe('NodeHost.fetchAsset over HTTP', () => {
  it('downloads and verifies an asset', async () => {
    const host = new NodeHost({ root: path.join(root, 'a'), downloadAttempts: 1 });
    const file = await host.fetchAsset({ name: 'asset', urls: [`${base}/asset`], sha256 });
    expect(await fsp.readFile(file)).toEqual(payload);
  });

  it('follows a redirect', async () => {
    const host = new NodeHost({ root: path.join(root, 'b'), downloadAttempts: 1 });
    const file = await host.fetchAsset({ name: 'asset', urls: [`${base}/moved`], sha256 });
    expect(await fsp.readFile(file)).toEqual(payload);
  });

  it('names the asset when the server answers 404', async () => {
    const host = new NodeHost({ root: path.join(root, 'c'), downloadAttempts: 1 });
    await expect(host.fetchAsset({ name: 'asset', urls: [`${base}/nope`], sha256 })).rejects.toMatchObject({ code: 'DOWNLOAD_FAILED', message: expect.stringContaining('HTTP 404') });
  });

  it('fetches again when the cached copy is corrupt (a power cut after the rename), and uses a good one as is', async () => {
    const host = new NodeHost({ root: path.join(root, 'd'), downloadAttempts: 1 });
    const cached = path.join(root, 'd', 'var/cache/nodeup/sha256', sha256);
    await fsp.mkdir(path.dirname(cached), { recursive: true });
    await fsp.writeFile(cached, Buffer.alloc(payload.length)); // the name is there, the blocks are zeros
    const file = await host.fetchAsset({ name: 'asset', urls: [`${base}/asset`], sha256 });
    expect(await fsp.readFile(file)).toEqual(payload);
    // A verified cache entry is used without the network (the URL would 404).
    expect(await fsp.readFile(await host.fetchAsset({ name: 'asset', urls: [`${base}/nope`], sha256 }))).toEqual(payload);
  });

  it('resumes a download that stopped: the next attempt asks only for the rest, and the file verifies', async () => {
    const host = new NodeHost({ root: path.join(root, 'e'), downloadAttempts: 2, retryBaseMs: 1 });
    seen.length = 0;
    const file = await host.fetchAsset({ name: 'asset', urls: [`${base}/flaky`], sha256 });
    expect(await fsp.readFile(file)).toEqual(payload);
    expect(seen).toEqual([
      { url: '/flaky', range: undefined },
      { url: '/flaky', range: 'bytes=6000-' },
    ]);
    expect(await fsp.readdir(path.dirname(file))).toEqual([sha256]); // no part left behind
  });

  it('resumes from a part an earlier run left; starts over when the server ignores ranges or has nothing past it', async () => {
    const part = (r: string): string => path.join(root, r, 'var/cache/nodeup/sha256', `${sha256}.partial`);
    const seed = async (r: string, bytes: Buffer): Promise<void> => {
      await fsp.mkdir(path.dirname(part(r)), { recursive: true });
      await fsp.writeFile(part(r), bytes);
    };
    const fetchIn = async (r: string, url: string, attempts = 1): Promise<Buffer> =>
      fsp.readFile(await new NodeHost({ root: path.join(root, r), downloadAttempts: attempts, retryBaseMs: 1 }).fetchAsset({ name: 'asset', urls: [`${base}${url}`], sha256 }));
    seen.length = 0;
    await seed('f', payload.subarray(0, 10_000));
    expect(await fetchIn('f', '/asset')).toEqual(payload);
    await seed('g', payload.subarray(0, 10_000));
    expect(await fetchIn('g', '/norange')).toEqual(payload);
    // A part as long as the file (or longer): 416, the part is dropped, the retry fetches it whole.
    await seed('h', Buffer.concat([payload, Buffer.from('x')]));
    expect(await fetchIn('h', '/asset', 2)).toEqual(payload);
    expect(seen).toEqual([
      { url: '/asset', range: 'bytes=10000-' },
      { url: '/norange', range: 'bytes=10000-' },
      { url: '/asset', range: `bytes=${payload.length + 1}-` },
      { url: '/asset', range: undefined },
    ]);
    for (const r of ['f', 'g', 'h']) expect(await fsp.stat(part(r)).catch(() => undefined), r).toBeUndefined();
  });

  it('a resumed file that does not verify (the part held other bytes) is fetched once more from byte 0', async () => {
    const r = path.join(root, 'i');
    const part = path.join(r, 'var/cache/nodeup/sha256', `${sha256}.partial`);
    await fsp.mkdir(path.dirname(part), { recursive: true });
    await fsp.writeFile(part, Buffer.alloc(4000, 0x78));
    seen.length = 0;
    const file = await new NodeHost({ root: r, downloadAttempts: 1 }).fetchAsset({ name: 'asset', urls: [`${base}/asset`], sha256 });
    expect(await fsp.readFile(file)).toEqual(payload);
    expect(seen.map((x) => x.range)).toEqual(['bytes=4000-', undefined]);
  });

  it('resumes from a file:// source too', async () => {
    const src = path.join(root, 'src.bin');
    await fsp.writeFile(src, payload);
    const r = path.join(root, 'j');
    const part = path.join(r, 'var/cache/nodeup/sha256', `${sha256}.partial`);
    await fsp.mkdir(path.dirname(part), { recursive: true });
    await fsp.writeFile(part, payload.subarray(0, 7));
    const file = await new NodeHost({ root: r, downloadAttempts: 1 }).fetchAsset({ name: 'asset', urls: [`file://${src}`], sha256 });
    expect(await fsp.readFile(file)).toEqual(payload);
  });
});
