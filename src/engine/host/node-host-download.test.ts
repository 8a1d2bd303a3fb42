// NodeHost.fetchAsset against a real HTTP server on 127.0.0.1: the bytes arrive verified, and a
// redirect (release hosts answer 302 to their CDN) is followed. Guards the undici request options:
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

beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/moved') res.writeHead(302, { location: '/asset' }).end();
    else if (req.url === '/asset') res.writeHead(200, { 'content-length': payload.length }).end(payload);
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
});
