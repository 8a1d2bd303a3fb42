// Registers the non-file state-store backends. Imported once by the agent's run.
// s3:// and https:// (http:// falls back to the https backend in open.ts).
import { HttpsStore } from './https-store.ts';
import { storeBackends } from './open.ts';
import { S3Store } from './s3-store.ts';

storeBackends.set('s3:', (url, opts) => new S3Store(url, { s3: opts.s3, log: opts.log, retry: opts.retry }));
storeBackends.set('https:', (url, opts) => new HttpsStore(url, { log: opts.log, retry: opts.retry }));
