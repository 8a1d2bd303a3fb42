// https:// state store: read-only, for nodes that fetch their config from a web server or a CDN in
// front of a bucket. URL: https://host/prefix; a key is fetched with GET <url>/<key>. 404 means
// "absent"; network failures, 5xx, 408 and 429 are retried with backoff (each wait logged); any
// other status is an error naming the URL. Writes, lists and removes are clear errors: publish with
// a file:// or s3:// store. http:// is accepted too (for loopback mirrors and tests).
import { rootCertificates } from 'node:tls';
import { Agent, request } from 'undici';
import { AgentError, errorMessage } from '../engine/errors.ts';
import type { Logger } from '../engine/log.ts';
import { silentLogger } from '../engine/log.ts';
import { checkHttpStoreUrl } from './store-urls.ts';
import { defaultRetry, withRetry, type RetryPolicy, type StateStore, type WriteStoreOptions } from '../engine/state-store.ts';

export interface HttpsStoreOptions {
  readonly log?: Logger | undefined;
  readonly retry?: RetryPolicy | undefined;
  /** Extra trusted CA certificates (PEM); system CAs and NODE_EXTRA_CA_CERTS are trusted anyway. */
  readonly ca?: string | readonly string[] | undefined;
  readonly connectTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
}

const transientCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

/** True for failures worth waiting for: the network, or a status that says "later". Pure. */
export function isTransientHttp(err: unknown): boolean {
  if (err instanceof AgentError) return err.details.transient === true;
  const e = err as { code?: string; cause?: { code?: string } } | undefined;
  const code = e?.code ?? e?.cause?.code;
  return code !== undefined && transientCodes.has(code);
}

export function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

export class HttpsStore implements StateStore {
  readonly url: string;
  readonly writable = false;
  private readonly dispatcher: Agent;
  private readonly retry: RetryPolicy;
  private readonly log: Logger;

  constructor(url: string, opts: HttpsStoreOptions = {}) {
    this.url = checkHttpStoreUrl(url);
    this.retry = opts.retry ?? defaultRetry;
    this.log = opts.log ?? silentLogger;
    const ca = opts.ca === undefined ? undefined : typeof opts.ca === 'string' ? [opts.ca] : [...opts.ca];
    this.dispatcher = new Agent({
      connect: { timeout: opts.connectTimeoutMs ?? 5_000, ...(ca ? { ca: [...rootCertificates, ...ca] } : {}) },
      headersTimeout: opts.requestTimeoutMs ?? 30_000,
      bodyTimeout: opts.requestTimeoutMs ?? 30_000,
    });
  }

  /** The URL of a key: each path segment percent-encoded. */
  keyUrl(key: string): string {
    const parts = key.replace(/^\/+/, '').split('/');
    if (parts.length === 0 || parts.some((p) => p === '' || p === '.' || p === '..')) {
      throw new AgentError('STATE_STORE', `state store key is not valid: ${JSON.stringify(key)}`, { details: { key } });
    }
    return `${this.url}/${parts.map(encodeURIComponent).join('/')}`;
  }

  async read(key: string): Promise<Buffer | undefined> {
    const target = this.keyUrl(key);
    try {
      return await withRetry(
        `read ${key}`,
        this.url,
        async () => {
          let res: Awaited<ReturnType<typeof request>>;
          try {
            res = await request(target, { method: 'GET', dispatcher: this.dispatcher, headers: { accept: '*/*' } });
          } catch (err: unknown) {
            throw new AgentError('STATE_STORE', `state store ${this.url}: cannot read ${target}: ${errorMessage(err)}; check the URL, DNS and the network`, {
              cause: err,
              details: { store: this.url, key, url: target, transient: isTransientHttp(err) },
            });
          }
          if (res.statusCode === 200) return Buffer.from(await res.body.arrayBuffer());
          await res.body.dump();
          if (res.statusCode === 404 || res.statusCode === 410) return undefined;
          const transient = isTransientStatus(res.statusCode);
          const hint =
            res.statusCode === 401 || res.statusCode === 403
              ? 'the server refused access: https:// stores must be readable without credentials (use s3:// for private buckets)'
              : transient
                ? 'the server is not ready'
                : 'check the URL';
          throw new AgentError('STATE_STORE', `state store ${this.url}: cannot read ${target}: HTTP ${res.statusCode}; ${hint}`, {
            details: { store: this.url, key, url: target, status: res.statusCode, transient },
          });
        },
        isTransientHttp,
        this.retry,
        this.log,
      );
    } catch (err: unknown) {
      if (err instanceof AgentError && err.details.transient === true) {
        throw new AgentError('STATE_STORE', `${err.message} (gave up after ${this.retry.attempts} attempts)`, {
          cause: err.cause,
          details: { ...err.details, attempts: this.retry.attempts },
        });
      }
      throw err;
    }
  }

  private readOnly(op: string, key: string): AgentError {
    return new AgentError('STATE_STORE', `state store ${this.url} is read-only (https://): cannot ${op} ${key}; publish through a file:// or s3:// store`, {
      details: { store: this.url, key, op },
    });
  }

  write(key: string, _data?: string | Buffer, _opts?: WriteStoreOptions): Promise<boolean> {
    return Promise.reject(this.readOnly('write', key));
  }

  list(prefix: string): Promise<readonly string[]> {
    return Promise.reject(
      new AgentError('STATE_STORE', `state store ${this.url} (https://) cannot list keys under ${prefix}; use a file:// or s3:// store for this operation`, {
        details: { store: this.url, prefix, op: 'list' },
      }),
    );
  }

  remove(key: string): Promise<void> {
    return Promise.reject(this.readOnly('remove', key));
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}
