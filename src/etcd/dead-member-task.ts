// The `etcd-membership` task kind: removes the members of one etcd cluster whose node is gone for
// good, once a replacement has joined. etcd-manager's rule, made safe first:
//   - only while the cluster has more voting members than spec.etcd.memberCount (a dead member of a
//     cluster at its desired size waits for its replacement; a single control plane never removes);
//   - only members that stayed unreachable (their status endpoint does not answer) through repeated
//     probes over the grace period, measured within this run: observe throws NotReady until then,
//     so the executor probes again with its backoff (and `plan` waits the same way);
//   - only when this node's own member answers as a voter (a node with a broken view never judges);
//   - only when the healthy voters left keep quorum (checkRemoval); otherwise the task fails with
//     ETCD_QUORUM, naming the members and the numbers;
//   - never this node's own member, never a learner (a learner may be a node still starting).
//   observe: membership and each member's health (serializable list, so a cluster without quorum is
//            still described), per-member unreachable time and probe count;
//   diff:    one change per member that would be removed;
//   apply:   per member: re-check (linearizable), back up, remove, forget its registration in the
//            state store (removeMember), so later joins never try to reach it.
import { AgentError, errorMessage, NotReadyError } from '../engine/errors.ts';
import type { Host } from '../engine/host/host.ts';
import type { ApplyContext, Change, Task, TaskContext, TaskKey } from '../engine/task.ts';
import type { StateStore } from '../engine/state-store.ts';
import { EtcdClient, etcdRefusal, isTransient, memberHex, type EtcdTls } from './client.ts';
import { silentLogger } from '../engine/log.ts';
import { clockOf } from '../engine/retry.ts';
import {
  checkRemoval,
  clusterHealth,
  forgetRegistration,
  registeredMembers,
  removeMember,
  type ClusterHealth,
  type MemberIdentity,
  type MembershipOptions,
} from './membership.ts';

/** Probes a member must fail (besides the grace period) before it counts as dead. */
export const minDeadProbes = 3;

export interface UnreachableRecord {
  /** host.now() of the first failed probe in this run (reset when the member answers). */
  readonly since: number;
  readonly probes: number;
}

export interface DeadMember {
  readonly id: string;
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly unreachableMs: number;
  readonly probes: number;
  readonly error: string;
}

export interface RemovalInput {
  readonly health: ClusterHealth;
  /**
   * This node is not a member yet and is about to join (it will count as one more voter). Its view
   * then comes from the registered members only; the join path asks only after etcd itself refused
   * the learner because a voter is disconnected (its strict reconfig check), a second opinion.
   */
  readonly joining?: boolean;
  readonly self: MemberIdentity;
  readonly memberCount: number;
  readonly graceMs: number;
  readonly unreachable: ReadonlyMap<string, UnreachableRecord>;
  readonly now: number;
}

export type RemovalDecision =
  | { readonly kind: 'none' }
  | { readonly kind: 'wait'; readonly reason: string }
  | { readonly kind: 'refuse'; readonly reason: string }
  | { readonly kind: 'remove'; readonly members: readonly DeadMember[] };

const label = (m: { readonly name: string; readonly id: string }): string => m.name || memberHex(m.id);

/** Matches this node's own member: by name, or by peer URL (a learner that never started has no name). */
const selfMatcher =
  (self: MemberIdentity) =>
  (h: ClusterHealth['members'][number]): boolean =>
    h.member.name === self.name || h.member.peerURLs.includes(self.peerUrl);

