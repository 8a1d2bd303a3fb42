// The real host: node:fs under a root, execa for processes, undici for HTTP and downloads.
// execa, undici and tar are imported where they are used: a run that starts no process or download
// (status, a converged plan of files) does not evaluate them (start-up, issue 17).
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Dispatcher } from 'undici';
import * as os from 'node:os';
import { AgentError } from '../errors.ts';
import { syncDir, syncFile } from './fsync.ts';
import { Semaphore } from '../semaphore.ts';
import { exponentialBackoff, retry, sleep as wallSleep } from '../retry.ts';
import type { Logger } from '../log.ts';
import { silentLogger } from '../log.ts';
import {
  assetCacheDir,
  type AssetSource,
  type FileStat,
  type Host,
  type HostFs,
  type HttpRequest,
  type HttpResponse,
  type RunOptions,
  type RunResult,
  type WriteOptions,
} from './host.ts';

/** Resolves a node path under root and refuses paths that climb out of it. */
export function resolveUnder(root: string, p: string): string {
  if (!path.isAbsolute(p)) throw new AgentError('USAGE', `node path must be absolute: ${p}`);
  const full = path.join(root, path.normalize(p));
  const rel = path.relative(root, full);
  if (rel.startsWith('..')) throw new AgentError('USAGE', `node path escapes the root: ${p}`);
  return full;
}

function toStat(s: import('node:fs').Stats): FileStat {
  const kind = s.isSymbolicLink() ? 'symlink' : s.isDirectory() ? 'dir' : s.isFile() ? 'file' : 'other';
  return { kind, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, size: s.size, mtimeMs: s.mtimeMs };
}

function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: string }).code === 'ENOENT';
}

function fsError(op: string, p: string, err: unknown): AgentError {
  const code = (err as { code?: string }).code ?? 'EUNKNOWN';
  const reason: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on device',
    ENOTDIR: 'a parent is not a directory',
    EISDIR: 'is a directory',
  };
  return new AgentError('TASK_FAILED', `cannot ${op} ${p}: ${reason[code] ?? code}`, {
    cause: err,
    details: { path: p, errno: code },
  });
}

export class NodeFs implements HostFs {
  readonly root: string;
  constructor(root: string) {
    this.root = path.resolve(root);
  }
  hostPath(p: string): string {
    return resolveUnder(this.root, p);
  }
  async read(p: string): Promise<Buffer | undefined> {
    try {
      return await fsp.readFile(this.hostPath(p));
    } catch (err: unknown) {
      if (isNotFound(err)) return undefined;
      throw fsError('read', p, err);
    }
  }
  async stat(p: string): Promise<FileStat | undefined> {
    try {
      return toStat(await fsp.lstat(this.hostPath(p)));
    } catch (err: unknown) {
      if (isNotFound(err) || (err as { code?: string }).code === 'ENOTDIR') return undefined;
      throw fsError('stat', p, err);
    }
  }
  async readlink(p: string): Promise<string | undefined> {
    try {
      return await fsp.readlink(this.hostPath(p));
    } catch (err: unknown) {
      if (isNotFound(err) || (err as { code?: string }).code === 'EINVAL') return undefined;
      throw fsError('read link', p, err);
    }
  }
  async list(dir: string): Promise<readonly string[]> {
    try {
      return (await fsp.readdir(this.hostPath(dir))).sort();
    } catch (err: unknown) {
      if (isNotFound(err)) return [];
      throw fsError('list', dir, err);
    }
  }
  private async placeAtomically(p: string, opts: WriteOptions, fill: (tmp: string) => Promise<void>): Promise<void> {
    const full = this.hostPath(p);
    const tmp = path.join(path.dirname(full), `.${path.basename(full)}.nodeup-${randomBytes(4).toString('hex')}`);
    try {
      await fill(tmp);
      await fsp.chmod(tmp, opts.mode);
      if (opts.uid !== undefined || opts.gid !== undefined) await fsp.chown(tmp, opts.uid ?? 0, opts.gid ?? 0);
      await syncFile(tmp);
      await fsp.rename(tmp, full);
      await syncDir(path.dirname(full));
    } catch (err: unknown) {
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw err instanceof AgentError ? err : fsError('write', p, err);
    }
  }
  async writeAtomic(p: string, data: string | Buffer, opts: WriteOptions): Promise<void> {
    await this.placeAtomically(p, opts, (tmp) => fsp.writeFile(tmp, data, { mode: 0o600, flag: 'wx' }));
  }
  async installFile(source: string, p: string, opts: WriteOptions): Promise<void> {
    await this.placeAtomically(p, opts, (tmp) => fsp.copyFile(source, tmp));
  }
  async mkdirp(p: string, mode: number): Promise<void> {
    const full = this.hostPath(p);
    try {
      const existed = await fsp.stat(full).then(
        () => true,
        () => false,
      );
      await fsp.mkdir(full, { recursive: true, mode });
      if (!existed) await fsp.chmod(full, mode);
    } catch (err: unknown) {
      throw fsError('create directory', p, err);
    }
  }
  async chmod(p: string, mode: number): Promise<void> {
    try {
      await fsp.chmod(this.hostPath(p), mode);
    } catch (err: unknown) {
      throw fsError('chmod', p, err);
    }
  }
  async chown(p: string, uid: number, gid: number): Promise<void> {
    try {
      await fsp.lchown(this.hostPath(p), uid, gid);
    } catch (err: unknown) {
      throw fsError('chown', p, err);
    }
  }
  async symlink(target: string, p: string): Promise<void> {
    const full = this.hostPath(p);
    const tmp = `${full}.nodeup-${randomBytes(4).toString('hex')}`;
    try {
      await fsp.symlink(target, tmp);
      await fsp.rename(tmp, full);
    } catch (err: unknown) {
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw fsError('link', p, err);
    }
  }
  async remove(p: string): Promise<void> {
    try {
      await fsp.rm(this.hostPath(p), { recursive: true, force: true });
    } catch (err: unknown) {
      throw fsError('remove', p, err);
    }
  }
}

