// One member's way into its cluster, decided by its data dir and the state store:
//   data dir present            -> an existing member: start it as it is
//   claims etcd/<c>/created     -> the first member: start a new cluster of one
//   otherwise                   -> add itself as a learner through a registered member, start with
//                                  initial-cluster-state=existing, wait, promote when caught up.
// How etcd is started is the caller's business (static pod, systemd unit, or a test's process).
import { AgentError, errorMessage } from '../engine/errors.ts';
import type { Logger } from '../engine/log.ts';
import { silentLogger } from '../engine/log.ts';
import type { StateStore } from '../engine/state-store.ts';
import { etcdRefusal, memberHex, type EtcdClient } from './client.ts';
import { clockOf, retry, sleep as wallSleep } from '../engine/retry.ts';
import { decideRemovals, decideStuckLearners, memberLabel, recordProbes, type UnreachableRecord } from './dead-members.ts';
import {
  addLearner,
  claimCreate,
  clusterHealth,
  promoteWhenCaughtUp,
  readCreated,
  registerMember,
  registeredMembers,
  removeMember,
  type JoinResult,
  type MemberIdentity,
  type MembershipOptions,
} from './membership.ts';

export interface StartParams {
  readonly initialCluster: string;
  readonly initialClusterState: 'new' | 'existing';
  readonly initialClusterToken: string;
}

export interface EnsureMemberDeps {
  readonly cluster: string;
  readonly self: MemberIdentity;
  readonly store: StateStore;
  /** A client aimed at the given endpoints (same TLS identity). */
  readonly client: (endpoints: readonly string[]) => EtcdClient;
  readonly hasData: () => Promise<boolean>;
  /** Starts (or restarts) this member's etcd with these parameters. */
  readonly start: (p: StartParams) => Promise<void>;
  readonly log?: Logger;
  readonly retention?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly startTimeoutMs?: number;
  readonly promoteTimeoutMs?: number;
  /**
   * With spec.etcd.memberCount: when etcd refuses this node's learner because a voter is
   * disconnected, remove the voters that stay unreachable through the grace period (if the cluster
   * with this node would be larger than wanted and quorum allows), then add this node.
   */
  readonly replaceDead?: ReplaceDeadOptions;
}

export interface EnsureMemberResult {
  readonly action: 'existing' | 'created' | 'joined';
  readonly memberId?: string;
  readonly start?: StartParams;
  readonly promoteAttempts?: number;
}

/** The logger, sleep and membership options both entry points pass down, with their defaults. */
function membershipOptions(d: Pick<EnsureMemberDeps, 'cluster' | 'store' | 'log' | 'retention' | 'sleep'>) {
  const log = d.log ?? silentLogger;
  const sleep = d.sleep ?? wallSleep;
  const opts: MembershipOptions = { cluster: d.cluster, store: d.store, log, sleep, ...(d.retention ? { retention: d.retention } : {}) };
  return { log, sleep, opts };
}

/**
 * Waits until this member answers its status endpoint. Running out of time is transient (the
 * error says the member was unreachable): under load kubelet may not have started the static pod
 * yet, and a later attempt reuses the learner that is already added.
 */
export async function waitAnswering(client: EtcdClient, endpoint: string, timeoutMs: number, sleep: (ms: number) => Promise<void>): Promise<void> {
  try {
    await retry(() => client.status(endpoint, 2000), { deadlineMs: timeoutMs, delayMs: 100, isRetryable: () => true, clock: clockOf({ sleep }) });
  } catch (err: unknown) {
    throw new AgentError('ETCD_MEMBERSHIP', `etcd at ${endpoint} did not answer within ${timeoutMs} ms: ${errorMessage(err)}`, { cause: err, details: { endpoint, unreachable: true } });
  }
}

/**
 * Adds this node as a learner. With spec.etcd.memberCount, a refusal that a dead member causes is
 * worked through: "unhealthy cluster" (a voter is down: etcd's strict reconfig check) removes the
 * voters that stay unreachable; "too many learner members" (a learner whose node died before its
 * promotion) removes the learners that stay unreachable. Each kind is tried once, so a cluster with
 * both a dead voter and a stuck learner still lets the node in.
 */
async function addLearnerMakingRoom(client: EtcdClient, d: EnsureMemberDeps, opts: MembershipOptions): Promise<JoinResult> {
  const tried = new Set<'voter' | 'learner'>();
  for (;;) {
    try {
      // etcd's "unhealthy cluster" clears within 5 s after a promotion, and a live learner is
      // promoted soon after it starts; longer means a member is down.
      return await addLearner(client, d.self, { ...opts, ...(d.replaceDead ? { unhealthyWaitMs: 15_000 } : {}) });
    } catch (err: unknown) {
      const refusal = etcdRefusal(err);
      const blocker = refusal === 'too-many-learners' ? 'learner' : refusal === 'unhealthy-cluster' ? 'voter' : undefined;
      if (blocker === 'learner' && !d.replaceDead) {
        throw new AgentError(
          'ETCD_MEMBERSHIP',
          `etcd ${d.cluster} refused ${d.self.name} as a learner: another learner has not been promoted (its node may have died while joining); if it stays unhealthy in nodeup etcd members, remove it (nodeup etcd remove <id>), or set spec.etcd.memberCount so nodeup removes such learners after the grace period`,
          { cause: err, details: { cluster: d.cluster, member: d.self.name } },
        );
      }
      if (!d.replaceDead || !blocker || tried.has(blocker)) throw err;
      tried.add(blocker);
      const removed = await makeRoomForJoin(client, d.self, d.replaceDead, opts, blocker);
      if (removed.length === 0) throw err;
    }
  }
}