/** Splits unreachable members into those past the grace period (and probes) and those still waiting. */
function judge(
  members: ClusterHealth['members'],
  i: Pick<RemovalInput, 'graceMs' | 'unreachable' | 'now'>,
  prefix: string,
): { readonly judged: DeadMember[]; readonly pending: readonly string[] } {
  const judged: DeadMember[] = [];
  const pending: string[] = [];
  for (const h of members) {
    const rec = i.unreachable.get(h.member.id);
    const ms = rec ? i.now - rec.since : 0;
    const probes = rec?.probes ?? 0;
    if (ms < i.graceMs || probes < minDeadProbes) {
      pending.push(`${prefix}${label(h.member)} unreachable for ${Math.round(ms / 1000)} s of ${Math.round(i.graceMs / 1000)} s (${probes} of at least ${minDeadProbes} probes)`);
      continue;
    }
    judged.push({ id: h.member.id, name: h.member.name, peerUrls: h.member.peerURLs, unreachableMs: ms, probes, error: h.error ?? 'no answer' });
  }
  return { judged, pending };
}

/** Which members to remove now, if any. Pure. */
export function decideRemovals(i: RemovalInput): RemovalDecision {
  const voters = i.health.voters + (i.joining ? 1 : 0);
  const excess = voters - i.memberCount;
  if (excess <= 0) return { kind: 'none' };
  const isSelf = selfMatcher(i.self);
  const dead = i.health.members.filter((h) => !h.member.isLearner && !h.healthy && !isSelf(h));
  if (dead.length === 0) return { kind: 'none' };
  const me = i.health.members.find(isSelf);
  if (!i.joining && (!me?.healthy || me.member.isLearner)) {
    return { kind: 'wait', reason: `this node's member ${i.self.name} is not an answering voter, so its view of the other members cannot be trusted` };
  }
  const { judged, pending } = judge(dead, i, '');
  if (pending.length > 0) return { kind: 'wait', reason: `waiting out the grace period before removing: ${pending.join('; ')}` };
  // Longest dead first, then by name: stable across nodes and runs.
  judged.sort((a, b) => b.unreachableMs - a.unreachableMs || a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  const chosen: DeadMember[] = [];
  let h = i.health;
  for (const m of judged.slice(0, excess)) {
    const verdict = checkRemoval(h, m.id);
    if (!verdict.ok) {
      if (chosen.length > 0) break;
      return {
        kind: 'refuse',
        reason: `${label(m)} has been unreachable for ${Math.round(m.unreachableMs / 1000)} s and the cluster has ${voters} voting members${i.joining ? ' (with this joining node)' : ''} for ${i.memberCount} wanted, but it is kept: ${verdict.reason}`,
      };
    }
    chosen.push(m);
    const members = h.members.filter((x) => x.member.id !== m.id);
    h = { ...h, members, voters: h.voters - 1 };
  }
  return { kind: 'remove', members: chosen };
}

/**
 * Which learners block a join, if any. etcd takes one learner at a time (3.4's fixed limit, 3.6's
 * --max-learners default), so a learner whose node died between `member add` and its first start
 * (it never got a name or client URL) or before its promotion stops every later join with "too many
 * learner members". A learner that stays unreachable through the grace period (and at least
 * minDeadProbes probes) is removed; learners do not vote, so quorum is not at stake. Never this
 * node's own learner. Pure.
 */
export function decideStuckLearners(i: Pick<RemovalInput, 'health' | 'self' | 'graceMs' | 'unreachable' | 'now'>): RemovalDecision {
  const isSelf = selfMatcher(i.self);
  const stuck = i.health.members.filter((h) => h.member.isLearner && !h.healthy && !isSelf(h));
  if (stuck.length === 0) return { kind: 'none' };
  const { judged, pending } = judge(stuck, i, 'learner ');
  if (pending.length > 0) return { kind: 'wait', reason: `waiting out the grace period before removing: ${pending.join('; ')}` };
  return { kind: 'remove', members: judged };
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
    for (const h of health.members) {
      const rec = unreachable.get(h.member.id);
      if (h.healthy) unreachable.delete(h.member.id);
      else unreachable.set(h.member.id, { since: rec?.since ?? t, probes: (rec?.probes ?? 0) + 1 });
    }
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
        { ...details, dead: label(m), id: memberHex(m.id), peerUrls: m.peerUrls, unreachableMs: m.unreachableMs, probes: m.probes, lastError: m.error },
        blocker === 'learner'
          ? 'removing a stuck etcd learner to make room: unreachable through the grace period, and etcd takes one learner at a time'
          : 'removing a dead etcd member to make room for its replacement: unreachable through the grace period, and etcd refuses new members while it stays',
      );
      await removeMember(client, m.id, opts);
      removed.push(label(m));
    }
    return removed;
  }
}

