// Layer: application. May import every layer below (components, model, engine) and other app folders.
// `nodeup ssh apply|plan [user@]host[:port] ...`: reprovision machines over SSH with the same
// binary and boot config every other boot path uses. Control planes (--control-plane) go first, one
// at a time, then the other hosts with a parallelism limit; each apply is followed by its gate
// (`nodeup ready`, and `nodeup etcd members --check` on a control plane); the rollout stops at the
// first host that fails (hosts not started yet are skipped). `--instances CLUSTER` takes the hosts
// and their roles from the orchestrator's provider (what `nodeup launch` made).
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { isSea } from 'node:sea';
import { stringList, type Command, type CommandContext } from '../app/cli.ts';
import { parseBootConfig, type BootConfig } from '../model/config.ts';
import { AgentError } from '../engine/errors.ts';
import { drainTimeoutMs } from '../app/disruption.ts';
import { readLocalFile, sha256File } from '../engine/host/local.ts';
import type { SshAuth } from './client.ts';
import { reprovisionHost, type HostReport } from './reprovision.ts';
import { runStaged } from './rollout.ts';
import { instanceHosts, parseTarget, targetName, type InstanceHost } from './target.ts';

async function binarySha256(p: string): Promise<string> {
  try {
    return await sha256File(p);
  } catch (err: unknown) {
    throw new AgentError('USAGE', `--binary ${p}: cannot read it (${(err as { code?: string }).code ?? String(err)})`, { cause: err });
  }
}

async function readIfExists(p: string): Promise<string | undefined> {
  return fsp.readFile(p, 'utf8').catch(() => undefined);
}

