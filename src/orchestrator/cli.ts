// `nodeup launch`: the thin orchestrator's command. Creates the machines of one instance group
// (qemu guests here, EC2 instances on AWS), lists them, deletes them.
import * as os from 'node:os';
import * as path from 'node:path';
import { type Command, type CommandContext, stringList } from '../agent/cli.ts';
import { AgentError } from '../agent/errors.ts';
import type { AwsProvider } from './aws.ts';
import { launchCloud, launchQemu, renderOnly, sha256File, type LaunchResult } from './launch.ts';
import type { InstanceInfo, Provider } from './provider.ts';
import { QemuProvider } from './qemu.ts';

const cacheDir = (): string => process.env.NODEUP_CACHE ?? path.join(os.homedir(), '.cache', 'nodeup');

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function posInt(v: unknown, flag: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new AgentError('USAGE', `${flag} must be a positive whole number, got ${JSON.stringify(v)}`, { details: { field: flag } });
  return n;
}

/** A table of instances for --list. Pure. */
export function renderInstances(list: readonly InstanceInfo[]): string {
  if (list.length === 0) return 'no instances\n';
  const rows = [['NAME', 'CLUSTER', 'GROUP', 'STATE', 'RESULT', 'ID', 'CREATED', 'ADDRESS'], ...list.map((i) => [i.name, i.cluster, i.instanceGroup, i.state, i.result ?? '-', i.id, i.createdAt, i.address ?? '-'])];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n') + '\n';
}

/** The AWS SDK loads only when the aws provider is used: every other command starts without it. */
async function awsProvider(ctx: CommandContext, needLaunch: boolean): Promise<AwsProvider> {
  const { AwsProvider } = await import('./aws.ts');
  const v = ctx.values;
  const region = str(v['aws-region']) ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (!region) throw new AgentError('USAGE', 'aws: set --aws-region (or AWS_REGION)', { details: { field: '--aws-region' } });
  const imageId = str(v['aws-image-id']);
  if (needLaunch && !imageId) throw new AgentError('USAGE', 'aws: --aws-image-id is required to launch (an AMI with cloud-init)', { details: { field: '--aws-image-id' } });
  return new AwsProvider({
    region,
    imageId: imageId ?? '',
    instanceType: str(v['aws-instance-type']) ?? 't3.medium',
    subnetId: str(v['aws-subnet-id']),
    securityGroupIds: stringList(v['aws-security-group']),
    keyName: str(v['aws-key-name']),
    iamInstanceProfile: str(v['aws-instance-profile']),
    log: ctx.log,
  });
}

function summary(res: LaunchResult): string {
  const lines = res.nodes.map((n) => {
    const t = n.timings;
    const toStart = t.startedAtMs !== undefined ? `${((t.startedAtMs - t.launchedAtMs) / 1000).toFixed(1)}s` : '-';
    const toReceipt = t.receiptAtMs !== undefined ? `${((t.receiptAtMs - t.launchedAtMs) / 1000).toFixed(1)}s` : '-';
    return `${n.name}: ${n.phase}${n.reason ? ` (${n.reason})` : ''}; launch->nodeup start ${toStart}, nodeup ${t.nodeupMs !== undefined ? (t.nodeupMs / 1000).toFixed(1) + 's' : '-'}, launch->receipt ${toReceipt}`;
  });
  return lines.join('\n') + '\n';
}

