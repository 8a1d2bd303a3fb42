// Validation of s3:// and https:// state-store URLs, kept apart from the backends so opening a store
// reports a bad URL at once without loading the AWS SDK or an HTTP client. Pure.
import { AgentError } from '../engine/errors.ts';

/** s3://bucket/some/prefix -> { bucket, prefix: "some/prefix" }. */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/?#]+)(\/[^?#]*)?$/.exec(url);
  const bucket = m?.[1];
  if (!m || !bucket) {
    throw new AgentError('CONFIG_INVALID', `stateStore: expected s3://<bucket>/<prefix>, got ${url}`, { details: { field: 'stateStore', url } });
  }
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new AgentError('CONFIG_INVALID', `stateStore: ${bucket} is not a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)`, {
      details: { field: 'stateStore', url, bucket },
    });
  }
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '').replace(/\/{2,}/g, '/');
  return { bucket, prefix };
}

/** Checks an https:// (or http://) store URL; returns it without trailing slashes. */
export function checkHttpStoreUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AgentError('CONFIG_INVALID', `stateStore: not a URL: ${url}`, { details: { field: 'stateStore' } });
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new AgentError('CONFIG_INVALID', `stateStore: expected an https:// URL, got ${url}`, { details: { field: 'stateStore', url } });
  }
  if (parsed.search || parsed.hash || parsed.username || parsed.password) {
    throw new AgentError('CONFIG_INVALID', 'stateStore: an https:// state store URL takes no query, fragment or credentials', {
      details: { field: 'stateStore' },
    });
  }
  return url.replace(/\/+$/, '');
}
