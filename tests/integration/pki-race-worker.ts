// One contender in the CA race: waits for the agreed instant, then creates the cluster PKI.
// Prints "created" or "existing".
import { ensureClusterPki } from '../../src/engine/pki/cluster-pki.ts';
import { FileStore } from '../../src/statestore/file-store.ts';

const [url, holder, startAt] = process.argv.slice(2);
const store = new FileStore(String(url));
const wait = Number(startAt) - Date.now();
if (wait > 0) await new Promise((r) => setTimeout(r, wait));
process.stdout.write((await ensureClusterPki(store, { holder: String(holder) })) + '\n');
