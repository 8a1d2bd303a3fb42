// etcd membership that never loses quorum or data. Plain functions over an EtcdClient and the state
// store, so tests and tools drive them against any etcd processes; the etcd-member task is a thin
// wrapper.
//  - The first node claims etcd/<cluster>/created (a create-only write) and starts a new cluster.
//  - Every later node is added as a learner, starts with initial-cluster-state=existing, and is
//    promoted once it has caught up (etcd itself refuses to promote a learner that is behind).
//  - A member is removed only when the removal keeps quorum; the guard says why otherwise.
//  - Before every membership change a snapshot goes to backups/etcd/<cluster>/.
import { AgentError, errorMessage } from '../engine/errors.ts';
import type { Logger } from '../engine/log.ts';
import { silentLogger } from '../engine/log.ts';
import { storeLayout, type StateStore } from '../engine/state-store.ts';
import { backupToStore } from './backup.ts';
import { etcdRefusal, memberHex, type EtcdClient, type EtcdErrorKind, type EtcdMember } from './client.ts';
import { clockOf, linearBackoff, retry } from '../engine/retry.ts';
import { versionAtLeast } from '../engine/version.ts';

export interface MemberIdentity {
  readonly name: string;
  readonly peerUrl: string;
  readonly clientUrl: string;
}

export interface CreatedMarker {
  readonly by: string;
  readonly at: string;
  readonly token: string;
}

export const createdKey = (cluster: string): string => storeLayout.etcdControl(cluster, 'created');
export const memberKey = (cluster: string, name: string): string => storeLayout.etcdControl(cluster, `members/${name}.json`);

/** Quorum of n voting members. */
export function quorumOf(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

export interface MemberHealth {
  readonly member: EtcdMember;
  readonly healthy: boolean;
  readonly isLeader: boolean;
  readonly error?: string;
  readonly raftIndex?: number;
}

export interface ClusterHealth {
  readonly clusterId: string;
  readonly members: readonly MemberHealth[];
  readonly voters: number;
  readonly healthyVoters: number;
  readonly leaderId: string | undefined;
  /**
   * The member list was linearizable and the members are etcd 3.5 or later: etcd served it through
   * its leader with a quorum read, so the cluster had quorum a moment ago, whatever the status
   * probes say.
   */
  readonly quorumProven: boolean;
}

/** Member list plus each member's own status (a member answering its status endpoint is healthy). */
export async function clusterHealth(client: EtcdClient, opts: { readonly linearizable?: boolean } = {}): Promise<ClusterHealth> {
  const linearizable = opts.linearizable ?? true;
  const { clusterId, members } = await client.memberList({ linearizable });
  const probe = async (m: EtcdMember, timeoutMs?: number): Promise<Probe> => {
    const ep = m.clientURLs[0];
    if (!ep) return { member: m, healthy: false, error: 'not started (no client URL yet)' };
    try {
      const s = await client.status(ep, timeoutMs);
      return { member: m, healthy: true, leader: s.leader, raftIndex: s.raftIndex, version: s.version };
    } catch (err: unknown) {
      return { member: m, healthy: false, error: errorMessage(err) };
    }
  };
  let statuses = await Promise.all(members.map((m) => probe(m)));
  // A quorum just served the list, yet too few voters answered their status within its short
  // timeout: on a loaded host they are slow, not gone. Ask those once more with time to answer,
  // before any guard reads this as a lost quorum.
  const quorumProven = linearizable && servedByQuorum(statuses);
  if (quorumProven && healthyVotersOf(statuses) < quorumOf(votersOf(statuses))) {
    statuses = await Promise.all(statuses.map(async (s) => (s.healthy || !s.member.clientURLs[0] ? s : probe(s.member, slowStatusTimeoutMs))));
  }
  const leaderId = statuses.find((s) => s.leader && s.leader !== '0')?.leader;
  const out: MemberHealth[] = statuses.map((s) => ({
    member: s.member,
    healthy: s.healthy,
    isLeader: leaderId !== undefined && s.member.id === leaderId,
    ...(s.error !== undefined ? { error: s.error } : {}),
    ...(s.raftIndex !== undefined ? { raftIndex: s.raftIndex } : {}),
  }));
  return { clusterId, members: out, voters: votersOf(out), healthyVoters: healthyVotersOf(out), leaderId, quorumProven };
}

/**
 * A linearizable member list went through a quorum only on etcd 3.5 and later: 3.4 ignores the
 * request's `linearizable` and answers from the member's own view. So every member that answered
 * must be 3.5 or later (and one must have answered, to know).
 */
function servedByQuorum(statuses: readonly Probe[]): boolean {
  const versions = statuses.flatMap((s) => (s.version ? [s.version] : []));
  return versions.length > 0 && versions.every((v) => versionAtLeast(v, 3, 5));
}

interface Probe {
  readonly member: EtcdMember;
  readonly healthy: boolean;
  readonly leader?: string;
  readonly raftIndex?: number;
  readonly version?: string;
  readonly error?: string;
}

/** The second status probe's timeout, for members that missed the first (3 s) on a busy host. */
const slowStatusTimeoutMs = 15_000;
const votersOf = (ms: readonly { readonly member: EtcdMember }[]): number => ms.filter((m) => !m.member.isLearner).length;
const healthyVotersOf = (ms: readonly { readonly member: EtcdMember; readonly healthy: boolean }[]): number => ms.filter((m) => !m.member.isLearner && m.healthy).length;

/**
 * A guard's answer. `busy`: the refusal rests on status probes that a quorum read contradicts (the
 * members are too slow to answer, not gone), so it is worth waiting out, not a lost quorum.
 */
export type GuardVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: string; readonly busy?: boolean };

