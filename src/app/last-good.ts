// The node's last good config: after a whole `apply` (no --only, no --skip) converges, nodeup keeps
// the NodeConfig bytes it ran and their hash on the node (/var/lib/nodeup/last-good/). When a new
// config breaks the node, `nodeup rollback` converges it back to them without the state store.
// The bytes can hold user files' contents: 0600, like the store's own copy on a file:// store.
import type { Host } from '../engine/host/host.ts';
import { AgentError } from '../engine/errors.ts';
import { configHash } from '../model/config.ts';

export const lastGoodDir = '/var/lib/nodeup/last-good';
export const lastGoodConfigPath = `${lastGoodDir}/node.yaml`;
export const lastGoodRecordPath = `${lastGoodDir}/record.json`;

export interface LastGoodRecord {
  readonly configHash: string;
  readonly kubernetesVersion?: string;
  /** When the run that converged on it finished (ISO 8601). */
  readonly convergedAt: string;
  /** Where the bytes came from (the store URL and key). */
  readonly source: string;
}

/** Keeps `raw` as the last good config; the same config again writes nothing (a converged node's re-run changes nothing). */
export async function saveLastGood(host: Host, raw: Buffer, record: LastGoodRecord): Promise<void> {
  const kept = await host.fs.read(lastGoodConfigPath);
  if (kept && kept.equals(raw) && (await host.fs.stat(lastGoodRecordPath))) return;
  await host.fs.mkdirp(lastGoodDir, 0o700);
  await host.fs.writeAtomic(lastGoodConfigPath, raw, { mode: 0o600 });
  await host.fs.writeAtomic(lastGoodRecordPath, JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
}

/** The last good config and its record; USAGE when there is none, CONFIG_HASH_MISMATCH when the bytes do not match the record. */
export async function readLastGood(host: Host): Promise<{ raw: Buffer; record: LastGoodRecord }> {
  const raw = await host.fs.read(lastGoodConfigPath);
  const rec = await host.fs.read(lastGoodRecordPath);
  if (!raw || !rec) {
    throw new AgentError('USAGE', `nothing to roll back to: ${lastGoodDir} holds no config (it is kept after a whole apply converges on this node)`, { details: { path: lastGoodDir } });
  }
  const record = JSON.parse(rec.toString('utf8')) as LastGoodRecord;
  if (configHash(raw) !== record.configHash) {
    throw new AgentError('CONFIG_HASH_MISMATCH', `${lastGoodConfigPath} does not match the hash in ${lastGoodRecordPath} (${record.configHash}): it was changed by hand; rolling back to it is refused`, {
      details: { path: lastGoodConfigPath },
    });
  }
  return { raw, record };
}