export const launchCommand: Command = {
  name: 'launch',
  summary: 'create machines for an instance group (qemu or aws) and wait for their receipts; --list, --delete',
  usage:
    'nodeup launch --node-config FILE [--provider qemu|aws] [--count N | --name NAME...] [--binary PATH] [--assets DIR] [--only C]\n' +
    '       nodeup launch --list [--provider P] [--cluster NAME]\n' +
    '       nodeup launch --delete NAME... [--provider P]\n' +
    '       nodeup launch --node-config FILE --render-only DIR [--binary PATH --binary-url URL]   (user-data files, e.g. for Vagrant)',
  options: {
    provider: { type: 'string', default: 'qemu' },
    'node-config': { type: 'string' },
    count: { type: 'string' },
    name: { type: 'string', multiple: true },
    binary: { type: 'string' },
    assets: { type: 'string' },
    'asset-mirror': { type: 'string', multiple: true },
    'state-store': { type: 'string' },
    'state-dir': { type: 'string' },
    'base-image': { type: 'string' },
    memory: { type: 'string' },
    cpus: { type: 'string' },
    accel: { type: 'string' },
    'disk-size': { type: 'string' },
    timeout: { type: 'string' },
    'no-wait': { type: 'boolean' },
    'render-only': { type: 'string' },
    network: { type: 'string' },
    list: { type: 'boolean' },
    cluster: { type: 'string' },
    delete: { type: 'string', multiple: true },
    json: { type: 'boolean' },
    'binary-url': { type: 'string' },
    'binary-sha256': { type: 'string' },
    'aws-region': { type: 'string' },
    'aws-image-id': { type: 'string' },
    'aws-instance-type': { type: 'string' },
    'aws-subnet-id': { type: 'string' },
    'aws-security-group': { type: 'string', multiple: true },
    'aws-key-name': { type: 'string' },
    'aws-instance-profile': { type: 'string' },
  },
  async run(ctx) {
    const v = ctx.values;
    const providerName = String(v.provider);
    if (providerName !== 'qemu' && providerName !== 'aws') {
      throw new AgentError('USAGE', `--provider must be qemu or aws, got ${providerName}`, { details: { field: '--provider' } });
    }
    const stateDir = str(v['state-dir']) ?? path.join(cacheDir(), 'instances');
    const baseImage = str(v['base-image']) ?? path.join(cacheDir(), 'vm', 'base-current');
    const lister = async (): Promise<Provider> => (providerName === 'aws' ? awsProvider(ctx, false) : new QemuProvider({ stateDir, baseImage, log: ctx.log }));

    if (v.list) {
      const list = await (await lister()).list(str(v.cluster));
      ctx.out(v.json ? JSON.stringify(list, null, 2) + '\n' : renderInstances(list));
      return 0;
    }
    const toDelete = stringList(v.delete);
    if (toDelete.length > 0) {
      await (await lister()).delete(toDelete);
      ctx.out(`deleted ${toDelete.join(', ')}\n`);
      return 0;
    }

    const nodeConfigPath = str(v['node-config']);
    if (!nodeConfigPath) throw new AgentError('USAGE', '--node-config FILE is required (the NodeConfig of the instance group to launch)', { details: { field: '--node-config' } });
    const applyArgs = [...stringList(v.only).flatMap((c) => ['--only', c]), ...stringList(v.skip).flatMap((c) => ['--skip', c])];
    const names = stringList(v.name);
    const common = {
      log: ctx.log,
      progress: (line: string) => ctx.out(line),
      nodeConfigPath,
      count: posInt(v.count, '--count', names.length > 0 ? names.length : 1),
      names,
      applyArgs,
      wait: !v['no-wait'],
      timeoutSec: posInt(v.timeout, '--timeout', 1800),
    };
    const renderDir = str(v['render-only']);
    if (renderDir) {
      const binaryUrl = str(v['binary-url']);
      const binaryPath = str(v.binary);
      if (binaryUrl && !binaryPath && !str(v['binary-sha256'])) {
        throw new AgentError('USAGE', '--binary-url needs --binary PATH (to hash) or --binary-sha256', { details: { field: '--binary-sha256' } });
      }
      const sha256 = str(v['binary-sha256']) ?? (binaryUrl && binaryPath ? await sha256File(binaryPath) : undefined);
      const files = await renderOnly({
        nodeConfigPath,
        count: common.count,
        names,
        applyArgs,
        outDir: renderDir,
        stateStore: str(v['state-store']),
        ...(binaryUrl && sha256 ? { binary: { url: binaryUrl, sha256 } } : {}),
        assetMirrors: stringList(v['asset-mirror']),
        log: ctx.log,
      });
      ctx.out(files.map((f) => `wrote ${f}\n`).join(''));
      return 0;
    }
    let res: LaunchResult;
    if (providerName === 'qemu') {
      const binary = str(v.binary);
      res = await launchQemu({
        ...common,
        provider: 'qemu',
        stateDir,
        baseImage,
        binary: binary ? path.resolve(binary) : undefined,
        assetsDir: str(v.assets),
        stateStore: str(v['state-store']),
        memoryMiB: posInt(v.memory, '--memory', 2048),
        cpus: posInt(v.cpus, '--cpus', 2),
        accel: str(v.accel) === 'auto' ? undefined : str(v.accel),
        diskSize: str(v['disk-size']),
        extraAssetMirrors: stringList(v['asset-mirror']),
        network: str(v.network),
      });
    } else {
      const stateStore = str(v['state-store']);
      if (!stateStore) throw new AgentError('USAGE', 'aws: --state-store s3://bucket/cluster is required (nodes read their config there)', { details: { field: '--state-store' } });
      res = await launchCloud({
        ...common,
        provider: await awsProvider(ctx, true),
        stateStore,
        binaryUrl: str(v['binary-url']),
        binarySha256: str(v['binary-sha256']),
        assetMirrors: stringList(v['asset-mirror']),
      });
    }
    ctx.out(v.json ? JSON.stringify({ ok: res.ok, instances: res.instances, nodes: res.nodes }, null, 2) + '\n' : summary(res));
    return res.ok ? 0 : 1;
  },
};
