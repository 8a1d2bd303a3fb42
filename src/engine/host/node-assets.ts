// The real host's release assets: downloads into the content-addressed cache (one per hash at a
// time, a few at once, each URL retried with backoff, the next mirror on a wrong hash), verified
// before the rename, and archive members extracted to a temp dir. undici and tar are imported where
// they are used (start-up, issue 17).
import { createHash, randomBytes } from 'node:crypto';
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
    const tmp = `${dest}.part-${randomBytes(4).toString('hex')}`;
    const hash = createHash('sha256');
    let received = 0;
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
    try {
      if (url.startsWith('file://')) {
        const src = fileURLToPath(url);
        total = (await fsp.stat(src)).size;
        await pipeline(createReadStream(src), meter, createWriteStream(tmp, { mode: 0o600 }));
      } else {
        const { request } = await import('undici');
        const res = await request(url, { method: 'GET', dispatcher: await downloadDispatcher(), headersTimeout: 30000, bodyTimeout: 60000 });
        if (res.statusCode !== 200) {
          await res.body.dump();
          throw new AgentError('DOWNLOAD_FAILED', `cannot download ${asset.name}: HTTP ${res.statusCode}`, {
            details: { asset: asset.name, url: redactUrl(url), status: res.statusCode },
          });
        }
        const len = res.headers['content-length'];
        total = typeof len === 'string' ? Number(len) : undefined;
        await pipeline(res.body, meter, createWriteStream(tmp, { mode: 0o600 }));
        if (total !== undefined && received !== total) {
          throw new AgentError('DOWNLOAD_FAILED', `cannot download ${asset.name}: truncated (${received} of ${total} bytes)`, {
            details: { asset: asset.name, url: redactUrl(url), received, total },
          });
        }
      }
      const actual = hash.digest('hex');
      if (actual !== asset.sha256) {
        throw new AgentError('CHECKSUM_MISMATCH', `checksum mismatch for ${asset.name} from ${redactUrl(url)}`, {
          details: { asset: asset.name, url: redactUrl(url), expected: asset.sha256, actual },
        });
      }
      await fsp.chmod(tmp, 0o644);
      await syncFile(tmp);
      await fsp.rename(tmp, dest);
      await syncDir(path.dirname(dest));
      log.info({ asset: asset.name, bytes: received, url: redactUrl(url) }, 'downloaded');
      return dest;
    } catch (err: unknown) {
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      if (err instanceof AgentError) throw err;
      throw new AgentError('DOWNLOAD_FAILED', `cannot download ${asset.name}`, {
        cause: err,
        details: { asset: asset.name, url: redactUrl(url), reason: (err as { code?: string }).code ?? String(err) },
      });
    }
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
