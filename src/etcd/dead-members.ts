// Which etcd members are dead and may be removed: the one decision module behind both removal
// paths, the etcd-membership task (dead-member-task.ts: a cluster with more voters than
// spec.etcd.memberCount) and a replacement's join (join.ts makeRoomForJoin: etcd refused its learner
// while a voter, or a stuck learner, stays unreachable). Pure: probes come in as records, decisions
// go out; the callers do the I/O.
import { memberHex } from './client.ts';
import { checkRemoval, type ClusterHealth, type MemberIdentity } from './membership.ts';
import { compareText } from '../engine/text-order.ts';

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

/** A member's name, or its hex id when it has none (a learner that never started). */
export const memberLabel = (m: { readonly name: string; readonly id: string }): string => m.name || memberHex(m.id);

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
      pending.push(`${prefix}${memberLabel(h.member)} unreachable for ${Math.round(ms / 1000)} s of ${Math.round(i.graceMs / 1000)} s (${probes} of at least ${minDeadProbes} probes)`);
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
  judged.sort((a, b) => b.unreachableMs - a.unreachableMs || compareText(a.name, b.name) || compareText(a.id, b.id));
  const chosen: DeadMember[] = [];
  let h = i.health;
  for (const m of judged.slice(0, excess)) {
    const verdict = checkRemoval(h, m.id);
    if (!verdict.ok) {
      if (chosen.length > 0) break;
      return {
        kind: 'refuse',
        reason: `${memberLabel(m)} has been unreachable for ${Math.round(m.unreachableMs / 1000)} s and the cluster has ${voters} voting members${i.joining ? ' (with this joining node)' : ''} for ${i.memberCount} wanted, but it is kept: ${verdict.reason}`,
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

/**
 * One probe round into the run's unreachable records: an answering member's record is dropped, a
 * silent one's probe count grows from the time it was first found silent.
 */
export function recordProbes(unreachable: Map<string, UnreachableRecord>, health: ClusterHealth, now: number): void {
  for (const h of health.members) {
    if (h.healthy) {
      unreachable.delete(h.member.id);
      continue;
    }
    const rec = unreachable.get(h.member.id);
    unreachable.set(h.member.id, { since: rec?.since ?? now, probes: (rec?.probes ?? 0) + 1 });
  }
}