function str(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.values[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

async function authFrom(ctx: CommandContext): Promise<SshAuth> {
  const identity = str(ctx, 'identity');
  const agent = process.env.SSH_AUTH_SOCK;
  if (identity) {
    const key = await fsp.readFile(identity).catch((err: unknown) => {
      throw new AgentError('USAGE', `--identity ${identity}: cannot read it (${(err as { code?: string }).code ?? String(err)})`, { cause: err });
    });
    return { privateKey: key, ...(agent ? { agent } : {}) };
  }
  for (const name of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
    const p = path.join(os.homedir(), '.ssh', name);
    const key = await fsp.readFile(p).catch(() => undefined);
    if (key) return { privateKey: key, ...(agent ? { agent } : {}) };
  }
  if (agent) return { agent };
  throw new AgentError('USAGE', 'no SSH credentials: pass --identity FILE, or run an ssh-agent (SSH_AUTH_SOCK)');
}

export const sshCommand: Command = {
  name: 'ssh',
  summary: 'reprovision hosts over SSH: upload nodeup if changed, write the boot config, run apply (or plan)',
  usage:
    'nodeup ssh (apply|plan) ([user@]host[:port]... [--control-plane [user@]host[:port]]... | --instances CLUSTER [--provider qemu|aws] [--state-dir DIR] [--aws-region R] [--ssh-user U]) [--boot-config FILE] [--binary FILE] [--identity FILE] [--bastion user@host[:port]] [--parallel N] [--known-hosts FILE] [--gate-timeout SECONDS] [--no-gate]\n' +
    '  [--rollback-on-failure] [--drain-timeout SECONDS] [--ready-timeout SECONDS] [--no-drain]  (passed to each host\'s nodeup apply)\n' +
    '  apply rolls out control planes first (--control-plane hosts, one at a time), then the other hosts, --parallel at a time; after each apply it runs\n' +
    '  the gate on the host: `nodeup ready` (kubelet healthy, Node Ready) and, on a control plane, `nodeup etcd members --check` (its member a healthy voter,\n' +
    '  quorum kept); the first host that fails its apply or its gate stops the rollout. --no-gate skips the gates.\n' +
    '  With --rollback-on-failure a host whose new config fails converges back to its last good config (its apply exits 3), and the rollout stops there.\n' +
    '  --instances CLUSTER rolls out to the instances `nodeup launch` made (its --list), control planes by their launched role; every one must be running.\n' +
    '  With --boot-config, only the instances of its instance group (a boot config pins one group\'s NodeConfig).',
  options: {
    'boot-config': { type: 'string' },
    binary: { type: 'string' },
    identity: { type: 'string', short: 'i' },
    bastion: { type: 'string' },
    parallel: { type: 'string', default: '1' },
    'continue-on-error': { type: 'boolean' },
    'known-hosts': { type: 'string', multiple: true },
    'insecure-accept-any-host-key': { type: 'boolean' },
    'remote-binary': { type: 'string', default: '/usr/local/bin/nodeup' },
    'remote-config': { type: 'string', default: '/etc/nodeup/boot.yaml' },
    'remote-lock': { type: 'string', default: '/run/nodeup/ssh.lock' },
    'remote-log-format': { type: 'string', default: 'pretty' },
    'ignore-preflight': { type: 'string', multiple: true },
    'connect-timeout': { type: 'string', default: '20' },
    'control-plane': { type: 'string', multiple: true },
    'gate-timeout': { type: 'string', default: '300' },
    'no-gate': { type: 'boolean' },
    'rollback-on-failure': { type: 'boolean' },
    'drain-timeout': { type: 'string' },
    'ready-timeout': { type: 'string' },
    'no-drain': { type: 'boolean' },
    instances: { type: 'string' },
    provider: { type: 'string', default: 'qemu' },
    'state-dir': { type: 'string' },
    'aws-region': { type: 'string' },
    'ssh-user': { type: 'string' },
  },
  async run(ctx) {
    const [action, ...hostSpecs] = ctx.positionals;
    if (action !== 'apply' && action !== 'plan') throw new AgentError('USAGE', 'nodeup ssh needs an action: apply or plan (see nodeup ssh --help)');
    const cpSpecs = stringList(ctx.values['control-plane']);
    const cluster = str(ctx, 'instances');
    const bootFile = str(ctx, 'boot-config');
    let bootConfig: string | undefined;
    let boot: BootConfig | undefined;
    if (bootFile) {
      bootConfig = await readLocalFile(bootFile, 'boot config');
      boot = parseBootConfig(bootConfig, bootFile); // refuse a bad config before touching any host
    }
    let hosts: InstanceHost[];
    if (cluster) {
      // The orchestrator's instances: what `nodeup launch` made, with their roles and SSH addresses;
      // with --boot-config, its instance group's only (each group has its own boot config).
      if (hostSpecs.length > 0 || cpSpecs.length > 0) throw new AgentError('USAGE', '--instances CLUSTER takes the hosts from the provider: name no host and no --control-plane beside it', { details: { field: '--instances' } });
      if (boot && boot.clusterName !== cluster) {
        throw new AgentError('USAGE', `--boot-config ${bootFile} is cluster ${boot.clusterName}'s, not ${cluster}'s`, { details: { field: '--boot-config', file: bootFile } });
      }
      const { clusterInstances } = await import('../orchestrator/cli.ts');
      // Control planes go first all the same: the stages below order by role.
      hosts = instanceHosts(await clusterInstances(ctx, String(ctx.values.provider), cluster), cluster, str(ctx, 'ssh-user') ?? 'root', boot?.instanceGroup);
    } else {
      if (hostSpecs.length === 0 && cpSpecs.length === 0) throw new AgentError('USAGE', `nodeup ssh ${action} needs at least one [user@]host[:port] (or --instances CLUSTER)`);
      hosts = [...cpSpecs.map((h) => ({ h, controlPlane: true })), ...hostSpecs.map((h) => ({ h, controlPlane: false }))].map(({ h, controlPlane }) => {
        const target = parseTarget(h);
        return { name: targetName(target), target, controlPlane };
      });
    }
    const names = hosts.map((h) => h.name);
    if (new Set(names).size !== names.length) throw new AgentError('USAGE', 'a host is listed twice');
    const cpNames = new Set(hosts.filter((h) => h.controlPlane).map((h) => h.name));
    const gateTimeout = String(ctx.values['gate-timeout']);
    if (!/^\d+$/.test(gateTimeout) || Number(gateTimeout) === 0) throw new AgentError('USAGE', `--gate-timeout takes a whole number of seconds above 0, got '${gateTimeout}'`);
    const bastionSpec = str(ctx, 'bastion');
    const bastion = bastionSpec ? parseTarget(bastionSpec, 'bastion') : undefined;
    const parallel = Number(ctx.values.parallel);
    if (!Number.isInteger(parallel) || parallel < 1) throw new AgentError('USAGE', `--parallel must be a positive integer, got ${String(ctx.values.parallel)}`);
    const logFormat = String(ctx.values['remote-log-format']);
    if (logFormat !== 'json' && logFormat !== 'pretty') throw new AgentError('USAGE', '--remote-log-format must be json or pretty');

    const binaryPath = str(ctx, 'binary') ?? (isSea() ? process.execPath : undefined);
    if (!binaryPath) throw new AgentError('USAGE', 'pass --binary FILE: this nodeup runs from source, so it cannot upload itself');
    const binary = { localPath: binaryPath, sha256: await binarySha256(binaryPath) };

    const knownHostsFiles = stringList(ctx.values['known-hosts']);
    const files = knownHostsFiles.length > 0 ? knownHostsFiles : [path.join(os.homedir(), '.ssh', 'known_hosts'), '/etc/ssh/ssh_known_hosts'];
    const knownHosts = (await Promise.all(files.map(readIfExists))).filter((t): t is string => t !== undefined).join('\n');
    const auth = await authFrom(ctx);
    const owner = `${os.userInfo().username}@${os.hostname()} pid ${process.pid} since ${new Date().toISOString()}`;
    // apply's own flags for day 2, checked here so that a bad one stops the rollout before any host.
    const applyArgs: string[] = [];
    if (action === 'apply') {
      for (const flag of ['drain-timeout', 'ready-timeout'] as const) {
        const v = ctx.values[flag];
        if (v === undefined) continue;
        drainTimeoutMs(v, 0, `--${flag}`);
        applyArgs.push(`--${flag}`, String(v));
      }
      if (ctx.values['no-drain'] === true) applyArgs.push('--no-drain');
      if (ctx.values['rollback-on-failure'] === true) applyArgs.push('--rollback-on-failure');
    }
    const runArgs = [
      ...stringList(ctx.values.only).flatMap((c) => ['--only', c]),
      ...stringList(ctx.values.skip).flatMap((c) => ['--skip', c]),
      ...(action === 'apply' ? stringList(ctx.values['ignore-preflight']).flatMap((c) => ['--ignore-preflight', c]) : []),
      ...applyArgs,
    ];

    ctx.log.info({ action, hosts: names, parallel, bastion: bastion ? targetName(bastion) : undefined, binarySha256: binary.sha256 }, 'ssh rollout starting');
    const byName = new Map(hosts.map((h) => [h.name, h.target]));
    const gatesFor = (name: string): string[][] =>
      ctx.values['no-gate'] === true
        ? []
        : [
            ['ready', '--config', String(ctx.values['remote-config']), '--timeout', gateTimeout, '--log-format', logFormat],
            ...(cpNames.has(name) ? [['etcd', 'members', '--check', '--config', String(ctx.values['remote-config']), '--log-format', logFormat]] : []),
          ];
    const stages = [
      { hosts: names.filter((n) => cpNames.has(n)), parallel: 1 },
      { hosts: names.filter((n) => !cpNames.has(n)), parallel },
    ].filter((s) => s.hosts.length > 0);
    const outcomes = await runStaged<HostReport>(stages, { continueOnError: Boolean(ctx.values['continue-on-error']) }, async (name) => {
      const target = byName.get(name)!;
      const { SshSession } = await import('./client.ts'); // ssh2 loads only when a rollout runs
      const session = await SshSession.connect({
        target,
        ...(bastion ? { bastion } : {}),
        auth,
        hostKeys: { knownHosts, acceptAny: Boolean(ctx.values['insecure-accept-any-host-key']) },
        readyTimeoutMs: Number(ctx.values['connect-timeout']) * 1000,
        log: ctx.log,
      });
      try {
        return await reprovisionHost(
          session,
          {
            mode: action,
            binary,
            ...(bootConfig !== undefined ? { bootConfig } : {}),
            remoteBinary: String(ctx.values['remote-binary']),
            remoteConfig: String(ctx.values['remote-config']),
            lockFile: String(ctx.values['remote-lock']),
            owner,
            runArgs,
            logFormat,
            gates: gatesFor(name),
          },
          { log: ctx.log, out: ctx.out },
        );
      } finally {
        session.close();
      }
    });
    const w = Math.max(...names.map((n) => n.length));
    ctx.out(`\nnodeup ssh ${action}: ${outcomes.length} host(s)\n`);
    for (const o of outcomes) {
      const detail =
        o.status === 'ok'
          ? `${o.durationMs} ms, binary ${o.result.uploaded ? 'uploaded' : 'unchanged'}${o.result.configWritten ? ', boot config written' : ''}${o.result.gates.length > 0 ? `, gates passed: ${o.result.gates.join(', ')}` : ''}${cpNames.has(o.host) ? ' (control plane)' : ''}`
          : o.status === 'failed'
            ? o.message
            : 'not started (rollout stopped)';
      ctx.out(`  ${o.host.padEnd(w)}  ${o.status.padEnd(7)}  ${detail}\n`);
    }
    const failed = outcomes.filter((o) => o.status === 'failed');
    ctx.log.info({ ok: outcomes.filter((o) => o.status === 'ok').length, failed: failed.length, skipped: outcomes.filter((o) => o.status === 'skipped').length }, 'ssh rollout finished');
    return failed.length === 0 ? 0 : 1;
  },
};
