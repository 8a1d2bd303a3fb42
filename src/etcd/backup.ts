// etcd backups in the state store: backups/etcd/<cluster>/<UTC time>-<reason>/{snapshot.db.gz,meta.json}.
// Taken before every membership change and by the scheduled timer; retention keeps the newest N.
import { createHash } from 'node:crypto';
import { AgentError } from '../engine/errors.ts';
import type { Logger } from '../engine/log.ts';
import { silentLogger } from '../engine/log.ts';
import { storeLayout, type StateStore } from '../engine/state-store.ts';
import type { EtcdClient } from './client.ts';

export interface BackupMeta {
  readonly name: string;
  readonly cluster: string;
  readonly reason: string;
  readonly takenAt: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly etcdVersion: string;
  readonly members: readonly string[];
}

function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:.]/g, ''); // 20261123T172800123Z: sorts by time
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 48) || 'manual';
}

export interface BackupOptions {
  readonly reason: string;
  readonly now?: number;
  readonly log?: Logger;
  /** Keep only this many backups of the cluster afterwards. */
  readonly retention?: number;
}

/** Snapshots the cluster through `client` and stores it. Returns the backup's metadata. */
export async function backupToStore(client: EtcdClient, store: StateStore, cluster: string, opts: BackupOptions): Promise<BackupMeta> {
  const log = opts.log ?? silentLogger;
  const started = Date.now();
  const { members } = await client.memberList();
  let version = '';
  for (const ep of client.endpoints) {
    try {
      version = (await client.status(ep)).version;
      break;
    } catch {
      // the next endpoint may answer
    }
  }
  const db = await client.snapshot();
  const name = `${stamp(opts.now ?? Date.now())}-${slug(opts.reason)}`;
  const prefix = storeLayout.etcdBackups(cluster) + name;
  const meta: BackupMeta = {
    name,
    cluster,
    reason: opts.reason,
    takenAt: new Date(opts.now ?? Date.now()).toISOString(),
    bytes: db.length,
    sha256: createHash('sha256').update(db).digest('hex'),
    etcdVersion: version,
    members: members.map((m) => m.name || m.id).sort(),
  };
  // zlib loads here, not at start-up: most runs take no backup (issue 17).
  const { gzipSync } = await import('node:zlib');
  await store.write(`${prefix}/snapshot.db.gz`, gzipSync(db), { secret: true });
  // meta.json last: a backup without it is incomplete and never listed.
  await store.write(`${prefix}/meta.json`, JSON.stringify(meta, null, 2) + '\n');
  log.info({ cluster, backup: name, bytes: db.length, durationMs: Date.now() - started, reason: opts.reason }, 'etcd backup stored');
  if (opts.retention !== undefined) await pruneBackups(store, cluster, opts.retention, log);
  return meta;
}

/** Complete backups of a cluster, oldest first. */
export async function listBackups(store: StateStore, cluster: string): Promise<readonly string[]> {
  const prefix = storeLayout.etcdBackups(cluster);
  const keys = await store.list(prefix);
  return keys
    .filter((k) => k.endsWith('/meta.json'))
    .map((k) => k.slice(prefix.length, -'/meta.json'.length))
    .sort();
}

export async function readBackupMeta(store: StateStore, cluster: string, name: string): Promise<BackupMeta> {
  const raw = await store.read(`${storeLayout.etcdBackups(cluster)}${name}/meta.json`);
  if (!raw) {
    throw new AgentError('ETCD_MEMBERSHIP', `no backup ${name} for etcd cluster ${cluster} in ${store.url} (nodeup etcd backup --list shows them)`, {
      details: { cluster, backup: name },
    });
  }
  return JSON.parse(raw.toString('utf8')) as BackupMeta;
}

/** The snapshot bytes of a backup, checked against its recorded SHA-256. */
export async function readBackup(store: StateStore, cluster: string, name: string): Promise<{ readonly meta: BackupMeta; readonly db: Buffer }> {
  const meta = await readBackupMeta(store, cluster, name);
  const gz = await store.read(`${storeLayout.etcdBackups(cluster)}${name}/snapshot.db.gz`);
  if (!gz) throw new AgentError('ETCD_MEMBERSHIP', `backup ${name} of ${cluster} has no snapshot.db.gz`, { details: { cluster, backup: name } });
  const { gunzipSync } = await import('node:zlib');
  const db = gunzipSync(gz);
  const sha = createHash('sha256').update(db).digest('hex');
  if (sha !== meta.sha256) {
    throw new AgentError('CHECKSUM_MISMATCH', `backup ${name} of ${cluster} is corrupt: sha256 ${sha}, meta.json says ${meta.sha256}`, {
      details: { cluster, backup: name },
    });
  }
  return { meta, db };
}

/** Deletes all but the newest `keep` backups. */
export async function pruneBackups(store: StateStore, cluster: string, keep: number, log: Logger = silentLogger): Promise<readonly string[]> {
  const all = await listBackups(store, cluster);
  const drop = all.slice(0, Math.max(0, all.length - keep));
  for (const name of drop) {
    const prefix = `${storeLayout.etcdBackups(cluster)}${name}/`;
    // meta.json first: a half-deleted backup is then no longer listed.
    await store.remove(`${prefix}meta.json`);
    for (const k of await store.list(prefix)) await store.remove(k);
  }
  if (drop.length > 0) log.info({ cluster, removed: drop.length, kept: all.length - drop.length }, 'old etcd backups removed');
  return drop;
}
