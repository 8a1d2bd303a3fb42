// The `etcd-member` task kind: this node's member of one etcd cluster, and the static pod manifest
// or systemd unit that runs it. A thin wrapper over ensureMember():
//   observe: is there a data dir (<data-dir>/member/snap/db)? which start parameters were used
//            (/var/lib/nodeup/etcd-<cluster>.json)? does the manifest/unit on disk match them?
//   diff:    no data dir -> "member: create or join"; data dir -> the manifest/unit, and
//            "membership" when no run has confirmed the member yet (the state file's `complete`)
//   apply:   create or join (learner add, start, promote), writing the manifest/unit to start etcd
//            (with replaceDead: when etcd refuses the learner because a voter is down for good, that
//            voter is removed first, see makeRoomForJoin);
//            or rewrite the manifest/unit (kubelet/systemd restart the member);
//            or finish an earlier run's join (finishMember: promote a learner left behind, register).
//            An etcd that does not answer at all (a timeout under load), or answers "leader
//            changed" or "request timed out", is NotReady: the executor retries with backoff, and
//            every step is idempotent.
import * as path from 'node:path/posix';
import { AgentError, errorMessage, NotReadyError } from '../engine/errors.ts';
import type { Host } from '../engine/host/host.ts';
import { shortHash } from '../engine/tasks/file.ts';
import { fieldChange, type ApplyContext, type Change, type Task, type TaskKey } from '../engine/task.ts';
import { EtcdClient, isTransient } from './client.ts';
import { ensureMember, finishMember, type StartParams } from './join.ts';
import type { MemberIdentity } from './membership.ts';
import { renderEtcdManifest, renderEtcdUnit, type EtcdMemberConfig, type EtcdTlsPaths } from './render-manifest.ts';
import { etcdMemberKey } from '../model/paths/etcd.ts';

export interface EtcdMemberSpec {
  readonly cluster: string;
  readonly self: MemberIdentity;
  readonly advertiseIp: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly tls: EtcdTlsPaths;
  readonly timing?: EtcdMemberConfig['timing'];
  /** nodeup's own client pair (etcd-ca) for membership calls. */
  readonly clientCert: string;
  readonly clientKey: string;
  readonly pkiDir: string;
  readonly run:
    | { readonly mode: 'static-pod'; readonly manifestPath: string; readonly image: string }
    | { readonly mode: 'systemd'; readonly unitDir: string; readonly binary: string };
  /** Where the start parameters are kept (they only matter before the data dir exists). */
  readonly statePath: string;
  readonly retention: number;
  /** spec.etcd.memberCount and its grace: a joining replacement may remove the dead voter etcd refuses it for. */
  readonly replaceDead?: { readonly memberCount: number; readonly graceMs: number };
  readonly after?: readonly TaskKey[];
}

export interface EtcdMemberActual {
  readonly hasData: boolean;
  readonly saved?: StartParams;
  readonly fileHash?: string;
  /** A run confirmed this member as a registered voter (the state file says `complete`). */
  readonly complete: boolean;
}

/** The state file: the start parameters, and whether a run finished the join. */
interface SavedState extends StartParams {
  readonly complete?: boolean;
}

export function etcdStatePath(cluster: string): string {
  return `/var/lib/nodeup/etcd-${cluster}.json`;
}

