// Layer: component. Imports src/engine and src/model only, never another component's folder.
// Opens a state store from its URL. The cluster's own prefix is part of the URL the boot config
// names, so every key the agent uses is relative to the cluster.
import { AgentError } from '../engine/errors.ts';
import type { Logger } from '../engine/log.ts';
import type { S3Settings } from '../model/config.ts';
import { FileStore } from './file-store.ts';
import type { RetryPolicy, StateStore } from '../engine/state-store.ts';

export interface OpenStoreOptions {
  readonly s3?: S3Settings | undefined;
  readonly log?: Logger;
  readonly retry?: RetryPolicy;
}

export type StoreFactory = (url: string, opts: OpenStoreOptions) => StateStore;

/** Backends register here (s3, https live in their own files so file:// stays light). */
export const storeBackends = new Map<string, StoreFactory>([['file:', (url) => new FileStore(url)]]);

export function openStateStore(url: string, opts: OpenStoreOptions = {}): StateStore {
  let scheme: string;
  try {
    scheme = new URL(url).protocol;
  } catch {
    throw new AgentError('CONFIG_INVALID', `stateStore: not a URL: ${url}`, { details: { field: 'stateStore' } });
  }
  const factory = storeBackends.get(scheme) ?? (scheme === 'http:' ? storeBackends.get('https:') : undefined);
  if (!factory) {
    throw new AgentError('CONFIG_INVALID', `stateStore: unsupported scheme ${scheme} (use file://, s3:// or https://)`, {
      details: { field: 'stateStore', url },
    });
  }
  return factory(url, opts);
}