/** The last lines of a command's output, preferring the ones that say what went wrong. */
export function stderrTail(text: string, max = 8): string {
  const lines = text.split('\n').map((l) => l.trimEnd()).filter(Boolean);
  const telling = lines.filter((l) => /error|fail|^E:|denied|not found|unable/i.test(l));
  const pick = telling.length > 0 ? telling : lines;
  return pick.slice(-max).join('\n');
}

export interface NodeHostOptions {
  readonly root?: string;
  readonly log?: Logger;
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

export class NodeHost implements Host {
  readonly root: string;
  readonly fs: NodeFs;
  private readonly log: Logger;
  private readonly downloads: Semaphore;
  private readonly attempts: number;
  private readonly retryBaseMs: number;
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(opts: NodeHostOptions = {}) {
    this.root = path.resolve(opts.root ?? '/');
    this.fs = new NodeFs(this.root);
    this.log = opts.log ?? silentLogger;
    this.downloads = new Semaphore(opts.downloadConcurrency ?? 3);
    this.attempts = opts.downloadAttempts ?? 3;
    this.retryBaseMs = opts.retryBaseMs ?? 1000;
  }

  async run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const argv = [file, ...args];
    this.log.debug({ argv }, 'run');
    const { execa, ExecaError } = await import('execa');
    try {
      const sub = execa(file, args, {
        reject: false,
        all: false,
        stripFinalNewline: false,
        ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' }),
        ...(opts.env ? { env: opts.env, extendEnv: true } : {}),
        ...(opts.cwd ? { cwd: opts.cwd } : {}),
        ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}),
        ...(opts.onLine
          ? {
              stdout: [
                function* (line: unknown) {
                  opts.onLine?.(String(line), 'stdout');
                  yield line;
                },
              ],
              stderr: [
                function* (line: unknown) {
                  opts.onLine?.(String(line), 'stderr');
                  yield line;
                },
              ],
            }
          : {}),
      });
      const res = await sub;
      const stdout = Array.isArray(res.stdout) ? res.stdout.join('\n') : String(res.stdout ?? '');
      const stderr = Array.isArray(res.stderr) ? res.stderr.join('\n') : String(res.stderr ?? '');
      if (res.failed && res.exitCode === undefined) {
        const why = res.timedOut ? 'timed out' : (res.originalMessage ?? 'could not start');
        throw new AgentError('COMMAND_FAILED', `${file} ${why}`, {
          cause: res.cause,
          details: { argv, stderrTail: stderrTail(stderr) },
        });
      }
      const exitCode = res.exitCode ?? 1;
      if (exitCode !== 0 && !(opts.okExitCodes ?? []).includes(exitCode)) {
        throw new AgentError('COMMAND_FAILED', `${file} exited with ${exitCode}`, {
          details: { argv, exitCode, stderrTail: stderrTail(stderr || stdout) },
        });
      }
      return { exitCode, stdout, stderr };
    } catch (err: unknown) {
      if (err instanceof AgentError) throw err;
      throw new AgentError('COMMAND_FAILED', `${file} could not run`, {
        cause: err instanceof ExecaError ? err.originalMessage : err,
        details: { argv },
      });
    }
  }

  runInRoot(file: string, args: readonly string[], opts?: RunOptions): Promise<RunResult> {
    if (this.root === '/') return this.run(file, args, opts);
    return this.run('chroot', [this.root, file, ...args], opts);
  }

  async http(req: HttpRequest): Promise<HttpResponse> {
    const { Agent, request } = await import('undici');
    const dispatcher = req.tls
      ? new Agent({ connect: { ...(req.tls.ca ? { ca: req.tls.ca } : {}), ...(req.tls.cert ? { cert: req.tls.cert } : {}), ...(req.tls.key ? { key: req.tls.key } : {}) } })
      : undefined;
    try {
      const res = await request(req.url, {
        method: (req.method ?? 'GET') as 'GET',
        ...(req.headers ? { headers: req.headers } : {}),
        ...(req.body !== undefined ? { body: req.body } : {}),
        headersTimeout: req.timeoutMs ?? 15000,
        bodyTimeout: req.timeoutMs ?? 15000,
        ...(dispatcher ? { dispatcher } : {}),
      });
      const body = Buffer.from(await res.body.arrayBuffer());
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      return { status: res.statusCode, headers, body };
    } catch (err: unknown) {
      throw new AgentError('DOWNLOAD_FAILED', `request to ${redactUrl(req.url)} failed`, {
        cause: err,
        details: { url: redactUrl(req.url), reason: (err as { code?: string }).code ?? String(err) },
      });
    } finally {
      await dispatcher?.close();
    }
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
      const actual = await this.hashFile(`${assetCacheDir}/${asset.sha256}`);
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
              clock: this,
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

  async hashFile(p: string): Promise<string | undefined> {
    const full = this.fs.hostPath(p);
    const hash = createHash('sha256');
    try {
      await pipeline(createReadStream(full), hash);
    } catch (err: unknown) {
      if (isNotFound(err)) return undefined;
      throw fsError('read', p, err);
    }
    return hash.digest('hex');
  }

  sleep(ms: number): Promise<void> {
    return wallSleep(ms);
  }
  now(): number {
    return Date.now();
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
