// s3:// state store: AWS S3 and S3-compatible servers (MinIO, Ceph RGW, ...) through the AWS SDK v3.
// URL: s3://<bucket>/<prefix>. Endpoint, region and path-style addressing come from the boot
// config's `s3` settings; credentials come from the SDK's default chain (environment, profile,
// web identity, ECS, EC2 instance role over IMDSv2), never from the config.
// Create-only writes use a conditional PutObject (`If-None-Match: *`): the server refuses the second
// writer with 412, so two nodes racing for a lock get one winner. Transient failures (network,
// 5xx, throttling) are retried with backoff by withRetry; the SDK's own retries are off so every
// wait is logged with its reason.
import { createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { AgentError, errorMessage } from '../engine/errors.ts';
import type { Logger } from '../engine/log.ts';
import { silentLogger } from '../engine/log.ts';
import type { S3Settings } from '../model/config.ts';
import { parseS3Url } from './store-urls.ts';
import { defaultRetry, withRetry, type RetryPolicy, type StateStore, type WriteStoreOptions } from '../engine/state-store.ts';

export { parseS3Url };

export interface S3StoreOptions {
  readonly s3?: S3Settings | undefined;
  readonly log?: Logger | undefined;
  readonly retry?: RetryPolicy | undefined;
  /** Per-request timeouts (ms). */
  readonly connectTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
}

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $fault?: 'client' | 'server';
  $retryable?: unknown;
}

const transientNames = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalError',
  'ServiceUnavailable',
  'TimeoutError',
  'ConditionalRequestConflict',
  'OperationAborted',
]);
const transientCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);

/** How an SDK error should be handled. Pure (exported for tests). */
export function classifyS3Error(err: unknown): { status: number | undefined; name: string; transient: boolean } {
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkError;
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? e.code ?? 'Error';
  const transient =
    transientNames.has(name) ||
    (e.code !== undefined && transientCodes.has(e.code)) ||
    (status !== undefined && (status >= 500 || status === 429 || status === 408 || status === 409)) ||
    (status === undefined && e.$retryable !== undefined);
  return { status, name, transient };
}

