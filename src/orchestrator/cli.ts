// Layer: application. May import every layer below (components, model, engine) and other app folders.
// `nodeup launch`: the thin orchestrator's command. Creates the machines of one instance group
// (qemu guests here, EC2 instances on AWS), lists them, deletes them.
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Command, type CommandContext, stringList } from '../app/cli.ts';
import type { BootConfig } from '../model/config.ts';
import { AgentError } from '../engine/errors.ts';
import type { BinaryArch } from '../bootstrap/render-userdata.ts';
import { parseSha256File } from '../bootstrap/userdata-command.ts';
import type { AwsProvider } from './aws.ts';
import { launchCloud, launchQemu, renderOnly, type LaunchResult } from './launch.ts';
import { sha256File } from './launch-inputs.ts';
import { parseS3Credentials, type BinaryPins } from './user-data.ts';
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

/** A --forward value: the guest TCP port (1-65535) each qemu guest forwards from a free loopback port. */
export function guestPort(v: string): number {
  const n = Number(v);
  if (!/^[0-9]+$/.test(v) || n < 1 || n > 65535) {
    throw new AgentError('USAGE', `--forward takes a guest TCP port (1-65535), e.g. --forward 6443; got ${JSON.stringify(v)}. The host port is picked free and shown by --list`, { details: { field: '--forward' } });
  }
  return n;
}

/** A table of instances for --list. Pure. */
export function renderInstances(list: readonly InstanceInfo[]): string {
  if (list.length === 0) return 'no instances\n';
  const rows = [['NAME', 'CLUSTER', 'GROUP', 'STATE', 'RESULT', 'ID', 'CREATED', 'ADDRESS'], ...list.map((i) => [i.name, i.cluster, i.instanceGroup, i.state, i.result ?? '-', i.id, i.createdAt, i.address ?? '-'])];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n') + '\n';
}

/**
 * The instances of a cluster as its provider lists them, for a rollout over them (`nodeup ssh apply
 * --instances`): qemu reads `--state-dir`, aws describes instances by tag in `--aws-region`.
 */
