// nodeup etcd members|backup|restore|remove: operations on this control plane's etcd clusters.
// On a node the boot config says where the state store is and the node config gives ports; with
// --store and --endpoints (and --ca/--cert/--key) the command works against any etcd.
import * as path from 'node:path/posix';
import type { Command, CommandContext } from './cli.ts';
import { AgentError, errorMessage } from '../engine/errors.ts';
import type { Host } from '../engine/host/host.ts';
import { readLocalFile } from '../engine/host/local.ts';
import { NodeHost } from '../engine/host/node-host.ts';
import { loadBoot, loadModel } from './run.ts';
import { openStateStore } from '../statestore/open.ts';
import type { StateStore } from '../engine/state-store.ts';
import { backupToStore, listBackups, pruneBackups } from '../etcd/backup.ts';
import { EtcdClient, memberHex, type EtcdTls } from '../etcd/client.ts';
import { etcdCaPath, nodeupClientCert, nodeupClientKey } from '../etcd/component.ts';
import { etcdStatePath } from '../etcd/member-task.ts';
import { clusterHealth, registeredMembers, removeMember, type ClusterHealth, type MemberIdentity } from '../etcd/membership.ts';
import { restoreFromBackup, restoreGuide } from '../etcd/restore.ts';
import { defaultEtcdClusters, type EtcdClusterSpec } from '../etcd/schema.ts';
import '../statestore/backends.ts';
import { compareText } from '../engine/text-order.ts';

