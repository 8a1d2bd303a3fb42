// Guided restore after quorum loss: a backup from the state store becomes the data dir of a new
// one-member cluster on this node (the old data dir is moved aside, never deleted); the state store
// forgets the old members, so every other control-plane node rejoins as a learner once its own data
// dir is moved aside and nodeup apply runs there.
import * as path from 'node:path/posix';
import { AgentError } from '../engine/errors.ts';
import type { Host } from '../engine/host/host.ts';
import type { Logger } from '../engine/log.ts';
import { silentLogger } from '../engine/log.ts';
import { storeLayout, type StateStore } from '../engine/state-store.ts';
import { listBackups, readBackup, type BackupMeta } from './backup.ts';
import type { StartParams } from './join.ts';
import { createdKey, registerMember, registeredMembers, type CreatedMarker, type MemberIdentity } from './membership.ts';

export interface RestoreInput {
  readonly host: Host;
  readonly store: StateStore;
  readonly cluster: string;
  /** A backup name, or "latest". */
  readonly backup: string;
  readonly self: MemberIdentity;
  readonly dataDir: string;
  /** etcdutl (3.5+) or etcdctl (3.4, which still restores snapshots). */
  readonly restoreTool: string;
  readonly log?: Logger;
  readonly now?: number;
}

export interface RestoreResult {
  readonly meta: BackupMeta;
  readonly movedAside?: string;
  readonly start: StartParams;
  /** Members the state store knew before the restore (they must rejoin). */
  readonly formerMembers: readonly MemberIdentity[];
}

export async function resolveBackupName(store: StateStore, cluster: string, name: string): Promise<string> {
  if (name !== 'latest') return name;
  const all = await listBackups(store, cluster);
  const last = all[all.length - 1];
  if (!last) throw new AgentError('ETCD_MEMBERSHIP', `no backups of etcd cluster ${cluster} in ${store.url}`, { details: { cluster } });
  return last;
}

export async function restoreFromBackup(i: RestoreInput): Promise<RestoreResult> {
  const log = i.log ?? silentLogger;
  const now = i.now ?? Date.now();
  const name = await resolveBackupName(i.store, i.cluster, i.backup);
  const { meta, db } = await readBackup(i.store, i.cluster, name);
  log.info({ cluster: i.cluster, backup: name, bytes: db.length, takenAt: meta.takenAt }, 'restoring etcd backup');
  let movedAside: string | undefined;
  if (await i.host.fs.stat(i.dataDir)) {
    movedAside = `${i.dataDir}.before-restore-${new Date(now).toISOString().replace(/[-:.]/g, '')}`;
    await i.host.run('mv', [i.host.fs.hostPath(i.dataDir), i.host.fs.hostPath(movedAside)]);
    log.info({ from: i.dataDir, to: movedAside }, 'old etcd data dir moved aside');
  }
  const token = `nodeup-${i.cluster}-restored-${now.toString(36)}`;
  const snapFile = `${path.dirname(i.dataDir)}/.${path.basename(i.dataDir)}.restore-${now.toString(36)}.db`;
  await i.host.fs.mkdirp(path.dirname(i.dataDir), 0o700);
  await i.host.fs.writeAtomic(snapFile, db, { mode: 0o600 });
  const initialCluster = `${i.self.name}=${i.self.peerUrl}`;
  try {
    await i.host.run(
      i.restoreTool,
      [
        'snapshot',
        'restore',
        i.host.fs.hostPath(snapFile),
        `--name=${i.self.name}`,
        `--initial-cluster=${initialCluster}`,
        `--initial-advertise-peer-urls=${i.self.peerUrl}`,
        `--initial-cluster-token=${token}`,
        `--data-dir=${i.host.fs.hostPath(i.dataDir)}`,
      ],
      { env: { ETCDCTL_API: '3' }, timeoutMs: 600_000 },
    );
  } finally {
    await i.host.fs.remove(snapFile);
  }
  const formerMembers = await registeredMembers(i.store, i.cluster);
  for (const m of formerMembers) await i.store.remove(storeLayout.etcdControl(i.cluster, `members/${m.name}.json`));
  const marker: CreatedMarker = { by: i.self.name, at: new Date(now).toISOString(), token };
  await i.store.write(createdKey(i.cluster), JSON.stringify({ ...marker, restoredFrom: name }) + '\n');
  await registerMember(i.store, i.cluster, i.self);
  log.info({ cluster: i.cluster, backup: name, member: i.self.name }, 'etcd data restored into a new one-member cluster');
  return { meta, ...(movedAside ? { movedAside } : {}), start: { initialCluster, initialClusterState: 'new', initialClusterToken: token }, formerMembers };
}

/** What the operator must do, in order. Pure. */
export function restoreGuide(cluster: string, self: string, others: readonly string[], stopHow: string, dataDir: string): string[] {
  const lines = [
    `Restoring etcd cluster "${cluster}" on ${self}. Quorum was lost or data is bad, so the cluster is rebuilt from one backup:`,
    `  1. Stop etcd ${cluster} on EVERY control-plane node, this one included (${stopHow}).`,
  ];
  if (others.length > 0) lines.push(`     Other members known to the state store: ${others.join(', ')}.`);
  lines.push(
    `  2. On this node: nodeup etcd restore moves ${dataDir} aside and restores the backup into it as a new one-member cluster.`,
    `  3. Start etcd here again (nodeup apply), and check: nodeup etcd members.`,
    `  4. On each other control-plane node: move its ${dataDir} aside, then run nodeup apply: it rejoins as a learner and is promoted.`,
  );
  return lines;
}
