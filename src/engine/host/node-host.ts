// The real host: files (node-fs.ts), processes through execa, HTTP through undici, release assets
// (node-assets.ts). execa and undici are imported where they are used: a run that starts no process
// or download (status, a converged plan of files) does not evaluate them (start-up, issue 17).
import * as path from 'node:path';
import { AgentError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { silentLogger } from '../log.ts';
import { sleep as wallSleep } from '../retry.ts';
import type { AssetSource, Host, HttpRequest, HttpResponse, RunOptions, RunResult } from './host.ts';
import { NodeAssets, redactUrl, type AssetOptions } from './node-assets.ts';
import { NodeFs } from './node-fs.ts';

/** The last lines of a command's output, preferring the ones that say what went wrong. */
export function stderrTail(text: string, max = 8): string {
  const lines = text.split('\n').map((l) => l.trimEnd()).filter(Boolean);
  const telling = lines.filter((l) => /error|fail|^E:|denied|not found|unable/i.test(l));
  const pick = telling.length > 0 ? telling : lines;
  return pick.slice(-max).join('\n');
}

export interface NodeHostOptions extends AssetOptions {
  readonly root?: string;
  readonly log?: Logger;
}

export class NodeHost implements Host {
  readonly root: string;
  readonly fs: NodeFs;
  private readonly log: Logger;
  private readonly assets: NodeAssets;

  constructor(opts: NodeHostOptions = {}) {
    this.root = path.resolve(opts.root ?? '/');
    this.fs = new NodeFs(this.root);
    this.log = opts.log ?? silentLogger;
    this.assets = new NodeAssets(this.fs, this.log, this, opts);
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

  cachedAsset(sha256: string): Promise<string | undefined> {
    return this.assets.cachedAsset(sha256);
  }

  fetchAsset(asset: AssetSource): Promise<string> {
    return this.assets.fetchAsset(asset);
  }

  extractMembers(archive: string, members: readonly string[]): Promise<ReadonlyMap<string, string>> {
    return this.assets.extractMembers(archive, members);
  }

  cleanupExtract(paths: ReadonlyMap<string, string>): Promise<void> {
    return this.assets.cleanupExtract(paths);
  }

  hashFile(p: string): Promise<string | undefined> {
    return this.fs.hash(p);
  }

  sleep(ms: number): Promise<void> {
    return wallSleep(ms);
  }
  now(): number {
    return Date.now();
  }
}
