// The aws provider cannot reach AWS here: these tests replace the SDK's HTTP handler and assert the
// EC2 Query requests it would send (signed, form-encoded), answering with EC2-shaped XML.
import { Readable } from 'node:stream';
import { EC2Client } from '@aws-sdk/client-ec2';
import type { HttpRequest, HttpResponse } from '@smithy/types';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../engine/log.ts';
import { AwsProvider, runInstancesInput, tagKeys, type AwsOptions } from './aws.ts';
import { AgentError } from '../engine/errors.ts';

interface Sent {
  readonly action: string;
  readonly params: URLSearchParams;
  readonly request: HttpRequest;
}

const xmlns = 'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"';

function fakeEc2(answer: (s: Sent) => string): { client: EC2Client; sent: Sent[] } {
  const sent: Sent[] = [];
  const client = new EC2Client({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'AKIDTESTONLY', secretAccessKey: 'test-secret-not-real' },
    maxAttempts: 1,
    requestHandler: {
      async handle(request: HttpRequest): Promise<{ response: HttpResponse }> {
        const params = new URLSearchParams(String(request.body));
        const s = { action: params.get('Action') ?? '', params, request };
        sent.push(s);
        const body = answer(s);
        return { response: { statusCode: 200, headers: { 'content-type': 'text/xml' }, body: Readable.from([Buffer.from(body)]) } };
      },
    },
  });
  return { client, sent };
}

const runAnswer = (id: string): string =>
  `<RunInstancesResponse ${xmlns}><requestId>r-1</requestId><reservationId>r-0a</reservationId><ownerId>1</ownerId><instancesSet><item><instanceId>${id}</instanceId><instanceState><code>0</code><name>pending</name></instanceState><privateIpAddress>10.1.2.3</privateIpAddress><launchTime>2026-11-23T10:00:00.000Z</launchTime></item></instancesSet></RunInstancesResponse>`;

const base: Omit<AwsOptions, 'client'> = {
  region: 'eu-west-1',
  imageId: 'ami-0123456789abcdef0',
  instanceType: 't3.medium',
  subnetId: 'subnet-1',
  securityGroupIds: ['sg-1', 'sg-2'],
  keyName: 'ops',
  iamInstanceProfile: 'nodeup-node',
  log: silentLogger,
};