/** Too few voters answered their status, though a quorum served the member list a moment ago. */
function busyVerdict(health: ClusterHealth, what: string): GuardVerdict {
  return {
    ok: false,
    busy: true,
    reason: `cannot ${what} yet: only ${health.healthyVoters} of ${health.voters} voting members answered their status in time, but etcd answered a linearizable member list, which needs a quorum: its members are busy, not gone`,
  };
}

/** Would removing this member keep quorum? Pure. */
export function checkRemoval(health: ClusterHealth, memberId: string): GuardVerdict {
  const target = health.members.find((h) => h.member.id === memberId);
  if (!target) return { ok: false, reason: `member ${memberHex(memberId)} is not in the cluster` };
  const label = target.member.name || memberHex(memberId);
  if (target.member.isLearner) return { ok: true }; // learners do not vote
  if (health.healthyVoters < quorumOf(health.voters)) {
    if (health.quorumProven) return busyVerdict(health, `remove ${label}`);
    return { ok: false, reason: `the cluster has lost quorum (${health.healthyVoters} healthy of ${health.voters} voting members): no member can be removed; restore from a backup (nodeup etcd restore)` };
  }
  const votersAfter = health.voters - 1;
  if (votersAfter < 1) return { ok: false, reason: `${label} is the only voting member: removing it would leave no cluster (restore from a backup instead)` };
  const healthyAfter = health.healthyVoters - (target.healthy ? 1 : 0);
  const need = quorumOf(votersAfter);
  if (healthyAfter < need) {
    return {
      ok: false,
      reason: `removing ${label} would leave ${healthyAfter} healthy of ${votersAfter} voting members, and quorum needs ${need}: bring the unhealthy members back (or replace them) first`,
    };
  }
  return { ok: true };
}

/** Can the cluster take a membership change at all (add a learner, promote)? Pure. */
export function checkChange(health: ClusterHealth, what: string, addsVoter: boolean): GuardVerdict {
  const need = quorumOf(health.voters);
  if (health.healthyVoters < need) {
    if (health.quorumProven) return busyVerdict(health, what);
    return { ok: false, reason: `cannot ${what}: only ${health.healthyVoters} of ${health.voters} voting members are healthy and quorum needs ${need}` };
  }
  if (addsVoter) {
    const needAfter = quorumOf(health.voters + 1);
    if (health.healthyVoters + 1 < needAfter) {
      return { ok: false, reason: `cannot ${what}: with ${health.voters + 1} voting members quorum needs ${needAfter}, and only ${health.healthyVoters + 1} would be healthy` };
    }
  }
  return { ok: true };
}

function refuse(verdict: GuardVerdict, cluster: string, extra: Record<string, unknown> = {}): void {
  if (verdict.ok) return;
  // A busy cluster is waited out (isTransient); a lost quorum is not.
  if (verdict.busy) throw new AgentError('ETCD_MEMBERSHIP', `etcd ${cluster}: ${verdict.reason}`, { details: { cluster, ...extra, busy: true } });
  throw new AgentError('ETCD_QUORUM', `etcd ${cluster}: ${verdict.reason}`, { details: { cluster, ...extra } });
}

