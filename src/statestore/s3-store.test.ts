// Pure parts of the s3:// backend. The backend itself runs against a real MinIO in
// tests/integration/statestore-s3.test.ts.
import { describe, expect, it } from 'vitest';
import { AgentError } from '../engine/errors.ts';
import { openStateStore } from './open.ts';
import { classifyS3Error, parseS3Url, S3Store, s3Hint } from './s3-store.ts';
import { LazyStore } from './backends.ts';

describe('parseS3Url', () => {
  it.each([
    ['s3://my-bucket', 'my-bucket', ''],
    ['s3://my-bucket/', 'my-bucket', ''],
    ['s3://my-bucket/clusters/prod', 'my-bucket', 'clusters/prod'],
    ['s3://my.bucket.example/a//b/', 'my.bucket.example', 'a/b'],
  ])('%s', (url, bucket, prefix) => {
    expect(parseS3Url(url)).toEqual({ bucket, prefix });
  });

  it.each([['s3://'], ['s3://UPPER/x'], ['s3://a/x'], ['s3://bucket/x?versionId=1'], ['https://bucket/x']])('refuses %s', (url) => {
    const err = (() => {
      try {
        parseS3Url(url);
      } catch (e: unknown) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe('CONFIG_INVALID');
    expect((err as AgentError).details.field).toBe('stateStore');
  });
});

describe('classifyS3Error', () => {
  it.each([
    [{ name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }, false],
    [{ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }, false],
    [{ name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } }, false],
    [{ name: 'ConditionalRequestConflict', $metadata: { httpStatusCode: 409 } }, true],
    [{ name: 'SlowDown', $metadata: { httpStatusCode: 503 } }, true],
    [{ name: 'InternalError', $metadata: { httpStatusCode: 500 } }, true],
    [{ name: 'Error', code: 'ECONNREFUSED' }, true],
    [{ name: 'TimeoutError' }, true],
    [{ name: 'CredentialsProviderError' }, false],
    ['not even an object', false],
  ])('%o transient=%s', (err, transient) => {
    expect(classifyS3Error(err).transient).toBe(transient);
  });
});

describe('s3Hint', () => {
  it('tells what to do for the usual failures', () => {
    expect(s3Hint('NoSuchBucket', 404)).toMatch(/create it or fix stateStore/);
    expect(s3Hint('AccessDenied', 403)).toMatch(/s3:GetObject.*s3:ListBucket/);
    expect(s3Hint('InvalidAccessKeyId', 403)).toMatch(/AWS_ACCESS_KEY_ID/);
    expect(s3Hint('CredentialsProviderError', undefined)).toMatch(/instance role/);
    expect(s3Hint('PermanentRedirect', 301)).toMatch(/s3\.region/);
  });
});

describe('S3Store', () => {
  it('keeps keys under the prefix and refuses keys that climb out', () => {
    const s3 = new S3Store('s3://state-bucket/clusters/prod/', { s3: { endpoint: 'http://127.0.0.1:1', region: 'us-east-1', forcePathStyle: true } });
    expect(s3.url).toBe('s3://state-bucket/clusters/prod');
    expect(s3.writable).toBe(true);
    expect(s3.objectKey('igconfig/nodes/node.yaml')).toBe('clusters/prod/igconfig/nodes/node.yaml');
    expect(() => s3.objectKey('../other/secret')).toThrow(/key is not valid/);
    s3.close();
  });
});

describe('openStateStore for s3://', () => {
  it('returns a lazily loaded S3Store, and refuses a bad URL at once', async () => {
    const store = openStateStore('s3://state-bucket/clusters/prod/', { s3: { endpoint: 'http://127.0.0.1:1', region: 'us-east-1', forcePathStyle: true } });
    expect(store).toBeInstanceOf(LazyStore);
    expect(store.url).toBe('s3://state-bucket/clusters/prod');
    expect(store.writable).toBe(true);
    const backend = await (store as LazyStore).backend();
    expect(backend).toBeInstanceOf(S3Store);
    expect((backend as S3Store).objectKey('pki/ca.crt')).toBe('clusters/prod/pki/ca.crt');
    (backend as S3Store).close();
    expect(() => openStateStore('s3://Bad_Bucket/x')).toThrow(/not a valid S3 bucket name/);
  });
});