/**
 * This node claimed the creation, yet no member was ever registered and it has no data: the run
 * that created the cluster stopped before etcd kept anything (a power cut before etcd's first
 * write reached the disk). Registration follows etcd's first answer, so no other node can have
 * joined, and etcd syncs its log before it acknowledges a write, so nothing acknowledged is lost:
 * creating it again is safe. A registered member (this one included) means a cluster that
 * existed, whose lost data only a restore brings back.
 */
async function creationUnfinished(d: EnsureMemberDeps, log: Logger): Promise<boolean> {
  const marker = await readCreated(d.store, d.cluster);
  if (marker?.by !== d.self.name) return false;
  if ((await registeredMembers(d.store, d.cluster)).length > 0) return false;
  log.warn({ cluster: d.cluster, member: d.self.name, createdAt: marker.at }, 'the run that created this etcd cluster stopped before etcd kept any data: creating it again');
  return true;
}

export async function ensureMember(d: EnsureMemberDeps): Promise<EnsureMemberResult> {
  const { log, sleep, opts } = membershipOptions(d);
  const startTimeout = d.startTimeoutMs ?? 120_000;
  if (await d.hasData()) return { action: 'existing' };

  if ((await claimCreate(d.store, d.cluster, d.self)) || (await creationUnfinished(d, log))) {
    const marker = await readCreated(d.store, d.cluster);
    const start: StartParams = {
      initialCluster: `${d.self.name}=${d.self.peerUrl}`,
      initialClusterState: 'new',
      initialClusterToken: marker?.token ?? `nodeup-${d.cluster}`,
    };
    log.info({ cluster: d.cluster, member: d.self.name }, 'creating a new etcd cluster');
    await d.start(start);
    await waitAnswering(d.client([d.self.clientUrl]), d.self.clientUrl, startTimeout, sleep);
    await registerMember(d.store, d.cluster, d.self);
    return { action: 'created', start };
  }

  const marker = await readCreated(d.store, d.cluster);
  const peers = (await registeredMembers(d.store, d.cluster)).filter((m) => m.name !== d.self.name && m.clientUrl !== d.self.clientUrl);
  if (peers.length === 0) {
    throw new AgentError(
      'ETCD_MEMBERSHIP',
      `etcd ${d.cluster} was created by ${marker?.by ?? 'another node'} but no other member is registered in the state store, and this node has no data: restore from a backup (nodeup etcd restore)`,
      { details: { cluster: d.cluster } },
    );
  }
  const client = d.client(peers.map((p) => p.clientUrl));
  // A member that carries our name or peer URL and has started before is our former self, whose
  // data is gone: it must leave (if quorum allows) before we come back as a learner.
  const health = await clusterHealth(client);
  const former = health.members.find((h) => (h.member.peerURLs.includes(d.self.peerUrl) || h.member.name === d.self.name) && h.member.name !== '');
  if (former) {
    log.warn({ cluster: d.cluster, member: d.self.name, id: memberHex(former.member.id), healthy: former.healthy }, 'replacing this node\'s former etcd member, whose data is gone');
    await removeMember(client, former.member.id, opts);
  }
  const join = await addLearnerMakingRoom(client, d, opts);
  const start: StartParams = {
    initialCluster: join.initialCluster,
    initialClusterState: 'existing',
    initialClusterToken: marker?.token ?? `nodeup-${d.cluster}`,
  };
  await d.start(start);
  await waitAnswering(client, d.self.clientUrl, startTimeout, sleep);
  const promoted = await promoteWhenCaughtUp(client, join.memberId, { ...opts, ...(d.promoteTimeoutMs ? { timeoutMs: d.promoteTimeoutMs } : {}) });
  await registerMember(d.store, d.cluster, d.self);
  return { action: 'joined', memberId: join.memberId, start, promoteAttempts: promoted.attempts };
}

export interface FinishMemberDeps extends Pick<EnsureMemberDeps, 'cluster' | 'self' | 'store' | 'client' | 'log' | 'retention' | 'sleep' | 'promoteTimeoutMs'> {
  readonly dataDir: string;
}