export interface MembershipOptions {
  readonly cluster: string;
  readonly store: StateStore;
  readonly log?: Logger;
  /** Backups kept per cluster after each one taken here. */
  readonly retention?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

/** Claims the creation of a new cluster. Exactly one caller ever gets true. */
export async function claimCreate(store: StateStore, cluster: string, self: MemberIdentity, now = Date.now()): Promise<boolean> {
  const marker: CreatedMarker = { by: self.name, at: new Date(now).toISOString(), token: `nodeup-${cluster}-${now.toString(36)}` };
  return store.write(createdKey(cluster), JSON.stringify(marker) + '\n', { ifAbsent: true });
}

export async function readCreated(store: StateStore, cluster: string): Promise<CreatedMarker | undefined> {
  const raw = await store.read(createdKey(cluster));
  return raw ? (JSON.parse(raw.toString('utf8')) as CreatedMarker) : undefined;
}

/** Records where a member can be reached, so later nodes find the cluster. */
export async function registerMember(store: StateStore, cluster: string, self: MemberIdentity): Promise<void> {
  await store.write(memberKey(cluster, self.name), JSON.stringify(self) + '\n');
}

/**
 * Forgets a removed member's registration, so later joins never try to reach it: only when the
 * record still describes that member (a replacement with the same name and a new peer URL keeps its own).
 */
export async function forgetRegistration(store: StateStore, cluster: string, name: string, peerUrls: readonly string[]): Promise<boolean> {
  if (!name) return false;
  const raw = await store.read(memberKey(cluster, name));
  if (!raw) return false;
  const rec = JSON.parse(raw.toString('utf8')) as MemberIdentity;
  if (!peerUrls.includes(rec.peerUrl)) return false;
  await store.remove(memberKey(cluster, name));
  return true;
}

export async function registeredMembers(store: StateStore, cluster: string): Promise<readonly MemberIdentity[]> {
  const prefix = storeLayout.etcdControl(cluster, 'members/');
  const out: MemberIdentity[] = [];
  for (const k of await store.list(prefix)) {
    const raw = await store.read(k);
    if (raw) out.push(JSON.parse(raw.toString('utf8')) as MemberIdentity);
  }
  return out;
}

/** etcd's --initial-cluster value for a member list (unstarted members carry the new name). */
export function initialClusterOf(members: readonly EtcdMember[], newId: string, newName: string): string {
  const parts: string[] = [];
  for (const m of members) {
    const name = m.id === newId ? newName : m.name;
    for (const u of m.peerURLs) parts.push(`${name}=${u}`);
  }
  return parts.join(',');
}

export interface JoinResult {
  readonly memberId: string;
  readonly initialCluster: string;
  /** false when the member was already in the list (a retried join). */
  readonly added: boolean;
}

/**
 * Adds `self` as a learner (after a backup). Idempotent: a member with the same peer URL is reused.
 * The caller then starts etcd with --initial-cluster=<initialCluster> --initial-cluster-state=existing.
 */
export async function addLearner(client: EtcdClient, self: MemberIdentity, opts: MembershipOptions & { readonly unhealthyWaitMs?: number }): Promise<JoinResult> {
  const log = opts.log ?? silentLogger;
  const health = await clusterHealth(client);
  const existing = health.members.find((h) => h.member.peerURLs.includes(self.peerUrl));
  if (existing) {
    log.info({ cluster: opts.cluster, member: self.name, id: memberHex(existing.member.id), learner: existing.member.isLearner }, 'etcd member already added');
    return { memberId: existing.member.id, initialCluster: initialClusterOf(health.members.map((h) => h.member), existing.member.id, self.name), added: false };
  }
  const clash = health.members.find((h) => h.member.name === self.name);
  if (clash) {
    throw new AgentError(
      'ETCD_MEMBERSHIP',
      `etcd ${opts.cluster}: a member named ${self.name} exists with peer URL ${clash.member.peerURLs.join(',')}, not ${self.peerUrl}: remove it first (nodeup etcd remove ${self.name})`,
      { details: { cluster: opts.cluster, member: self.name } },
    );
  }
  refuse(checkChange(health, `add ${self.name}`, false), opts.cluster);
  await backupToStore(client, opts.store, opts.cluster, { reason: `before-add-${self.name}`, log, ...(opts.retention ? { retention: opts.retention } : {}) });
  const clock = clockOf({ sleep: opts.sleep, now: opts.now });
  const started = clock.now();
  // With strict reconfig checks etcd answers "unhealthy cluster" until every voter has been
  // connected for 5 s (a member promoted a moment ago): that clears by itself.
  const res = await retry(() => client.memberAdd([self.peerUrl], true), {
    deadlineMs: opts.unhealthyWaitMs ?? 60_000,
    delayMs: linearBackoff(250, 2000),
    isRetryable: (err) => addWaitsOut.has(etcdRefusal(err) ?? 'other'),
    clock,
    onRetry: ({ err, attempt }) => {
      if (attempt === 1) log.info({ cluster: opts.cluster, member: self.name, reason: errorMessage(err) }, 'etcd not ready to add a member, waiting');
    },
  });
  log.info({ cluster: opts.cluster, member: self.name, id: memberHex(res.member.id), durationMs: clock.now() - started }, 'etcd learner added');
  return { memberId: res.member.id, initialCluster: initialClusterOf(res.members, res.member.id, self.name), added: true };
}

export interface PromoteOptions extends MembershipOptions {
  readonly timeoutMs?: number;
}

/**
 * Promotes a learner once it has caught up: etcd refuses promotion of a learner that is behind the
 * leader, so this retries until it succeeds or the deadline passes. Backs up first.
 */
export async function promoteWhenCaughtUp(client: EtcdClient, memberId: string, opts: PromoteOptions): Promise<{ readonly attempts: number }> {
  const log = opts.log ?? silentLogger;
  const clock = clockOf({ sleep: opts.sleep, now: opts.now });
  let backedUp = false;
  return retry(
    async (attempt) => {
      const health = await clusterHealth(client);
      const me = health.members.find((h) => h.member.id === memberId);
      if (!me) throw new AgentError('ETCD_MEMBERSHIP', `etcd ${opts.cluster}: member ${memberHex(memberId)} is not in the cluster`, { details: { cluster: opts.cluster } });
      if (!me.member.isLearner) return { attempts: attempt - 1 };
      refuse(checkChange(health, `promote ${me.member.name || memberHex(memberId)}`, true), opts.cluster);
      if (!backedUp) {
        await backupToStore(client, opts.store, opts.cluster, { reason: `before-promote-${me.member.name || memberHex(memberId)}`, log, ...(opts.retention ? { retention: opts.retention } : {}) });
        backedUp = true;
      }
      try {
        await client.memberPromote(memberId);
      } catch (err: unknown) {
        throw new PromoteRefused(me.member.name, err);
      }
      log.info({ cluster: opts.cluster, member: me.member.name, id: memberHex(memberId), attempts: attempt }, 'etcd learner promoted');
      return { attempts: attempt };
    },
    {
      deadlineMs: opts.timeoutMs ?? 120_000,
      delayMs: linearBackoff(100, 1000),
      isRetryable: (err) => err instanceof PromoteRefused && promoteWaitsOut.has(etcdRefusal(err.cause) ?? 'other'),
      clock,
      onRetry: ({ err, attempt }) => {
        if (attempt === 1 || attempt % 10 === 0) log.info({ cluster: opts.cluster, member: (err as PromoteRefused).member, attempt, reason: errorMessage(err) }, 'learner not caught up yet, waiting');
      },
    },
  ).catch((err: unknown) => {
    throw err instanceof PromoteRefused ? err.cause : err;
  });
}

/** etcd refusals of a learner add that clear by themselves (a promotion a moment ago, an election). */
const addWaitsOut: ReadonlySet<EtcdErrorKind> = new Set(['unhealthy-cluster', 'too-many-learners', 'leader-changed']);

/** etcd refusals of a promotion that clear by themselves: the learner catching up, a busy leader. */
const promoteWaitsOut: ReadonlySet<EtcdErrorKind> = new Set(['learner-not-ready', 'unhealthy-cluster', 'not-enough-started', 'too-many-requests', 'leader-changed']);

/** etcd's refusal of the promotion itself, told apart from a failure of the checks before it. */
class PromoteRefused extends Error {
  readonly member: string;
  override readonly cause: unknown;
  constructor(member: string, cause: unknown) {
    super(errorMessage(cause));
    this.member = member;
    this.cause = cause;
  }
}

/** Removes a member, after the quorum guard and a backup. */
export async function removeMember(client: EtcdClient, memberId: string, opts: MembershipOptions): Promise<void> {
  const log = opts.log ?? silentLogger;
  const health = await clusterHealth(client);
  const target = health.members.find((h) => h.member.id === memberId);
  refuse(checkRemoval(health, memberId), opts.cluster, { member: target?.member.name ?? memberHex(memberId) });
  const label = target?.member.name || memberHex(memberId);
  const survivors = client.withEndpoints(
    health.members.filter((h) => h.healthy && h.member.id !== memberId && !h.member.isLearner).flatMap((h) => h.member.clientURLs),
  );
  await backupToStore(survivors, opts.store, opts.cluster, { reason: `before-remove-${label}`, log, ...(opts.retention ? { retention: opts.retention } : {}) });
  await survivors.memberRemove(memberId);
  if (target?.member.name) await opts.store.remove(memberKey(opts.cluster, target.member.name));
  log.info({ cluster: opts.cluster, member: label, id: memberHex(memberId) }, 'etcd member removed');
}