describe('aws provider', () => {
  it('sends one signed RunInstances per node with base64 user-data and cluster tags', async () => {
    let n = 0;
    const { client, sent } = fakeEc2(() => runAnswer(`i-000${++n}`));
    const p = new AwsProvider({ ...base, client });
    const userData = '#cloud-config\nruncmd:\n  - [echo, hi]\n';
    const out = await p.launch([
      { name: 'workers-1', cluster: 'c1', instanceGroup: 'workers', role: 'worker', userData },
      { name: 'workers-2', cluster: 'c1', instanceGroup: 'workers', userData },
    ]);
    expect(out.map((i) => [i.name, i.id, i.state, i.address])).toEqual([
      ['workers-1', 'i-0001', 'pending', '10.1.2.3'],
      ['workers-2', 'i-0002', 'pending', '10.1.2.3'],
    ]);
    expect(sent.map((s) => s.action)).toEqual(['RunInstances', 'RunInstances']);
    const q = sent[0]!.params;
    expect(sent[0]!.request.hostname).toBe('ec2.eu-west-1.amazonaws.com');
    expect(String(sent[0]!.request.headers.authorization)).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDTESTONLY\/\d{8}\/eu-west-1\/ec2\/aws4_request/);
    expect(Buffer.from(q.get('UserData') ?? '', 'base64').toString('utf8')).toBe(userData);
    expect(Object.fromEntries([...q.entries()].filter(([k]) => !k.startsWith('TagSpecification') && k !== 'UserData' && k !== 'ClientToken'))).toEqual({
      Action: 'RunInstances',
      Version: '2016-11-15',
      ImageId: 'ami-0123456789abcdef0',
      InstanceType: 't3.medium',
      MinCount: '1',
      MaxCount: '1',
      SubnetId: 'subnet-1',
      'SecurityGroupId.1': 'sg-1',
      'SecurityGroupId.2': 'sg-2',
      KeyName: 'ops',
      'IamInstanceProfile.Name': 'nodeup-node',
      'MetadataOptions.HttpTokens': 'required',
      'MetadataOptions.HttpEndpoint': 'enabled',
    });
    expect(q.get('TagSpecification.1.ResourceType')).toBe('instance');
    const tags = new Map<string, string>();
    for (let i = 1; q.get(`TagSpecification.1.Tag.${i}.Key`); i++) tags.set(q.get(`TagSpecification.1.Tag.${i}.Key`)!, q.get(`TagSpecification.1.Tag.${i}.Value`)!);
    expect(Object.fromEntries(tags)).toEqual({ Name: 'workers-1', [tagKeys.cluster]: 'c1', [tagKeys.instanceGroup]: 'workers', [tagKeys.role]: 'worker' });
    expect(sent[1]!.params.get('TagSpecification.1.Tag.1.Value')).toBe('workers-2');
  });

  it('lists by cluster tag and terminates by name', async () => {
    const describe = `<DescribeInstancesResponse ${xmlns}><requestId>r</requestId><reservationSet><item><reservationId>r-1</reservationId><instancesSet>
      <item><instanceId>i-0b</instanceId><instanceState><code>16</code><name>running</name></instanceState><launchTime>2026-11-23T10:00:00.000Z</launchTime>
        <privateIpAddress>10.0.1.7</privateIpAddress>
        <tagSet><item><key>Name</key><value>workers-2</value></item><item><key>${tagKeys.cluster}</key><value>c1</value></item><item><key>${tagKeys.instanceGroup}</key><value>workers</value></item><item><key>${tagKeys.role}</key><value>worker</value></item></tagSet></item>
      <item><instanceId>i-0a</instanceId><instanceState><code>0</code><name>pending</name></instanceState><launchTime>2026-11-23T10:00:00.000Z</launchTime>
        <tagSet><item><key>Name</key><value>workers-1</value></item><item><key>${tagKeys.cluster}</key><value>c1</value></item></tagSet></item>
      </instancesSet></item></reservationSet></DescribeInstancesResponse>`;
    const { client, sent } = fakeEc2((s) =>
      s.action === 'DescribeInstances' ? describe : `<TerminateInstancesResponse ${xmlns}><requestId>r</requestId><instancesSet/></TerminateInstancesResponse>`,
    );
    const p = new AwsProvider({ ...base, client });
    const list = await p.list('c1');
    expect(list.map((i) => [i.name, i.id, i.state, i.instanceGroup, i.role, i.ssh])).toEqual([
      ['workers-1', 'i-0a', 'pending', '', undefined, undefined],
      ['workers-2', 'i-0b', 'running', 'workers', 'worker', { host: '10.0.1.7', port: 22 }],
    ]);
    expect(sent[0]!.params.get('Filter.1.Name')).toBe(`tag:${tagKeys.cluster}`);
    expect(sent[0]!.params.get('Filter.1.Value.1')).toBe('c1');
    await p.delete(['workers-2']);
    const term = sent.find((s) => s.action === 'TerminateInstances');
    expect(term?.params.get('InstanceId.1')).toBe('i-0b');
    expect(term?.params.get('InstanceId.2')).toBeNull();
    await expect(p.delete(['nope'])).rejects.toThrow(/no instance named nope/);
  });

  it('turns an EC2 error answer into an ORCHESTRATOR error naming the node', async () => {
    const client = new EC2Client({
      region: 'eu-west-1',
      credentials: { accessKeyId: 'AKIDTESTONLY', secretAccessKey: 'x' },
      maxAttempts: 1,
      requestHandler: {
        async handle(): Promise<{ response: HttpResponse }> {
          const body = '<Response><Errors><Error><Code>InvalidAMIID.NotFound</Code><Message>The image id does not exist</Message></Error></Errors><RequestID>r</RequestID></Response>';
          return { response: { statusCode: 400, headers: {}, body: Readable.from([Buffer.from(body)]) } };
        },
      },
    });
    const p = new AwsProvider({ ...base, client });
    const err = await p.launch([{ name: 'w-1', cluster: 'c', instanceGroup: 'w', userData: 'x' }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe('ORCHESTRATOR');
    expect((err as AgentError).message).toMatch(/run instance w-1: The image id does not exist/);
  });

  it('builds the input without optional fields when they are not set', () => {
    const i = runInstancesInput({ region: 'r', imageId: 'ami-1', instanceType: 't3.small', log: silentLogger }, { name: 'a-1', cluster: 'c', instanceGroup: 'a', userData: 'u' });
    expect(i.SubnetId).toBeUndefined();
    expect(i.SecurityGroupIds).toBeUndefined();
    expect(i.IamInstanceProfile).toBeUndefined();
    expect(i.UserData).toBe(Buffer.from('u').toString('base64'));
  });
});
