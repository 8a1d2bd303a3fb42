// The real host's release assets: downloads into the content-addressed cache (one per hash at a
// time, a few at once, each URL retried with backoff, the next mirror on a wrong hash), verified
// before the rename, and archive members extracted to a temp dir. undici and tar are imported where
// they are used (start-up, issue 17).
// Resume: a download that stops (a dropped connection, a truncated body, a killed run) keeps its
// bytes in `<hash>.partial` beside the cache entry, and the next attempt (a retry, the next mirror,
// the next run) asks only for the rest (`Range: bytes=N-`; a file:// source reads from N). What
// comes back is checked as it comes: a 206 must start at N, a 200 starts the file over, a 416
// drops the part. The whole file is verified against its SHA-256 before the rename as always; a
// resumed file that does not verify is dropped and fetched once more from byte 0 (its first bytes
// may have come from another source), so a stale part can cost a download, never a wrong file.
// Parts older than a week are not resumed. One writer per part: apply and bake hold the run lock
// on a node's cache, a mirror's staging area is its own; in a process, one download per hash.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import type { Dispatcher } from 'undici';
import { AgentError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { exponentialBackoff, retry, type Clock } from '../retry.ts';
import { Semaphore } from '../semaphore.ts';
import { syncDir, syncFile } from './fsync.ts';
import { assetCacheDir, type AssetSource } from './host.ts';
import type { NodeFs } from './node-fs.ts';

export interface AssetOptions {
  /** Most downloads at once; the executor's own limit applies too. */
  readonly downloadConcurrency?: number;
  readonly downloadAttempts?: number;
  readonly retryBaseMs?: number;
}

// undici 7+ refuses the old `maxRedirections` request option (InvalidArgumentError): redirects
// (release hosts answer 302 to their CDN) follow through the redirect interceptor, composed on the
// global dispatcher at call time (tests install undici's MockAgent there).
async function downloadDispatcher(): Promise<Dispatcher> {
  const { getGlobalDispatcher, interceptors } = await import('undici');
  return getGlobalDispatcher().compose(interceptors.redirect({ maxRedirections: 5 }));
}

export class NodeAssets {
  private readonly fs: NodeFs;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly downloads: Semaphore;
  private readonly attempts: number;
  private readonly retryBaseMs: number;
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(fs: NodeFs, log: Logger, clock: Clock, opts: AssetOptions = {}) {
    this.fs = fs;
    this.log = log;
    this.clock = clock;
    this.downloads = new Semaphore(opts.downloadConcurrency ?? 3);
    this.attempts = opts.downloadAttempts ?? 3;
    this.retryBaseMs = opts.retryBaseMs ?? 1000;
  }

  async cachedAsset(sha256: string): Promise<string | undefined> {
    const p = this.fs.hostPath(`${assetCacheDir}/${sha256}`);
    try {
      const s = await fsp.stat(p);
      return s.isFile() ? p : undefined;
    } catch {
      return undefined;
    }
  }

  fetchAsset(asset: AssetSource): Promise<string> {
    const key = asset.sha256;
    const existing = this.inflight.get(key);
    if (existing) return existing;
    const p = this.fetchAssetOnce(asset).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async fetchAssetOnce(asset: AssetSource): Promise<string> {
    if (!/^[0-9a-f]{64}$/.test(asset.sha256)) {
      throw new AgentError('CONFIG_INVALID', `asset ${asset.name} has no valid sha256: no hash, no download`, {
        details: { asset: asset.name },
      });
    }
    // A cache entry is re-hashed before use (fetchAsset runs only when something must be installed):
    // a power cut can leave a renamed file whose blocks never reached the disk.
    const hit = await this.cachedAsset(asset.sha256);
    if (hit) {
      const actual = await this.fs.hash(`${assetCacheDir}/${asset.sha256}`);
      if (actual === asset.sha256) return hit;
      this.log.warn({ asset: asset.name, expected: asset.sha256, actual }, 'cached asset is corrupt (an interrupted write or a power cut): fetching it again');
      await fsp.rm(hit, { force: true });
    }
    await this.fs.mkdirp(assetCacheDir, 0o755);
    return this.downloads.use(async () => {
      let last: unknown;
      for (const url of asset.urls) {
        try {
          return await retry(
            async (attempt) => {
              try {
                return await this.downloadOnce(asset, url);
              } catch (err: unknown) {
                this.log.warn({ asset: asset.name, url: redactUrl(url), attempt, err }, 'download failed');
                throw err;
              }
            },
            {
              attempts: this.attempts,
              delayMs: exponentialBackoff(this.retryBaseMs),
              // A mirror serving wrong bytes will serve them again: try the next one.
              isRetryable: (err) => !(err instanceof AgentError && err.code === 'CHECKSUM_MISMATCH'),
              clock: this.clock,
            },
          );
        } catch (err: unknown) {
          last = err;
        }
      }
      if (last instanceof AgentError) throw last;
      throw new AgentError('DOWNLOAD_FAILED', `cannot download ${asset.name}: no mirror answered`, {
        cause: last,
        details: { asset: asset.name, urls: asset.urls.map(redactUrl) },
      });
    });
  }

  private async downloadOnce(asset: AssetSource, url: string): Promise<string> {
    const dest = this.fs.hostPath(`${assetCacheDir}/${asset.sha256}`);
    const part = `${dest}.partial`;
    const offset = await resumableBytes(part);
    try {
      return await this.downloadFrom(asset, url, dest, part, offset);
    } catch (err: unknown) {
      if (offset > 0 && err instanceof AgentError && err.code === 'CHECKSUM_MISMATCH') {
        // The kept bytes may be what is wrong (another source, an older file): once more from 0.
        this.log.warn({ asset: asset.name, url: redactUrl(url), resumedAt: offset }, 'a resumed download did not verify: fetching the whole file again');
        return this.downloadFrom(asset, url, dest, part, 0);
      }
      throw err;
    }
  }

  private async downloadFrom(asset: AssetSource, url: string, dest: string, part: string, from: number): Promise<string> {
    let offset = from;
    if (offset === 0) await fsp.rm(part, { force: true });
    let hash = createHash('sha256');
    if (offset > 0) for await (const chunk of createReadStream(part, { end: offset - 1 })) hash.update(chunk as Buffer);
    let received = offset;
    let total: number | undefined;
    let lastReport = Date.now();
    const log = this.log;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        received += chunk.length;
        const now = Date.now();
        if (now - lastReport > 2000) {
          lastReport = now;
          log.info({ asset: asset.name, received, total, percent: total ? Math.floor((100 * received) / total) : undefined }, 'downloading');
        }
        cb(null, chunk);
      },
    });
    const sink = (): NodeJS.WritableStream => createWriteStream(part, { mode: 0o600, flags: offset > 0 ? 'a' : 'w' });
    try {
      if (url.startsWith('file://')) {
        const src = fileURLToPath(url);
        total = (await fsp.stat(src)).size;
        if (offset > total) throw dropsPart(new AgentError('DOWNLOAD_FAILED', `cannot download ${asset.name}: the kept part is longer than the file: the next attempt starts over`, { details: { asset: asset.name } }));
        if (offset > 0) log.info({ asset: asset.name, from: offset, total }, 'resuming a download');
        await pipeline(createReadStream(src, { start: offset }), meter, sink());
      } else {
        const { request } = await import('undici');
        const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
        const res = await request(url, { method: 'GET', headers, dispatcher: await downloadDispatcher(), headersTimeout: 30000, bodyTimeout: 60000 });
        const len = res.headers['content-length'];
        const length = typeof len === 'string' ? Number(len) : undefined;
        if (offset > 0 && res.statusCode === 206) {
          const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
          if (!range || Number(range[1]) !== offset) {
            await res.body.dump();
            throw dropsPart(
              new AgentError('DOWNLOAD_FAILED', `cannot resume ${asset.name}: the server sent another range (${String(res.headers['content-range'])}): the next attempt starts over`, {
                details: { asset: asset.name, url: redactUrl(url), asked: offset },
              }),
            );
          }
          total = range[3] === '*' ? undefined : Number(range[3]);
          log.info({ asset: asset.name, from: offset, total }, 'resuming a download');
        } else if (offset > 0 && res.statusCode === 416) {
          await res.body.dump();
          throw dropsPart(
            new AgentError('DOWNLOAD_FAILED', `cannot resume ${asset.name}: the server has no bytes past ${offset} (HTTP 416): the next attempt starts over`, {
              details: { asset: asset.name, url: redactUrl(url), asked: offset },
            }),
          );
        } else if (res.statusCode === 200) {
          if (offset > 0) {
            // The server ignores ranges: the whole file comes, so the part starts over.
            log.info({ asset: asset.name, url: redactUrl(url) }, 'the server ignores ranges: downloading the whole file again');
            [offset, received, hash] = [0, 0, createHash('sha256')];
          }
          total = length;
        } else {
          await res.body.dump();
          throw new AgentError('DOWNLOAD_FAILED', `cannot download ${asset.name}: HTTP ${res.statusCode}`, {
            details: { asset: asset.name, url: redactUrl(url), status: res.statusCode },
          });
        }
        await pipeline(res.body, meter, sink());
      }
      if (total !== undefined && received !== total) {
        throw new AgentError('DOWNLOAD_FAILED', `cannot download ${asset.name}: truncated (${received} of ${total} bytes)`, {
          details: { asset: asset.name, url: redactUrl(url), received, total },
        });
      }
      return await this.place(asset, url, hash.digest('hex'), part, dest, received);
    } catch (err: unknown) {
      throw await this.failed(asset, url, part, err);
    }
  }

  /** Verifies the finished part and renames it into the cache (synced: a power cut keeps it or not). */
  private async place(asset: AssetSource, url: string, actual: string, part: string, dest: string, bytes: number): Promise<string> {
    if (actual !== asset.sha256) {
      throw new AgentError('CHECKSUM_MISMATCH', `checksum mismatch for ${asset.name} from ${redactUrl(url)}`, {
        details: { asset: asset.name, url: redactUrl(url), expected: asset.sha256, actual },
      });
    }
    await fsp.chmod(part, 0o644);
    await syncFile(part);
    await fsp.rename(part, dest);
    await syncDir(path.dirname(dest));
    this.log.info({ asset: asset.name, bytes, url: redactUrl(url) }, 'downloaded');
    return dest;
  }

  /**
   * The error of a failed download, as an AgentError. Wrong bytes are dropped; the bytes of a
   * download that stopped are kept for the next attempt to resume from.
   */
  private async failed(asset: AssetSource, url: string, part: string, err: unknown): Promise<AgentError> {
    if (err instanceof AgentError && (err.code === 'CHECKSUM_MISMATCH' || partDroppers.has(err))) {
      await fsp.rm(part, { force: true }).catch(() => undefined);
    } else {
      const kept = (await fsp.stat(part).catch(() => undefined))?.size ?? 0;
      if (kept > 0) this.log.info({ asset: asset.name, kept }, 'kept the bytes received: the next attempt resumes from there');
    }
    if (err instanceof AgentError) return err;
    return new AgentError('DOWNLOAD_FAILED', `cannot download ${asset.name}`, {
      cause: err,
      details: { asset: asset.name, url: redactUrl(url), reason: (err as { code?: string }).code ?? String(err) },
    });
  }

  async extractMembers(archive: string, members: readonly string[]): Promise<ReadonlyMap<string, string>> {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-extract-'));
    const wanted = new Set(members.map((m) => m.replace(/^\.\//, '')));
    const seen = new Set<string>();
    try {
      const tar = await import('tar');
      await tar.x({
        file: archive,
        cwd: dir,
        preserveOwner: false,
        filter: (p: string) => {
          const norm = p.replace(/^\.\//, '');
          if (wanted.has(norm)) {
            seen.add(norm);
            return true;
          }
          return false;
        },
      });
      const missing = [...wanted].filter((m) => !seen.has(m));
      if (missing.length > 0) {
        throw new AgentError('DOWNLOAD_FAILED', `archive ${path.basename(archive)} lacks ${missing.join(', ')}`, {
          details: { archive, missing },
        });
      }
      return new Map([...wanted].map((m) => [m, path.join(dir, m)]));
    } catch (err: unknown) {
      await fsp.rm(dir, { recursive: true, force: true });
      if (err instanceof AgentError) throw err;
      throw new AgentError('DOWNLOAD_FAILED', `cannot extract ${path.basename(archive)}`, { cause: err, details: { archive } });
    }
  }

  async cleanupExtract(paths: ReadonlyMap<string, string>): Promise<void> {
    const dirs = new Set<string>();
    for (const [member, p] of paths) dirs.add(p.slice(0, p.length - member.length - 1));
    for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
  }
}

/** Errors after which the kept part is worthless (the server cannot continue it): the next attempt starts at byte 0. */
const partDroppers = new WeakSet<AgentError>();
function dropsPart(err: AgentError): AgentError {
  partDroppers.add(err);
  return err;
}

/** How many bytes of `part` a download may resume from: 0 when it is missing, empty or a week old. */
async function resumableBytes(part: string): Promise<number> {
  const st = await fsp.stat(part).catch(() => undefined);
  if (!st?.isFile() || st.size === 0) return 0;
  if (Date.now() - st.mtimeMs > 7 * 86400_000) return 0;
  return st.size;
}

/** Drops credentials and query strings (pre-signed URLs carry secrets) from a URL for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = '';
      u.password = '';
    }
    if (u.search) u.search = '?[redacted]';
    return u.toString();
  } catch {
    return url;
  }
}
