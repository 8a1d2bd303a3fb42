// The aws provider: one RunInstances call per node with its user-data (base64) and tags naming the
// cluster, the instance group and the node; list and delete find instances by those tags.
// Nodes read their config from the state store named in the boot config (s3:// or https://) and
// publish their receipts there; `nodeup launch` polls the store for them.
import {
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type EC2ClientConfig,
  type RunInstancesCommandInput,
  type Tag,
} from '@aws-sdk/client-ec2';
import { AgentError, errorMessage } from '../engine/errors.ts';
import type { Logger } from '../engine/log.ts';
import type { InstanceInfo, InstanceRequest, InstanceState, NodeRole, Provider } from './provider.ts';
import { compareText } from '../engine/text-order.ts';

export const tagKeys = {
  cluster: 'nodeup.dev/cluster',
  instanceGroup: 'nodeup.dev/instance-group',
  role: 'nodeup.dev/role',
  name: 'Name',
} as const;

export interface AwsOptions {
  readonly region: string;
  readonly imageId: string;
  readonly instanceType: string;
  readonly subnetId?: string | undefined;
  readonly securityGroupIds?: readonly string[];
  readonly keyName?: string | undefined;
  /** Instance profile name: gives nodes read access to the s3:// state store. */
  readonly iamInstanceProfile?: string | undefined;
  /** Root volume size in GiB. */
  readonly rootVolumeGiB?: number | undefined;
  readonly extraTags?: Readonly<Record<string, string>>;
  readonly log: Logger;
  /** For tests: the SDK client config (credentials, requestHandler) or a ready client. */
  readonly client?: EC2Client;
  readonly clientConfig?: EC2ClientConfig;
}

/** The RunInstances input for one node. Pure. */
export function runInstancesInput(o: AwsOptions, r: InstanceRequest): RunInstancesCommandInput {
  const tags: Tag[] = [
    { Key: tagKeys.name, Value: r.name },
    { Key: tagKeys.cluster, Value: r.cluster },
    { Key: tagKeys.instanceGroup, Value: r.instanceGroup },
    ...(r.role ? [{ Key: tagKeys.role, Value: r.role }] : []),
    ...Object.entries(o.extraTags ?? {}).map(([Key, Value]) => ({ Key, Value })),
  ];
  return {
    ImageId: o.imageId,
    InstanceType: o.instanceType as RunInstancesCommandInput['InstanceType'],
    MinCount: 1,
    MaxCount: 1,
    UserData: Buffer.from(r.userData, 'utf8').toString('base64'),
    ...(o.subnetId ? { SubnetId: o.subnetId } : {}),
    ...(o.securityGroupIds && o.securityGroupIds.length > 0 ? { SecurityGroupIds: [...o.securityGroupIds] } : {}),
    ...(o.keyName ? { KeyName: o.keyName } : {}),
    ...(o.iamInstanceProfile ? { IamInstanceProfile: { Name: o.iamInstanceProfile } } : {}),
    ...(o.rootVolumeGiB ? { BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: o.rootVolumeGiB, VolumeType: 'gp3', DeleteOnTermination: true } }] } : {}),
    MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled' },
    TagSpecifications: [
      { ResourceType: 'instance', Tags: tags },
      { ResourceType: 'volume', Tags: tags },
    ],
  };
}

function stateOf(name: string | undefined): InstanceState {
  if (name === 'pending') return 'pending';
  if (name === 'running') return 'running';
  if (name === 'stopped' || name === 'stopping') return 'stopped';
  return 'unknown';
}

function awsError(what: string, err: unknown): AgentError {
  return new AgentError('ORCHESTRATOR', `aws: cannot ${what}: ${errorMessage(err)}`, { cause: err, details: { op: what } });
}

export class AwsProvider implements Provider {
  readonly name = 'aws';
  private readonly o: AwsOptions;
  readonly client: EC2Client;

  constructor(opts: AwsOptions) {
    this.o = opts;
    this.client = opts.client ?? new EC2Client({ region: opts.region, ...opts.clientConfig });
  }

  async launch(requests: readonly InstanceRequest[]): Promise<readonly InstanceInfo[]> {
    const out: InstanceInfo[] = [];
    for (const r of requests) {
      const input = runInstancesInput(this.o, r);
      this.o.log.info({ instance: r.name, imageId: input.ImageId, instanceType: input.InstanceType, userDataBytes: r.userData.length }, 'aws RunInstances');
      const res = await this.client.send(new RunInstancesCommand(input)).catch((err: unknown) => {
        throw awsError(`run instance ${r.name}`, err);
      });
      const inst = res.Instances?.[0];
      if (!inst?.InstanceId) throw new AgentError('ORCHESTRATOR', `aws: RunInstances for ${r.name} returned no instance`, { details: { instance: r.name } });
      out.push({
        name: r.name,
        provider: this.name,
        cluster: r.cluster,
        instanceGroup: r.instanceGroup,
        state: stateOf(inst.State?.Name),
        id: inst.InstanceId,
        createdAt: (inst.LaunchTime ?? new Date()).toISOString(),
        ...(inst.PrivateIpAddress ? { address: inst.PrivateIpAddress } : {}),
      });
    }
    return out;
  }

  async list(cluster?: string): Promise<readonly InstanceInfo[]> {
    const out: InstanceInfo[] = [];
    let token: string | undefined;
    do {
      const res = await this.client
        .send(
          new DescribeInstancesCommand({
            Filters: [
              cluster ? { Name: `tag:${tagKeys.cluster}`, Values: [cluster] } : { Name: 'tag-key', Values: [tagKeys.cluster] },
              { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
            ],
            ...(token ? { NextToken: token } : {}),
          }),
        )
        .catch((err: unknown) => {
          throw awsError('describe instances', err);
        });
      for (const rv of res.Reservations ?? []) {
        for (const i of rv.Instances ?? []) {
          const tag = (k: string): string => i.Tags?.find((t) => t.Key === k)?.Value ?? '';
          out.push({
            name: tag(tagKeys.name) || (i.InstanceId ?? ''),
            provider: this.name,
            cluster: tag(tagKeys.cluster),
            instanceGroup: tag(tagKeys.instanceGroup),
            state: stateOf(i.State?.Name),
            id: i.InstanceId ?? '',
            createdAt: (i.LaunchTime ?? new Date(0)).toISOString(),
            ...(i.PrivateIpAddress ? { address: i.PrivateIpAddress, ssh: { host: i.PrivateIpAddress, port: 22 } } : {}),
            ...(tag(tagKeys.role) === 'control-plane' || tag(tagKeys.role) === 'worker' ? { role: tag(tagKeys.role) as NodeRole } : {}),
          });
        }
      }
      token = res.NextToken;
    } while (token);
    return out.sort((a, b) => compareText(a.name, b.name));
  }

  async delete(names: readonly string[]): Promise<void> {
    const all = await this.list();
    const ids: string[] = [];
    const missing: string[] = [];
    for (const n of names) {
      const found = all.filter((i) => i.name === n || i.id === n);
      if (found.length === 0) missing.push(n);
      ids.push(...found.map((i) => i.id));
    }
    if (missing.length > 0) {
      throw new AgentError('ORCHESTRATOR', `aws: no instance named ${missing.join(', ')} with a ${tagKeys.cluster} tag (see nodeup launch --provider aws --list)`, {
        details: { missing },
      });
    }
    this.o.log.info({ instances: ids }, 'aws TerminateInstances');
    await this.client.send(new TerminateInstancesCommand({ InstanceIds: ids })).catch((err: unknown) => {
      throw awsError('terminate instances', err);
    });
  }
}