/**
 * Finishes what an earlier run began: this node has etcd data, but no run confirmed it as a
 * registered voting member (the run stopped between etcd's start and the promotion, or before the
 * registration: a power cut, a timeout). Left so, it would stay a learner for ever, and etcd's
 * one-learner limit would refuse every later join. Promotes it once caught up, then registers it.
 * Idempotent; a member that is not in the cluster at all (removed meanwhile) is an error that says
 * how to join anew.
 */
export async function finishMember(d: FinishMemberDeps): Promise<'promoted' | 'confirmed'> {
  const { log, opts } = membershipOptions(d);
  const peers = (await registeredMembers(d.store, d.cluster)).filter((m) => m.clientUrl !== d.self.clientUrl).map((m) => m.clientUrl);
  const client = d.client([...new Set([...peers, d.self.clientUrl])]);
  const health = await clusterHealth(client);
  const me = health.members.find((h) => h.member.peerURLs.includes(d.self.peerUrl));
  if (!me) {
    throw new AgentError(
      'ETCD_MEMBERSHIP',
      `etcd ${d.cluster}: this node has data in ${d.dataDir} but its peer URL ${d.self.peerUrl} is not a member of the cluster (it was removed): move ${d.dataDir} aside and run nodeup apply again to join anew`,
      { details: { cluster: d.cluster, member: d.self.name, dataDir: d.dataDir } },
    );
  }
  let outcome: 'promoted' | 'confirmed' = 'confirmed';
  if (me.member.isLearner) {
    log.warn({ cluster: d.cluster, member: d.self.name, id: memberHex(me.member.id) }, 'this node is still an etcd learner (an earlier run stopped before promoting it): promoting it now');
    await promoteWhenCaughtUp(client, me.member.id, { ...opts, ...(d.promoteTimeoutMs ? { timeoutMs: d.promoteTimeoutMs } : {}) });
    outcome = 'promoted';
  }
  await registerMember(d.store, d.cluster, d.self);
  return outcome;
}

export interface ReplaceDeadOptions {
  /** spec.etcd.memberCount */
  readonly memberCount: number;
  readonly graceMs: number;
  readonly probeIntervalMs?: number;
  readonly now?: () => number;
}

/**
 * The replacement's side of issue 7. etcd (strict reconfig check) refuses to add even a learner
 * while fewer than quorum(voters + 1) voters are connected: a 3-member cluster with a dead voter
 * takes no new member until the dead one leaves. So a joining node whose learner add was refused
 * as "unhealthy cluster" probes the members over the grace period and, when the cluster with this
 * node would have more voters than memberCount, removes the voters that stayed unreachable (guarded,
 * backed up, registration forgotten); the caller then adds itself. Returns the removed labels.
 */
export async function makeRoomForJoin(
  client: EtcdClient,
  self: MemberIdentity,
  rd: ReplaceDeadOptions,
  opts: MembershipOptions,
  blocker: 'voter' | 'learner' = 'voter',
): Promise<readonly string[]> {
  const log = opts.log ?? silentLogger;
  const clock = clockOf({ sleep: opts.sleep, now: rd.now });
  const unreachable = new Map<string, UnreachableRecord>();
  const deadline = clock.now() + 3 * rd.graceMs;
  for (let probe = 1; ; probe++) {
    const health = await clusterHealth(client);
    const t = clock.now();
    recordProbes(unreachable, health, t);
    const d =
      blocker === 'learner'
        ? decideStuckLearners({ health, self, graceMs: rd.graceMs, unreachable, now: t })
        : decideRemovals({ health, self, memberCount: rd.memberCount, graceMs: rd.graceMs, unreachable, now: t, joining: true });
    const details = { cluster: opts.cluster, member: self.name, voters: health.voters, healthyVoters: health.healthyVoters, memberCount: rd.memberCount };
    if (d.kind === 'none') return [];
    if (d.kind === 'refuse') throw new AgentError('ETCD_QUORUM', `etcd ${opts.cluster}: ${d.reason}`, { details });
    if (d.kind === 'wait') {
      if (t > deadline) throw new AgentError('ETCD_MEMBERSHIP', `etcd ${opts.cluster}: cannot make room for ${self.name}: ${d.reason}`, { details });
      if (probe === 1) log.info({ ...details, reason: d.reason }, `etcd refused the new member while ${blocker === 'learner' ? 'another learner' : 'a voter'} is unreachable; probing before removing it`);
      await clock.sleep(rd.probeIntervalMs ?? 5000);
      continue;
    }
    const removed: string[] = [];
    for (const m of d.members) {
      log.warn(
        { ...details, dead: memberLabel(m), id: memberHex(m.id), peerUrls: m.peerUrls, unreachableMs: m.unreachableMs, probes: m.probes, lastError: m.error },
        blocker === 'learner'
          ? 'removing a stuck etcd learner to make room: unreachable through the grace period, and etcd takes one learner at a time'
          : 'removing a dead etcd member to make room for its replacement: unreachable through the grace period, and etcd refuses new members while it stays',
      );
      await removeMember(client, m.id, opts);
      removed.push(memberLabel(m));
    }
    return removed;
  }
}