/** What to do about a failure, in words an operator can act on. Pure (exported for tests). */
export function s3Hint(name: string, status: number | undefined): string {
  if (name === 'NoSuchBucket') return 'the bucket does not exist: create it or fix stateStore';
  if (name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch') return 'the server rejected the credentials: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the instance role';
  if (name === 'AccessDenied' || name === 'Forbidden' || status === 403) {
    return 'access denied: check that the credentials (env, profile or instance role) allow s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket on this bucket';
  }
  if (name === 'CredentialsProviderError') return 'no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or attach an instance role';
  if (name === 'PermanentRedirect' || status === 301) return 'the bucket is in another region: set s3.region in the boot config';
  if (name === 'NotImplemented' || status === 501) return 'the server does not support this request (conditional writes need If-None-Match support)';
  return 'check s3.endpoint, the network and the server';
}

function isAgentTransient(err: unknown): boolean {
  return err instanceof AgentError && err.details.transient === true;
}

export class S3Store implements StateStore {
  readonly url: string;
  readonly writable = true;
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly retry: RetryPolicy;
  private readonly log: Logger;

  constructor(url: string, opts: S3StoreOptions = {}) {
    this.url = url.replace(/\/+$/, '');
    ({ bucket: this.bucket, prefix: this.prefix } = parseS3Url(this.url));
    this.retry = opts.retry ?? defaultRetry;
    this.log = opts.log ?? silentLogger;
    const s3 = opts.s3;
    const config: S3ClientConfig = {
      region: s3?.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      forcePathStyle: s3?.forcePathStyle ?? false,
      // withRetry retries and logs; the SDK would retry silently on top of it.
      maxAttempts: 1,
      requestHandler: { connectionTimeout: opts.connectTimeoutMs ?? 5_000, requestTimeout: opts.requestTimeoutMs ?? 30_000 },
      // S3-compatible servers do not all know the SDK's newer default checksums.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...(s3?.endpoint ? { endpoint: s3.endpoint } : { followRegionRedirects: true }),
    };
    this.client = new S3Client(config);
  }

  /** The object key of a store key. */
  objectKey(key: string): string {
    const k = key.replace(/^\/+/, '');
    if (k === '' || k.split('/').some((p) => p === '..' || p === '.')) {
      throw new AgentError('STATE_STORE', `state store key is not valid: ${JSON.stringify(key)}`, { details: { key } });
    }
    return this.prefix ? `${this.prefix}/${k}` : k;
  }

  private async call<T>(op: string, key: string, fn: () => Promise<T>): Promise<T> {
    const what = `${op} ${key}`;
    try {
      return await withRetry(
        what,
        this.url,
        async () => {
          try {
            return await fn();
          } catch (err: unknown) {
            throw this.wrap(op, key, err);
          }
        },
        isAgentTransient,
        this.retry,
        this.log,
      );
    } catch (err: unknown) {
      if (isAgentTransient(err) && err instanceof AgentError) {
        throw new AgentError('STATE_STORE', `${err.message} (gave up after ${this.retry.attempts} attempts)`, {
          cause: err.cause,
          details: { ...err.details, attempts: this.retry.attempts },
        });
      }
      throw err;
    }
  }

  private wrap(op: string, key: string, err: unknown): AgentError {
    if (err instanceof AgentError) return err;
    const { status, name, transient } = classifyS3Error(err);
    const objectKey = (this.prefix ? `${this.prefix}/` : '') + key.replace(/^\/+/, '');
    const reason = `${name}${status !== undefined ? ` (HTTP ${status})` : ''}: ${errorMessage(err)}`;
    return new AgentError('STATE_STORE', `state store ${this.url}: cannot ${op} s3://${this.bucket}/${objectKey}: ${reason}; ${s3Hint(name, status)}`, {
      cause: err,
      details: { store: this.url, bucket: this.bucket, key: objectKey, op, status, error: name, transient },
    });
  }

  async read(key: string): Promise<Buffer | undefined> {
    const Key = this.objectKey(key);
    return this.call('read', key, async () => {
      try {
        const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }));
        if (!res.Body) return Buffer.alloc(0);
        return Buffer.from(await res.Body.transformToByteArray());
      } catch (err: unknown) {
        const { status, name } = classifyS3Error(err);
        if (name === 'NoSuchKey' || (status === 404 && name !== 'NoSuchBucket')) return undefined;
        throw err;
      }
    });
  }

  async write(key: string, data: string | Buffer, opts: WriteStoreOptions = {}): Promise<boolean> {
    const Key = this.objectKey(key);
    const Body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    return this.call('write', key, async () => {
      try {
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key,
            Body,
            ContentLength: Body.length,
            ...(opts.ifAbsent ? { IfNoneMatch: '*' } : {}),
          }),
        );
        return true;
      } catch (err: unknown) {
        const { status, name } = classifyS3Error(err);
        if (opts.ifAbsent && (status === 412 || name === 'PreconditionFailed')) return false;
        throw err;
      }
    });
  }

  async list(prefix: string): Promise<readonly string[]> {
    const base = this.prefix ? `${this.prefix}/` : '';
    const full = base + prefix.replace(/^\/+/, '');
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.call('list', prefix, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: full, ...(token ? { ContinuationToken: token } : {}) })),
      );
      for (const o of page.Contents ?? []) {
        if (o.Key && o.Key.startsWith(base)) out.push(o.Key.slice(base.length));
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  }

  async remove(key: string): Promise<void> {
    const Key = this.objectKey(key);
    await this.call('remove', key, async () => {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
    });
  }

  /**
   * The SHA-256 an object was uploaded with by putFile (its `sha256` metadata), or undefined when
   * the object is missing or was written another way.
   */
  async fileDigest(key: string): Promise<string | undefined> {
    const Key = this.objectKey(key);
    return this.call('head', key, async () => {
      try {
        const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
        return res.Metadata?.sha256;
      } catch (err: unknown) {
        const { status, name } = classifyS3Error(err);
        if (name === 'NotFound' || name === 'NoSuchKey' || (status === 404 && name !== 'NoSuchBucket')) return undefined;
        throw err;
      }
    });
  }

  /**
   * Uploads a local file, streamed, with its SHA-256 as the request's checksum (the server refuses
   * bytes that do not match it: BadDigest) and as the object's `sha256` metadata (fileDigest).
   */
  async putFile(key: string, file: string, sha256: string): Promise<void> {
    const Key = this.objectKey(key);
    const { size } = await fsp.stat(file);
    await this.call('upload', key, async () => {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key,
          Body: createReadStream(file),
          ContentLength: size,
          ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64'),
          Metadata: { sha256 },
        }),
      );
    });
  }

  /** Closes idle sockets (tests, short-lived commands). */
  close(): void {
    this.client.destroy();
  }
}
