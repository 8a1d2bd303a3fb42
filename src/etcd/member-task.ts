// The `etcd-member` task kind: this node's member of one etcd cluster, and the static pod manifest
// or systemd unit that runs it. A thin wrapper over ensureMember():
//   observe: is there a data dir (<data-dir>/member/snap/db)? which start parameters were used
//            (/var/lib/nodeup/etcd-<cluster>.json)? does the manifest/unit on disk match them?
//   diff:    no data dir -> "member: create or join"; data dir -> the manifest/unit only
//   apply:   create or join (learner add, start, promote), writing the manifest/unit to start etcd
//            (with replaceDead: when etcd refuses the learner because a voter is down for good, that
//            voter is removed first, see makeRoomForJoin);
//            or rewrite the manifest/unit (kubelet/systemd restart the member).
import * as path from 'node:path/posix';
import { AgentError } from '../agent/errors.ts';
import type { Host } from '../agent/host/host.ts';
import { shortHash } from '../agent/tasks/file.ts';
import { fieldChange, type ApplyContext, type Change, type Task, type TaskKey } from '../agent/task.ts';
import type { StateStore } from '../statestore/store.ts';
import { EtcdClient } from './client.ts';
import { ensureMember, type StartParams } from './join.ts';
import type { MemberIdentity } from './membership.ts';
import { renderEtcdManifest, renderEtcdUnit, type EtcdMemberConfig, type EtcdTlsPaths } from './render-manifest.ts';

export interface EtcdMemberSpec {
  readonly cluster: string;
  readonly self: MemberIdentity;
  readonly advertiseIp: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly tls: EtcdTlsPaths;
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
}

export function etcdStatePath(cluster: string): string {
  return `/var/lib/nodeup/etcd-${cluster}.json`;
}

export class EtcdMemberTask implements Task<EtcdMemberActual> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[];
  readonly spec: EtcdMemberSpec;
  private readonly store: StateStore;

  constructor(store: StateStore, spec: EtcdMemberSpec) {
    this.store = store;
    this.spec = spec;
    this.key = `etcd-member:${spec.cluster}`;
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
    };
    const r = this.spec.run;
    return r.mode === 'static-pod' ? renderEtcdManifest({ member, image: r.image, pkiDir: this.spec.pkiDir }) : renderEtcdUnit(member, r.binary);
  }

  async observe(host: Host): Promise<EtcdMemberActual> {
    const hasData = (await host.fs.stat(`${this.spec.dataDir}/member/snap/db`)) !== undefined;
    const raw = await host.fs.read(this.spec.statePath);
    let saved: StartParams | undefined;
    try {
      saved = raw ? (JSON.parse(raw.toString('utf8')) as StartParams) : undefined;
    } catch {
      saved = undefined;
    }
    const file = await host.fs.read(this.filePath());
    return { hasData, ...(saved ? { saved } : {}), ...(file ? { fileHash: shortHash(file) } : {}) };
  }

  diff(a: EtcdMemberActual | undefined): readonly Change[] {
    if (!a?.hasData) return [{ field: 'member', to: `create or join etcd ${this.spec.cluster} as ${this.spec.self.name} (${this.spec.self.peerUrl})` }];
    // A member with data ignores the initial-* flags; keep the ones it started with.
    const want = shortHash(this.render(a.saved ?? this.fallback()));
    return a.fileHash === want ? [] : [fieldChange(this.spec.run.mode === 'static-pod' ? 'manifest' : 'unit file', a.fileHash, want)];
  }

  private fallback(): StartParams {
    return { initialCluster: `${this.spec.self.name}=${this.spec.self.peerUrl}`, initialClusterState: 'existing', initialClusterToken: `nodeup-${this.spec.cluster}` };
  }

  private async writeAndStart(host: Host, p: StartParams): Promise<void> {
    await host.fs.mkdirp(path.dirname(this.spec.statePath), 0o755);
    await host.fs.writeAtomic(this.spec.statePath, JSON.stringify(p, null, 2) + '\n', { mode: 0o644 });
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
    if (!changes.some((c) => c.field === 'member')) {
      const a = await this.observe(host);
      await this.writeAndStart(host, a.saved ?? this.fallback());
      return;
    }
    if (host.root !== '/') {
      throw new AgentError('ETCD_MEMBERSHIP', `etcd ${this.spec.cluster}: joining a cluster needs a live node (this run works on the root ${host.root})`, {
        details: { cluster: this.spec.cluster },
      });
    }
    const read = async (p: string): Promise<string> => {
      const b = await host.fs.read(p);
      if (!b) throw new AgentError('ETCD_MEMBERSHIP', `etcd ${this.spec.cluster}: ${p} is missing (the PKI tasks write it)`, { details: { path: p } });
      return b.toString('utf8');
    };
    const tls = { ca: await read(this.spec.tls.clientCa), cert: await read(this.spec.clientCert), key: await read(this.spec.clientKey) };
    const res = await ensureMember({
      cluster: this.spec.cluster,
      self: this.spec.self,
      store: this.store,
      client: (eps) => new EtcdClient(host, eps, tls),
      hasData: async () => (await host.fs.stat(`${this.spec.dataDir}/member/snap/db`)) !== undefined,
      start: (p) => this.writeAndStart(host, p),
      log: ctx.log,
      retention: this.spec.retention,
      sleep: (ms) => host.sleep(ms),
      startTimeoutMs: 300_000,
      ...(this.spec.replaceDead ? { replaceDead: { ...this.spec.replaceDead, now: () => host.now() } } : {}),
    });
    if (res.action === 'existing') {
      const a = await this.observe(host);
      await this.writeAndStart(host, a.saved ?? this.fallback());
    }
    ctx.log.info({ cluster: this.spec.cluster, action: res.action, promoteAttempts: res.promoteAttempts }, 'etcd member ready');
  }
}