/** The members table. Pure. */
export function renderMembersTable(h: ClusterHealth): string {
  const rows = [['NAME', 'ID', 'PEER URL', 'LEARNER', 'LEADER', 'HEALTH']];
  for (const m of [...h.members].sort((a, b) => compareText(a.member.name, b.member.name))) {
    rows.push([
      m.member.name || '(not started)',
      memberHex(m.member.id),
      m.member.peerURLs.join(','),
      m.member.isLearner ? 'yes' : 'no',
      m.isLeader ? 'yes' : 'no',
      m.healthy ? 'healthy' : `unhealthy${m.error ? ` (${m.error.slice(0, 60)})` : ''}`,
    ]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  const lines = rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  '));
  lines.push('', `${h.healthyVoters} of ${h.voters} voting members healthy; quorum needs ${Math.floor(h.voters / 2) + 1}.`);
  return lines.join('\n') + '\n';
}

interface Target {
  readonly cluster: EtcdClusterSpec;
  readonly store: StateStore;
  readonly client: EtcdClient;
  readonly host: Host;
  readonly self?: MemberIdentity;
  readonly dataDir?: string;
  readonly retention: number;
  readonly mode: 'static-pod' | 'systemd';
  readonly binary?: string;
}

async function tlsFrom(ctx: CommandContext, host: Host): Promise<EtcdTls> {
  const read = async (opt: string, fallback: string): Promise<string> => {
    const p = typeof ctx.values[opt] === 'string' ? String(ctx.values[opt]) : fallback;
    if (typeof ctx.values[opt] === 'string') return readLocalFile(p, `--${opt}`);
    const b = await host.fs.read(p);
    if (!b) throw new AgentError('USAGE', `${p} is missing: run nodeup apply on a control-plane node first, or pass --${opt}`, { details: { path: p } });
    return b.toString('utf8');
  };
  return { ca: await read('ca', etcdCaPath), cert: await read('cert', nodeupClientCert), key: await read('key', nodeupClientKey) };
}

async function targets(ctx: CommandContext, all: boolean): Promise<Target[]> {
  const host = new NodeHost({ root: String(ctx.values.root), log: ctx.log });
  const tls = await tlsFrom(ctx, host);
  const name = typeof ctx.values.cluster === 'string' ? ctx.values.cluster : 'main';
  if (typeof ctx.values.store === 'string') {
    const store = openStateStore(ctx.values.store, { log: ctx.log });
    const spec = defaultEtcdClusters.find((c) => c.name === name) ?? { name: name as 'main', clientPort: 2379, peerPort: 2380 };
    const eps = typeof ctx.values.endpoints === 'string' ? ctx.values.endpoints.split(',') : (await registeredMembers(store, name)).map((m) => m.clientUrl);
    if (eps.length === 0) throw new AgentError('USAGE', `no endpoints for etcd ${name}: pass --endpoints`, { details: { cluster: name } });
    return [{ cluster: spec, store, client: new EtcdClient(host, eps, tls), host, retention: 96, mode: 'systemd' }];
  }
  const boot = await loadBoot(String(ctx.values.config));
  const { model, store } = await loadModel({ mode: 'plan', host, log: ctx.log, bootConfig: boot }, boot);
  if (model.spec.role !== 'control-plane') throw new AgentError('USAGE', `${model.nodeName} is a ${model.spec.role}: etcd runs on control-plane nodes`);
  const e = model.spec.etcd;
  const chosen = all ? e.clusters : e.clusters.filter((c) => c.name === name);
  if (chosen.length === 0) throw new AgentError('USAGE', `no etcd cluster ${name} in spec.etcd.clusters (${e.clusters.map((c) => c.name).join(', ')})`);
  const ip = model.nodeIp;
  const out: Target[] = [];
  for (const c of chosen) {
    const local = `https://127.0.0.1:${c.clientPort}`;
    const eps =
      typeof ctx.values.endpoints === 'string'
        ? ctx.values.endpoints.split(',')
        : [...new Set([local, ...(await registeredMembers(store, c.name)).map((m) => m.clientUrl)])];
    out.push({
      cluster: c,
      store,
      client: new EtcdClient(host, eps, tls),
      host,
      self: { name: model.nodeName, clientUrl: `https://${ip}:${c.clientPort}`, peerUrl: `https://${ip}:${c.peerPort}` },
      dataDir: `${e.dataDirRoot}/${c.name}`,
      retention: e.backup.retention,
      mode: e.mode,
      binary: e.binary,
    });
  }
  return out;
}

/**
 * `--check`: why this node's member does not pass a rollout's gate (present, a voter, healthy, and
 * the cluster's voters at quorum), or undefined. Pure.
 */
export function memberGate(h: ClusterHealth, self: string | undefined): string | undefined {
  const me = h.members.find((m) => m.member.name === self);
  if (!me) return `this node's member ${self ?? '?'} is not in the member list`;
  if (me.member.isLearner) return `this node's member ${self ?? '?'} is still a learner (not voting yet)`;
  if (!me.healthy) return `this node's member ${self ?? '?'} is unhealthy${me.error ? `: ${me.error}` : ''}`;
  const quorum = Math.floor(h.voters / 2) + 1;
  if (h.healthyVoters < quorum) return `${h.healthyVoters} of ${h.voters} voting members healthy: quorum needs ${quorum}`;
  return undefined;
}

async function members(ctx: CommandContext): Promise<number> {
  let failed = 0;
  for (const t of await targets(ctx, ctx.values.all === true)) {
    const h = await clusterHealth(t.client);
    if (ctx.values.json) ctx.out(JSON.stringify({ cluster: t.cluster.name, ...h }, null, 2) + '\n');
    else ctx.out(`etcd ${t.cluster.name} (cluster ${h.clusterId ? memberHex(h.clusterId) : '?'})\n${renderMembersTable(h)}\n`);
    if (ctx.values.check) {
      const why = memberGate(h, t.self?.name);
      if (why) {
        failed += 1;
        process.stderr.write(`nodeup etcd members --check: etcd ${t.cluster.name}: ${why}\n`);
      }
    }
  }
  return failed > 0 ? 1 : 0;
}

async function backup(ctx: CommandContext): Promise<number> {
  let failed = 0;
  for (const t of await targets(ctx, ctx.values.all === true)) {
    if (ctx.values.list) {
      for (const b of await listBackups(t.store, t.cluster.name)) ctx.out(`${t.cluster.name}\t${b}\n`);
      continue;
    }
    try {
      const meta = await backupToStore(t.client, t.store, t.cluster.name, {
        reason: ctx.values.scheduled ? 'scheduled' : 'manual',
        log: ctx.log,
        ...(ctx.values.scheduled ? { retention: t.retention } : {}),
      });
      ctx.out(`${t.cluster.name}\t${meta.name}\t${meta.bytes} bytes\n`);
    } catch (err: unknown) {
      failed++;
      ctx.log.error({ err, cluster: t.cluster.name }, 'etcd backup failed');
      process.stderr.write(`nodeup etcd backup: ${t.cluster.name}: ${errorMessage(err)}\n`);
    }
    if (typeof ctx.values.keep === 'string') await pruneBackups(t.store, t.cluster.name, Number(ctx.values.keep), ctx.log);
  }
  return failed > 0 ? 1 : 0;
}

async function restore(ctx: CommandContext): Promise<number> {
  const from = ctx.values.from;
  if (typeof from !== 'string') throw new AgentError('USAGE', 'nodeup etcd restore needs --from <backup name|latest> (nodeup etcd backup --list shows them)');
  const [t] = await targets(ctx, false);
  if (!t) return 2;
  const self: MemberIdentity | undefined =
    typeof ctx.values.name === 'string' && typeof ctx.values['peer-url'] === 'string'
      ? { name: ctx.values.name, peerUrl: ctx.values['peer-url'], clientUrl: t.client.endpoints[0] ?? '' }
      : t.self;
  const dataDir = typeof ctx.values['data-dir'] === 'string' ? ctx.values['data-dir'] : t.dataDir;
  if (!self || !dataDir) throw new AgentError('USAGE', 'outside a node config, restore needs --name, --peer-url and --data-dir');
  const others = (await registeredMembers(t.store, t.cluster.name)).map((m) => m.name).filter((n) => n !== self.name);
  const stopHow =
    t.mode === 'static-pod'
      ? `move /etc/kubernetes/manifests/etcd-${t.cluster.name}.yaml out of that folder`
      : `systemctl stop etcd-${t.cluster.name}.service`;
  ctx.out(restoreGuide(t.cluster.name, self.name, others, stopHow, dataDir).join('\n') + '\n\n');
  if (!ctx.values.yes) {
    ctx.out('Nothing changed. When etcd is stopped everywhere, run again with --yes.\n');
    return 0;
  }
  // Refuse while the local member still answers: restoring under a running member loses writes.
  const answers = await t.client.status(self.clientUrl, 2000).then(
    () => true,
    () => false,
  );
  if (answers) throw new AgentError('ETCD_MEMBERSHIP', `etcd ${t.cluster.name} still answers at ${self.clientUrl}: stop it first (${stopHow})`);
  const tool =
    typeof ctx.values['restore-tool'] === 'string'
      ? ctx.values['restore-tool']
      : t.binary
        ? path.join(path.dirname(t.binary), 'etcdutl')
        : 'etcdutl';
  const res = await restoreFromBackup({ host: t.host, store: t.store, cluster: t.cluster.name, backup: from, self, dataDir, restoreTool: tool, log: ctx.log });
  // The member task keeps what the member started with; a restored member starts as a new cluster.
  await t.host.fs.mkdirp('/var/lib/nodeup', 0o755);
  await t.host.fs.writeAtomic(etcdStatePath(t.cluster.name), JSON.stringify(res.start, null, 2) + '\n', { mode: 0o644 });
  ctx.out(
    [
      `Restored ${res.meta.name} (${res.meta.bytes} bytes, taken ${res.meta.takenAt}) into ${dataDir}.`,
      ...(res.movedAside ? [`The old data dir is kept at ${res.movedAside}.`] : []),
      `Next: start etcd here (nodeup apply), check nodeup etcd members, then on ${res.formerMembers.filter((m) => m.name !== self.name).map((m) => m.name).join(', ') || 'each other control-plane node'}: move ${dataDir} aside and run nodeup apply.`,
    ].join('\n') + '\n',
  );
  return 0;
}

async function remove(ctx: CommandContext): Promise<number> {
  const name = ctx.positionals[1];
  if (!name) throw new AgentError('USAGE', 'nodeup etcd remove needs a member name (nodeup etcd members lists them)');
  const [t] = await targets(ctx, false);
  if (!t) return 2;
  const { members: list } = await t.client.memberList();
  const m = list.find((x) => x.name === name || memberHex(x.id) === name);
  if (!m) throw new AgentError('USAGE', `etcd ${t.cluster.name} has no member ${name}`);
  await removeMember(t.client, m.id, { cluster: t.cluster.name, store: t.store, log: ctx.log, retention: t.retention });
  ctx.out(`removed ${name} from etcd ${t.cluster.name}\n`);
  return 0;
}

export const etcdCommand: Command = {
  name: 'etcd',
  summary: 'etcd operations: members, backup, restore, remove',
  usage: [
    'nodeup etcd members [--cluster main|events] [--all] [--json] [--check (exit 1 unless this node\'s member is a healthy voter and the voters have quorum)]',
    '       nodeup etcd backup [--cluster C] [--all] [--list] [--keep N]',
    '       nodeup etcd restore --from <backup|latest> [--cluster C] [--yes]',
    '       nodeup etcd remove <member> [--cluster C]       (refused when it would break quorum)',
    '  off a node: --store URL --endpoints https://ip:port,... --ca F --cert F --key F',
  ].join('\n'),
  options: {
    cluster: { type: 'string' },
    all: { type: 'boolean' },
    json: { type: 'boolean' },
    check: { type: 'boolean' },
    list: { type: 'boolean' },
    keep: { type: 'string' },
    scheduled: { type: 'boolean' },
    from: { type: 'string' },
    yes: { type: 'boolean' },
    store: { type: 'string' },
    endpoints: { type: 'string' },
    ca: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    name: { type: 'string' },
    'peer-url': { type: 'string' },
    'data-dir': { type: 'string' },
    'restore-tool': { type: 'string' },
  },
  async run(ctx) {
    const sub = ctx.positionals[0];
    switch (sub) {
      case 'members':
        return members(ctx);
      case 'backup':
        return backup(ctx);
      case 'restore':
        return restore(ctx);
      case 'remove':
        return remove(ctx);
      default:
        throw new AgentError('USAGE', `nodeup etcd: expected members, backup, restore or remove, got ${sub ?? 'nothing'}`);
    }
  },
};
