// Registers the non-file state-store backends. Imported once by the agent's run.
// s3:// and https:// (http:// falls back to the https backend in open.ts). Their modules, and with
// them the AWS SDK (about 0.4 s and 30 MB to load), are loaded on first use: commands that never
// touch such a store (version, schema, a file:// run) do not pay for them. Bad URLs still fail at
// open time.
import { storeBackends, type OpenStoreOptions } from './open.ts';
import type { StateStore, WriteStoreOptions } from '../engine/state-store.ts';
import { checkHttpStoreUrl, parseS3Url } from './store-urls.ts';

/** A StateStore whose backend module loads on the first operation. */
export class LazyStore implements StateStore {
  readonly url: string;
  readonly writable: boolean;
  private readonly load: () => Promise<StateStore>;
  private store: Promise<StateStore> | undefined;

  constructor(url: string, writable: boolean, load: () => Promise<StateStore>) {
    this.url = url;
    this.writable = writable;
    this.load = load;
  }

  /** The backend, loaded once. */
  backend(): Promise<StateStore> {
    this.store ??= this.load();
    return this.store;
  }

  async read(key: string): Promise<Buffer | undefined> {
    return (await this.backend()).read(key);
  }

  async write(key: string, data: string | Buffer, opts?: WriteStoreOptions): Promise<boolean> {
    return (await this.backend()).write(key, data, opts);
  }

  async list(prefix: string): Promise<readonly string[]> {
    return (await this.backend()).list(prefix);
  }

  async remove(key: string): Promise<void> {
    return (await this.backend()).remove(key);
  }
}

export function openS3Store(url: string, opts: OpenStoreOptions): StateStore {
  parseS3Url(url);
  return new LazyStore(url.replace(/\/+$/, ''), true, async () => {
    const { S3Store } = await import('./s3-store.ts');
    return new S3Store(url, { s3: opts.s3, log: opts.log, retry: opts.retry });
  });
}

export function openHttpsStore(url: string, opts: OpenStoreOptions): StateStore {
  const clean = checkHttpStoreUrl(url);
  const { protocol, hostname } = new URL(clean);
  if (protocol === 'http:' && !/^(127\.|localhost$|\[::1\]$)/.test(hostname)) {
    opts.log?.warn({ store: clean }, 'state store over plain http: secrets read from it travel unencrypted, use https');
  }
  return new LazyStore(clean, false, async () => {
    const { HttpsStore } = await import('./https-store.ts');
    return new HttpsStore(url, { log: opts.log, retry: opts.retry });
  });
}

storeBackends.set('s3:', openS3Store);
storeBackends.set('https:', openHttpsStore);
