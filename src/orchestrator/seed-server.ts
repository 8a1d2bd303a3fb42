// The local HTTP server `nodeup launch --provider qemu` runs on 127.0.0.1 while guests boot:
//   GET  /i/<name>/meta-data | user-data | vendor-data   the NoCloud seed (cloud-init nocloud-net)
//   GET  /files/<file>                                  files handed to guests: nodeup-linux-amd64 and its .xz (the
//                                                       bootstrap script's mirror; a missing .xz answers 404)
//   GET  /assets/<path>                                 an asset mirror directory, read-only
//   GET  /store/<key>                                   a file:// state store, read-only (nodes open it as http://)
//   POST /event/<name>/<phase>                          progress reports from the guest's launch script
//   POST /receipt/<name>                                nodeup's receipt (status.json)
// QEMU user networking maps 10.0.2.2 in the guest to the host's loopback, so guests reach it there.
// Orchestrator code, not node work: like the state-store backends it uses node:http and node:fs itself.
import { createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { AgentError } from '../engine/errors.ts';
import type { Logger } from '../engine/log.ts';

export interface SeedEntry {
  readonly metaData: string;
  readonly userData: string;
}

export interface GuestReport {
  readonly name: string;
  /** `booted`, `fetching`, `started`, `failed`, or `receipt`. */
  readonly phase: string;
  readonly body: unknown;
  readonly at: number;
}

export interface SeedServerOptions {
  readonly log: Logger;
  /** Extra files by URL name (`/files/<name>`) → host path. */
  readonly files?: Readonly<Record<string, string>>;
  /** A directory served read-only under /assets/. */
  readonly assetsDir?: string | undefined;
  /** A file:// state store's directory served read-only under /store/. */
  readonly storeDir?: string | undefined;
  /** Which store keys guests may read (default: none but what `storeDir` holds, all of it). */
  readonly storeAllow?: ((key: string) => boolean) | undefined;
  readonly onReport?: (r: GuestReport) => void;
  /** Largest POST body accepted (receipts are small). */
  readonly maxBodyBytes?: number;
}

const namePattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export class SeedServer {
  private readonly server: http.Server;
  private readonly seeds = new Map<string, SeedEntry>();
  private readonly opts: SeedServerOptions;
  private portNo = 0;

  constructor(opts: SeedServerOptions) {
    this.opts = opts;
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        opts.log.warn({ err, url: req.url }, 'seed server request failed');
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
  }

  get port(): number {
    return this.portNo;
  }

  setSeed(name: string, seed: SeedEntry): void {
    this.seeds.set(name, seed);
  }

  async listen(port = 0): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (err) =>
        reject(new AgentError('ORCHESTRATOR', `cannot listen on 127.0.0.1:${port}: ${err.message}`, { cause: err, details: { port } })),
      );
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
    this.portNo = (this.server.address() as AddressInfo).port;
    return this.portNo;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://seed');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    this.opts.log.debug({ method: req.method, path: url.pathname }, 'seed server request');
    if (req.method === 'GET' || req.method === 'HEAD') return this.get(req, res, parts);
    if (req.method === 'POST') return this.post(req, res, parts);
    res.writeHead(405).end();
  }

  private async get(req: http.IncomingMessage, res: http.ServerResponse, parts: string[]): Promise<void> {
    const [top, a, b] = parts;
    if (top === 'i' && a && b && parts.length === 3) {
      const seed = this.seeds.get(a);
      if (!seed) return void res.writeHead(404).end();
      const body = b === 'meta-data' ? seed.metaData : b === 'user-data' ? seed.userData : b === 'vendor-data' ? '' : undefined;
      if (body === undefined) return void res.writeHead(404).end();
      this.opts.log.debug({ node: a, file: b }, 'served seed');
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      return void res.end(req.method === 'HEAD' ? undefined : body);
    }
    if (top === 'files' && a && parts.length === 2) {
      const file = this.opts.files?.[a];
      if (!file) return void res.writeHead(404).end();
      return this.sendFile(req, res, file);
    }
    const dir = top === 'assets' ? this.opts.assetsDir : top === 'store' ? this.opts.storeDir : undefined;
    if (dir && parts.length > 1) {
      const root = path.resolve(dir);
      const full = path.resolve(root, ...parts.slice(1));
      if (path.relative(root, full).startsWith('..') || parts.some((p) => p.startsWith('.'))) return void res.writeHead(403).end();
      if (top === 'store' && this.opts.storeAllow && !this.opts.storeAllow(parts.slice(1).join('/'))) {
        this.opts.log.warn({ key: parts.slice(1).join('/') }, 'refused a state store key to a guest');
        return void res.writeHead(403).end();
      }
      return this.sendFile(req, res, full);
    }
    res.writeHead(404).end();
  }

  private async sendFile(req: http.IncomingMessage, res: http.ServerResponse, file: string): Promise<void> {
    const st = await fsp.stat(file).catch(() => undefined);
    if (!st?.isFile()) return void res.writeHead(404).end();
    this.opts.log.debug({ file: path.basename(file), bytes: st.size }, 'serving file to a guest');
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': st.size });
    if (req.method === 'HEAD') return void res.end();
    await new Promise<void>((resolve, reject) => {
      const s = createReadStream(file);
      s.on('error', reject);
      res.on('close', () => resolve());
      s.pipe(res);
    });
  }

  private async post(req: http.IncomingMessage, res: http.ServerResponse, parts: string[]): Promise<void> {
    const [top, name, phase] = parts;
    const ok = name !== undefined && namePattern.test(name) && ((top === 'event' && phase && parts.length === 3) || (top === 'receipt' && parts.length === 2));
    if (!ok) return void res.writeHead(404).end();
    const max = this.opts.maxBodyBytes ?? 4 * 1024 * 1024;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > max) return void res.writeHead(413).end();
      chunks.push(c as Buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // keep the raw text: a report is still a report
    }
    this.opts.onReport?.({ name, phase: top === 'receipt' ? 'receipt' : (phase as string), body, at: Date.now() });
    res.writeHead(204).end();
  }
}