export class EtcdMemberTask implements Task<EtcdMemberActual> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[];
  readonly spec: EtcdMemberSpec;

  constructor(spec: EtcdMemberSpec) {
    this.spec = spec;
    this.key = etcdMemberKey(spec.cluster);
    this.after = spec.after ?? [];
  }

  private filePath(): string {
    const r = this.spec.run;
    return r.mode === 'static-pod' ? r.manifestPath : path.join(r.unitDir, `etcd-${this.spec.cluster}.service`);
  }

  /** The manifest or unit for given start parameters. Pure. */
  render(p: StartParams): string {
    const member: EtcdMemberConfig = {
      cluster: this.spec.cluster,
      name: this.spec.self.name,
      dataDir: this.spec.dataDir,
      advertiseIp: this.spec.advertiseIp,
      clientPort: this.spec.clientPort,
      peerPort: this.spec.peerPort,
      initialCluster: p.initialCluster,
      initialClusterState: p.initialClusterState,
      initialClusterToken: p.initialClusterToken,
      tls: this.spec.tls,
      timing: this.spec.timing,
    };
    const r = this.spec.run;
    return r.mode === 'static-pod' ? renderEtcdManifest({ member, image: r.image, pkiDir: this.spec.pkiDir }) : renderEtcdUnit(member, r.binary);
  }

  async observe(host: Host): Promise<EtcdMemberActual> {
    const hasData = (await host.fs.stat(`${this.spec.dataDir}/member/snap/db`)) !== undefined;
    const raw = await host.fs.read(this.spec.statePath);
    let state: SavedState | undefined;
    try {
      state = raw ? (JSON.parse(raw.toString('utf8')) as SavedState) : undefined;
    } catch {
      state = undefined;
    }
    const saved: StartParams | undefined = state
      ? { initialCluster: state.initialCluster, initialClusterState: state.initialClusterState, initialClusterToken: state.initialClusterToken }
      : undefined;
    const file = await host.fs.read(this.filePath());
    return { hasData, complete: state?.complete === true, ...(saved ? { saved } : {}), ...(file ? { fileHash: shortHash(file) } : {}) };
  }

  diff(a: EtcdMemberActual | undefined): readonly Change[] {
    if (!a?.hasData) return [{ field: 'member', to: `create or join etcd ${this.spec.cluster} as ${this.spec.self.name} (${this.spec.self.peerUrl})` }];
    // A member with data ignores the initial-* flags; keep the ones it started with.
    const want = shortHash(this.render(a.saved ?? this.fallback()));
    const out: Change[] = a.fileHash === want ? [] : [fieldChange(this.spec.run.mode === 'static-pod' ? 'manifest' : 'unit file', a.fileHash, want)];
    if (!a.complete) out.push({ field: 'membership', from: 'not confirmed by a finished run', to: 'a voting member (promoted if still a learner), registered in the state store' });
    return out;
  }

  private fallback(): StartParams {
    return { initialCluster: `${this.spec.self.name}=${this.spec.self.peerUrl}`, initialClusterState: 'existing', initialClusterToken: `nodeup-${this.spec.cluster}` };
  }

  private async writeState(host: Host, p: StartParams, complete: boolean): Promise<void> {
    const state: SavedState = { ...p, ...(complete ? { complete } : {}) };
    await host.fs.mkdirp(path.dirname(this.spec.statePath), 0o755);
    await host.fs.writeAtomic(this.spec.statePath, JSON.stringify(state, null, 2) + '\n', { mode: 0o644 });
  }

  private async writeAndStart(host: Host, p: StartParams, complete = false): Promise<void> {
    await this.writeState(host, p, complete);
    const file = this.filePath();
    await host.fs.mkdirp(path.dirname(file), 0o755);
    await host.fs.mkdirp(this.spec.dataDir, 0o700);
    if (this.spec.run.mode === 'static-pod') {
      // kubelet notices the manifest (written atomically) and (re)starts the pod.
      await host.fs.writeAtomic(file, this.render(p), { mode: 0o600 });
      return;
    }
    await host.fs.writeAtomic(file, this.render(p), { mode: 0o644 });
    if (host.root === '/') {
      await host.run('systemctl', ['daemon-reload']);
      await host.run('systemctl', ['enable', `etcd-${this.spec.cluster}.service`]);
      await host.run('systemctl', ['restart', '--no-block', `etcd-${this.spec.cluster}.service`]);
    }
  }

  async apply(host: Host, changes: readonly Change[], ctx: ApplyContext): Promise<void> {
    try {
      await this.converge(host, changes, ctx);
    } catch (err: unknown) {
      // No answer at all, or "leader changed" / "request timed out" (etcd busy under load, a peer
      // restarting, an election while a member joins) clears by itself.
      if (isTransient(err)) throw new NotReadyError(`etcd ${this.spec.cluster}: ${errorMessage(err)}`, { cluster: this.spec.cluster });
      throw err;
    }
  }

  private async converge(host: Host, changes: readonly Change[], ctx: ApplyContext): Promise<void> {
    const joining = changes.some((c) => c.field === 'member');
    // The start parameters of a member that has data: its manifest/unit, and the state file once confirmed.
    let params: StartParams | undefined;
    if (!joining) {
      const a = await this.observe(host);
      params = a.saved ?? this.fallback();
      if (changes.some((c) => c.field !== 'membership')) await this.writeAndStart(host, params, a.complete);
      if (!changes.some((c) => c.field === 'membership')) return;
    }
    if (host.root !== '/') {
      throw new AgentError('ETCD_MEMBERSHIP', `etcd ${this.spec.cluster}: ${joining ? 'joining a cluster' : 'confirming a member'} needs a live node (this run works on the root ${host.root})`, {
        details: { cluster: this.spec.cluster },
      });
    }
    const read = async (p: string): Promise<string> => {
      const b = await host.fs.read(p);
      if (!b) throw new AgentError('ETCD_MEMBERSHIP', `etcd ${this.spec.cluster}: ${p} is missing (the PKI tasks write it)`, { details: { path: p } });
      return b.toString('utf8');
    };
    const tls = { ca: await read(this.spec.tls.clientCa), cert: await read(this.spec.clientCert), key: await read(this.spec.clientKey) };
    const common = {
      cluster: this.spec.cluster,
      self: this.spec.self,
      store: ctx.store,
      client: (eps: readonly string[]) => new EtcdClient(host, eps, tls),
      log: ctx.log,
      retention: this.spec.retention,
      sleep: (ms: number) => host.sleep(ms),
    };
    if (joining) {
      const res = await ensureMember({
        ...common,
        hasData: async () => (await host.fs.stat(`${this.spec.dataDir}/member/snap/db`)) !== undefined,
        start: (p) => this.writeAndStart(host, p),
        startTimeoutMs: 300_000,
        ...(this.spec.replaceDead ? { replaceDead: { ...this.spec.replaceDead, now: () => host.now() } } : {}),
      });
      if (res.action !== 'existing') {
        await this.writeState(host, res.start ?? this.fallback(), true);
        ctx.log.info({ cluster: this.spec.cluster, action: res.action, promoteAttempts: res.promoteAttempts }, 'etcd member ready');
        return;
      }
      // The data dir appeared between observe and apply: start it as it is, then confirm it below.
      params = (await this.observe(host)).saved ?? this.fallback();
      await this.writeAndStart(host, params);
    }
    const outcome = await finishMember({ ...common, dataDir: this.spec.dataDir });
    await this.writeState(host, params ?? this.fallback(), true);
    ctx.log.info({ cluster: this.spec.cluster, outcome }, 'etcd member confirmed');
  }
}