export interface DeadMemberSpec {
  readonly cluster: string;
  readonly self: MemberIdentity;
  readonly memberCount: number;
  readonly graceMs: number;
  readonly dataDir: string;
  /** etcd-ca, and nodeup's own client pair, on the node. */
  readonly caPath: string;
  readonly clientCert: string;
  readonly clientKey: string;
  readonly retention: number;
  readonly after?: readonly TaskKey[];
}

export interface DeadMemberActual {
  readonly voters: number;
  readonly remove: readonly DeadMember[];
}

export function deadMemberTaskKey(cluster: string): TaskKey {
  return `etcd-membership:${cluster}`;
}

export class DeadMemberTask implements Task<DeadMemberActual> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[];
  readonly spec: DeadMemberSpec;
  /** Probe history of this run, by member id. */
  private readonly unreachable = new Map<string, UnreachableRecord>();
  private silentSince: number | undefined;
  private planned: readonly DeadMember[] = [];

  constructor(spec: DeadMemberSpec) {
    this.spec = spec;
    this.key = deadMemberTaskKey(spec.cluster);
    this.after = spec.after ?? [];
  }

  private async client(host: Host, store: StateStore): Promise<EtcdClient> {
    const read = async (p: string): Promise<string> => {
      const b = await host.fs.read(p);
      if (!b) throw new AgentError('ETCD_MEMBERSHIP', `etcd ${this.spec.cluster}: ${p} is missing (the PKI tasks write it)`, { details: { path: p } });
      return b.toString('utf8');
    };
    const tls: EtcdTls = { ca: await read(this.spec.caPath), cert: await read(this.spec.clientCert), key: await read(this.spec.clientKey) };
    const others = (await registeredMembers(store, this.spec.cluster)).map((m) => m.clientUrl);
    return new EtcdClient(host, [...new Set([this.spec.self.clientUrl, ...others])], tls);
  }

  async observe(host: Host, ctx: TaskContext): Promise<DeadMemberActual | undefined> {
    this.planned = [];
    // No local member yet: the etcd-member task creates or joins first (and plans see no cluster).
    if (!(await host.fs.stat(`${this.spec.dataDir}/member/snap/db`))) return undefined;
    const client = await this.client(host, ctx.store);
    const now = host.now();
    let health: ClusterHealth;
    try {
      health = await clusterHealth(client, { linearizable: false });
      this.silentSince = undefined;
    } catch (err: unknown) {
      this.silentSince ??= now;
      const details = { cluster: this.spec.cluster, endpoints: client.endpoints };
      if (now - this.silentSince < this.spec.graceMs) throw new NotReadyError(`etcd ${this.spec.cluster}: no member answered the member list yet: ${errorMessage(err)}`, details);
      throw new AgentError('ETCD_MEMBERSHIP', `etcd ${this.spec.cluster}: no member answered the member list for ${Math.round((now - this.silentSince) / 1000)} s, so dead members cannot be judged: check this node's etcd (nodeup etcd members)`, {
        cause: err,
        details,
      });
    }
    for (const h of health.members) {
      if (h.healthy) {
        this.unreachable.delete(h.member.id);
        continue;
      }
      const rec = this.unreachable.get(h.member.id);
      this.unreachable.set(h.member.id, { since: rec?.since ?? now, probes: (rec?.probes ?? 0) + 1 });
    }
    const decision = decideRemovals({ health, self: this.spec.self, memberCount: this.spec.memberCount, graceMs: this.spec.graceMs, unreachable: this.unreachable, now });
    const details = { cluster: this.spec.cluster, voters: health.voters, healthyVoters: health.healthyVoters, memberCount: this.spec.memberCount };
    switch (decision.kind) {
      case 'none':
        return { voters: health.voters, remove: [] };
      case 'wait':
        throw new NotReadyError(`etcd ${this.spec.cluster}: ${decision.reason}`, details);
      case 'refuse':
        throw new AgentError('ETCD_QUORUM', `etcd ${this.spec.cluster}: ${decision.reason}`, { details });
      case 'remove':
        this.planned = decision.members;
        return { voters: health.voters, remove: decision.members };
    }
  }

  diff(a: DeadMemberActual | undefined): readonly Change[] {
    if (!a) return [];
    return a.remove.map((m) => ({
      field: `member ${label(m)}`,
      from: `${m.peerUrls.join(',')} unreachable for ${Math.round(m.unreachableMs / 1000)} s (${m.probes} probes), ${a.voters} voting members for ${this.spec.memberCount} wanted`,
      to: 'removed (after a backup)',
    }));
  }

  async apply(host: Host, _changes: readonly Change[], ctx: ApplyContext): Promise<void> {
    const client = await this.client(host, ctx.store);
    const opts = { cluster: this.spec.cluster, store: ctx.store, log: ctx.log, retention: this.spec.retention, sleep: (ms: number) => host.sleep(ms) };
    for (const m of this.planned) {
      const fresh = await clusterHealth(client).catch((err: unknown) => {
        throw new NotReadyError(`etcd ${this.spec.cluster}: the linearizable member list failed: ${errorMessage(err)}`, { cluster: this.spec.cluster });
      });
      const cur = fresh.members.find((h) => h.member.id === m.id);
      if (!cur) {
        // Another control plane removed it first: only its registration may be left.
        await forgetRegistration(ctx.store, this.spec.cluster, m.name, m.peerUrls);
        ctx.log.info({ cluster: this.spec.cluster, member: label(m), id: memberHex(m.id) }, 'dead etcd member already removed');
        continue;
      }
      if (fresh.voters <= this.spec.memberCount) {
        ctx.log.info({ cluster: this.spec.cluster, voters: fresh.voters, memberCount: this.spec.memberCount }, 'etcd cluster no longer has more voting members than wanted');
        return;
      }
      if (cur.healthy) {
        ctx.log.warn({ cluster: this.spec.cluster, member: label(m), id: memberHex(m.id) }, 'etcd member answers again, kept');
        continue;
      }
      ctx.log.warn(
        {
          cluster: this.spec.cluster,
          member: label(m),
          id: memberHex(m.id),
          peerUrls: m.peerUrls,
          unreachableMs: m.unreachableMs,
          probes: m.probes,
          lastError: m.error,
          voters: fresh.voters,
          healthyVoters: fresh.healthyVoters,
          memberCount: this.spec.memberCount,
        },
        'removing a dead etcd member: unreachable through the grace period while the cluster has more voting members than wanted',
      );
      try {
        await removeMember(client, m.id, opts);
      } catch (err: unknown) {
        if (etcdRefusal(err) === 'member-not-found') {
          await forgetRegistration(ctx.store, this.spec.cluster, m.name, m.peerUrls);
          continue;
        }
        // etcd refuses reconfiguration for a few seconds after a promotion or a leader change, and
        // answers nothing while busy. A failure of our own (the snapshot written to the state store
        // before the removal) is not waited out: it fails the run with its own message.
        if (isTransient(err) || etcdRefusal(err) === 'unhealthy-cluster') {
          throw new NotReadyError(`etcd ${this.spec.cluster}: removing ${label(m)} must wait: ${errorMessage(err)}`, { cluster: this.spec.cluster, member: label(m) });
        }
        throw err;
      }
    }
  }
}
