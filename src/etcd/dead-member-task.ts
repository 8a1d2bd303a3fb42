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
//   The decisions are dead-members.ts's (shared with a replacement's join).
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
import { decideRemovals, memberLabel, recordProbes, type DeadMember, type UnreachableRecord } from './dead-members.ts';
import { clusterHealth, forgetRegistration, registeredMembers, removeMember, type ClusterHealth, type MemberIdentity } from './membership.ts';

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
    recordProbes(this.unreachable, health, now);
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
      field: `member ${memberLabel(m)}`,
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
        ctx.log.info({ cluster: this.spec.cluster, member: memberLabel(m), id: memberHex(m.id) }, 'dead etcd member already removed');
        continue;
      }
      if (fresh.voters <= this.spec.memberCount) {
        ctx.log.info({ cluster: this.spec.cluster, voters: fresh.voters, memberCount: this.spec.memberCount }, 'etcd cluster no longer has more voting members than wanted');
        return;
      }
      if (cur.healthy) {
        ctx.log.warn({ cluster: this.spec.cluster, member: memberLabel(m), id: memberHex(m.id) }, 'etcd member answers again, kept');
        continue;
      }
      ctx.log.warn(
        {
          cluster: this.spec.cluster,
          member: memberLabel(m),
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
          throw new NotReadyError(`etcd ${this.spec.cluster}: removing ${memberLabel(m)} must wait: ${errorMessage(err)}`, { cluster: this.spec.cluster, member: memberLabel(m) });
        }
        throw err;
      }
    }
  }
}