export async function clusterInstances(ctx: CommandContext, providerName: string, cluster: string): Promise<readonly InstanceInfo[]> {
  if (providerName !== 'qemu' && providerName !== 'aws') throw new AgentError('USAGE', `--provider must be qemu or aws, got ${providerName}`, { details: { field: '--provider' } });
  const stateDir = str(ctx.values['state-dir']) ?? path.join(cacheDir(), 'instances');
  const provider = providerName === 'aws' ? await awsProvider(ctx, false) : new QemuProvider({ stateDir, baseImage: '', log: ctx.log });
  return provider.list(cluster);
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

/** The binary hashes from --dist DIR, --sha256-amd64/--sha256-arm64 and --binary PATH (amd64), later ones winning. */
async function binaryHashes(v: Record<string, unknown>): Promise<Partial<Record<BinaryArch, string>>> {
  const out: Partial<Record<BinaryArch, string>> = {};
  const dist = str(v.dist);
  for (const arch of ['amd64', 'arm64'] as const) {
    if (dist) {
      const file = path.join(dist, `nodeup-linux-${arch}.sha256`);
      const text = await fsp.readFile(file, 'utf8').catch(() => undefined);
      if (text !== undefined) out[arch] = parseSha256File(text, file);
    }
    const given = str(v[`sha256-${arch}`]);
    if (given) out[arch] = given.toLowerCase();
  }
  const binary = str(v.binary);
  if (binary) out.amd64 = await sha256File(binary);
  return out;
}

/** --s3-endpoint, --s3-region, --s3-force-path-style: the s3 settings of the boot config (undefined when none is given). */
function s3Settings(v: Record<string, unknown>): BootConfig['s3'] | undefined {
  const endpoint = str(v['s3-endpoint']);
  const region = str(v['s3-region']);
  if (!endpoint && !region && !v['s3-force-path-style']) return undefined;
  return { ...(endpoint ? { endpoint } : {}), region: region ?? 'us-east-1', forcePathStyle: Boolean(v['s3-force-path-style']) };
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
    'nodeup launch --node-config FILE --binary PATH [--count N | --name NAME...] [--assets DIR] [--network NAME] [--forward PORT] [--only C] [--state-store URL [--s3-endpoint URL --s3-credentials-file FILE]]\n' +
    '       nodeup launch --provider aws --node-config FILE --state-store s3://B/P --mirror URL (--dist DIR | --sha256-amd64 HEX) [--aws-* ...]\n' +
    '       nodeup launch --list [--provider P] [--cluster NAME]\n' +
    '       nodeup launch --delete NAME... [--provider P]\n' +
    '       nodeup launch --node-config FILE --render-only DIR --mirror URL (--binary PATH | --sha256-amd64 HEX)   (user-data files, e.g. for Vagrant)',
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
    forward: { type: 'string', multiple: true },
    list: { type: 'boolean' },
    cluster: { type: 'string' },
    delete: { type: 'string', multiple: true },
    json: { type: 'boolean' },
    mirror: { type: 'string', multiple: true },
    dist: { type: 'string' },
    'sha256-amd64': { type: 'string' },
    'sha256-arm64': { type: 'string' },
    's3-endpoint': { type: 'string' },
    's3-region': { type: 'string' },
    's3-force-path-style': { type: 'boolean' },
    's3-credentials-file': { type: 'string' },
    // replaced flags, kept to say what replaces them
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

    if (str(v['binary-url'])) {
      throw new AgentError('USAGE', '--binary-url was replaced by --mirror URL: the folder that serves nodeup-linux-<arch>.xz or nodeup-linux-<arch> (e.g. --mirror file:///vagrant/dist)', {
        details: { field: '--binary-url' },
      });
    }
    if (str(v['binary-sha256'])) throw new AgentError('USAGE', '--binary-sha256 was replaced by --sha256-amd64 (and --sha256-arm64, or --dist DIR)', { details: { field: '--binary-sha256' } });
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
    const pins = async (): Promise<BinaryPins> => ({ mirrors: stringList(v.mirror), sha256: await binaryHashes(v) });
    if (renderDir) {
      const p = await pins();
      if (p.mirrors.length === 0) throw new AgentError('USAGE', '--render-only needs --mirror URL (where the machines fetch nodeup-linux-<arch>[.xz], e.g. file:///vagrant/dist)', { details: { field: '--mirror' } });
      const files = await renderOnly({
        nodeConfigPath,
        count: common.count,
        names,
        applyArgs,
        outDir: renderDir,
        stateStore: str(v['state-store']),
        pins: p,
        assetMirrors: stringList(v['asset-mirror']),
        log: ctx.log,
      });
      ctx.out(files.map((f) => `wrote ${f}\n`).join(''));
      return 0;
    }
    let res: LaunchResult;
    if (providerName === 'qemu') {
      const binary = str(v.binary);
      if (!binary) {
        throw new AgentError('USAGE', '--binary PATH is required (dist/nodeup-linux-amd64): guests fetch it from this machine, or, from an image that already holds it, only check its SHA-256', {
          details: { field: '--binary' },
        });
      }
      const credFile = str(v['s3-credentials-file']);
      const creds = credFile
        ? parseS3Credentials(
            await fsp.readFile(credFile, 'utf8').catch((err: unknown) => {
              throw new AgentError('USAGE', `--s3-credentials-file ${credFile}: cannot read it (${(err as { code?: string }).code ?? String(err)})`, { cause: err, details: { file: credFile } });
            }),
            credFile,
          )
        : undefined;
      const s3 = s3Settings(v);
      res = await launchQemu({
        ...common,
        provider: 'qemu',
        stateDir,
        baseImage,
        binary: path.resolve(binary),
        assetsDir: str(v.assets),
        stateStore: str(v['state-store']),
        ...(s3 ? { s3 } : {}),
        s3Credentials: creds,
        memoryMiB: posInt(v.memory, '--memory', 2048),
        cpus: posInt(v.cpus, '--cpus', 2),
        accel: str(v.accel) === 'auto' ? undefined : str(v.accel),
        diskSize: str(v['disk-size']),
        extraAssetMirrors: stringList(v['asset-mirror']),
        network: str(v.network),
        forwardPorts: stringList(v.forward).map((f) => guestPort(f)),
      });
    } else {
      const stateStore = str(v['state-store']);
      if (!stateStore) throw new AgentError('USAGE', 'aws: --state-store s3://bucket/cluster is required (nodes read their config there)', { details: { field: '--state-store' } });
      if (stringList(v.forward).length > 0) {
        throw new AgentError('USAGE', '--forward is for qemu guests (a loopback port on this machine); reach cloud nodes through their security group and address', { details: { field: '--forward' } });
      }
      if (str(v['s3-credentials-file'])) {
        throw new AgentError('USAGE', '--s3-credentials-file is for lab S3 servers reached by qemu guests; cloud nodes reach their store through --aws-instance-profile, never credentials in user-data', {
          details: { field: '--s3-credentials-file' },
        });
      }
      const s3 = s3Settings(v);
      res = await launchCloud({
        ...common,
        provider: await awsProvider(ctx, true),
        stateStore,
        ...(s3 ? { s3 } : {}),
        pins: await pins(),
        assetMirrors: stringList(v['asset-mirror']),
      });
    }
    ctx.out(v.json ? JSON.stringify({ ok: res.ok, instances: res.instances, nodes: res.nodes }, null, 2) + '\n' : summary(res));
    return res.ok ? 0 : 1;
  },
};
