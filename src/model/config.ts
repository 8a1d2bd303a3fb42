// Layer: model. Imports src/engine and each component's leaf schema.ts, nothing else of the project.
// Config, validated once at the edge. Two documents:
//  - BootConfig: the few lines user-data carries (where the state store is, who this node is, and
//    the SHA-256 of its full config).
//  - NodeConfig: the full config of an instance group, read from the state store and refused when
//    its hash differs from the boot config's.
// Defaults live in the schemas; unknown keys are errors; every problem is reported at once.
import { createHash } from 'node:crypto';
import * as yaml from 'js-yaml';
import { z } from 'zod';
import { ContainerdSpec } from '../containerd/schema.ts';
import { ControlPlaneSpec } from '../controlplane/schema.ts';
import { EtcdSpec } from '../etcd/schema.ts';
import { ImagesSpec } from '../images/schema.ts';
import { AddonsSpec } from '../addons/schema.ts';
import { KubeletSpec } from '../kubelet/schema.ts';
import { PackagesSpec } from '../packages/schema.ts';
import { AgentError } from '../engine/errors.ts';
import { AssetOverride, Cidr, cidrSchema, DnsLabel, FileMode, HttpUrl, KubeVersion, NodeName, Url, urlSchema } from '../engine/schema-util.ts';
import { formatProblem, nodeConfigProblems } from './validate.ts';

export const apiVersion = 'nodeup.dev/v1alpha1';

export const S3Settings = z.strictObject({
  /** For S3-compatible servers (MinIO, Ceph RGW...); AWS needs none. */
  endpoint: HttpUrl.optional(),
  region: z.string().default('us-east-1'),
  forcePathStyle: z.boolean().default(false),
});
export type S3Settings = z.infer<typeof S3Settings>;

export const BootConfig = z.strictObject({
  apiVersion: z.literal(apiVersion),
  kind: z.literal('BootConfig'),
  /** file:///path, s3://bucket/prefix or https://host/prefix (read-only). */
  stateStore: urlSchema(['file', 's3', 'https', 'http'], 'a file://, s3:// or https:// URL'),
  clusterName: DnsLabel,
  instanceGroup: DnsLabel,
  /** "sha256:<hex>" of the instance group's NodeConfig as stored. */
  nodeConfigHash: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'expected "sha256:" and 64 hex characters'),
  s3: S3Settings.optional(),
  /** Asset mirrors tried before the official URLs (layout: <mirror>/<name>/<version>/linux-<arch>/<file>). */
  assetMirrors: z.array(Url).default([]),
  /** Overrides the node name (default: the hostname). */
  nodeName: NodeName.optional(),
});
export type BootConfig = z.infer<typeof BootConfig>;

export const ExtraFile = z.strictObject({
  path: z.string().startsWith('/', 'expected an absolute path'),
  content: z.string(),
  mode: FileMode.default(0o644),
});

export const ExtraUnit = z.strictObject({
  name: z.string().regex(/^[a-zA-Z0-9@._-]+\.(service|timer|socket|mount|path)$/, 'expected a unit name such as hook.service'),
  content: z.string().min(1),
  enabled: z.boolean().default(true),
});

const Ipv4Cidr = cidrSchema({ family: 4 });

/**
 * Which of the host's IPv4 addresses is the node's own (kubelet --node-ip, etcd and kube-apiserver
 * advertise addresses, certificate SANs). Empty (the default): the address of the interface holding
 * the default route. Like k3s --node-ip / --flannel-iface and k0s spec.api.address, chosen by
 * subnet or interface so one NodeConfig serves a whole instance group.
 */
export const NodeAddressSpec = z.strictObject({
  /** The first address inside this CIDR, e.g. 192.168.77.0/24 (with `interface`: on that interface). */
  cidr: Ipv4Cidr.optional(),
  /** The first IPv4 address of this interface, e.g. eth1. */
  interface: z.string().regex(/^[^\s/]{1,15}$/, 'expected an interface name such as eth1').optional(),
});

/** `networking.cni: bridge` only. */
export const BridgeSpec = z.strictObject({
  /**
   * `per-node` (default): kube-controller-manager gives each Node a /nodeCIDRMaskSize of podCIDR
   * (spec.podCIDR), kubelet hands it to containerd, which renders the bridge config from nodeup's
   * template. `cluster`: every node's bridge allocates from the whole podCIDR — one node only
   * (nodes would hand out the same addresses).
   */
  podSubnet: z.enum(['per-node', 'cluster']).default('per-node'),
  /**
   * Prefix length of each node's pod subnet (kube-controller-manager --node-cidr-mask-size);
   * default: 24 for an IPv4 podCIDR, 64 for IPv6 (kube-controller-manager's own defaults).
   */
  nodeCIDRMaskSize: z.number().int().min(1).max(128).optional(),
  /**
   * `podSubnet: per-node` only: nodeup-routes.service keeps a route to every other node's pod
   * subnet via that node's InternalIP (nodes on one link). false: the network routes pod subnets
   * itself (cloud route tables, BGP).
   */
  nodeRoutes: z.boolean().default(true),
});

/** The per-node pod subnet's prefix length: bridge.nodeCIDRMaskSize, else 24 (IPv4) or 64 (IPv6). Pure. */
export function nodeCIDRMaskSize(n: { readonly podCIDR: string; readonly bridge: { readonly nodeCIDRMaskSize?: number | undefined } }): number {
  return n.bridge.nodeCIDRMaskSize ?? (n.podCIDR.includes(':') ? 64 : 24);
}

/** Whether nodes route each other's pod subnets (nodeup-routes.service): bridge CNI, per-node subnets, bridge.nodeRoutes. Pure. */
export function nodeRoutesOn(n: { readonly cni: string; readonly bridge: { readonly podSubnet: string; readonly nodeRoutes: boolean } }): boolean {
  return n.cni === 'bridge' && n.bridge.podSubnet === 'per-node' && n.bridge.nodeRoutes;
}

export const NetworkingSpec = z
  .strictObject({
    podCIDR: Cidr.default('10.244.0.0/16'),
    serviceCIDR: Cidr.default('10.96.0.0/12'),
    /** `bridge`: nodeup configures a bridge + host-local CNI network; `external`: the CNI add-on writes its own. */
    cni: z.enum(['bridge', 'external']).default('bridge'),
    bridge: BridgeSpec.prefault({}),
    nodeAddress: NodeAddressSpec.prefault({}),
  })
  .superRefine((n, ctx) => {
    if (n.cni !== 'bridge' || n.bridge.podSubnet !== 'per-node') return;
    const bits = Number(n.podCIDR.split('/')[1]);
    const max = n.podCIDR.includes(':') ? 128 : 32;
    const mask = nodeCIDRMaskSize(n);
    if (mask <= bits || mask > max || mask - bits > 16) {
      ctx.addIssue({
        code: 'custom',
        path: ['bridge', 'nodeCIDRMaskSize'],
        input: mask,
        message: `expected a prefix length longer than podCIDR's /${bits}, at most /${Math.min(max, bits + 16)} (kube-controller-manager splits podCIDR into at most 2^16 node subnets)${n.bridge.nodeCIDRMaskSize === undefined ? ': the default does not fit, set it' : ''}`,
      });
    }
  });

export const KubeProxySpec = z.strictObject({
  enabled: z.boolean().default(true),
  mode: z.enum(['nftables', 'iptables']).default('nftables'),
});

export const NodeSpec = z.strictObject({
  role: z.enum(['control-plane', 'worker']),
  kubernetesVersion: KubeVersion.default('v1.35.1'),
  /** The API server endpoint nodes talk to, e.g. https://10.0.0.10:6443. */
  apiServerEndpoint: HttpUrl,
  assets: z
    .strictObject({
      mirrors: z.array(Url).default([]),
      overrides: z.record(z.string(), AssetOverride).default({}),
    })
    .prefault({}),
  packages: PackagesSpec.prefault({}),
  containerd: ContainerdSpec.prefault({}),
  kubelet: KubeletSpec.prefault({}),
  kubeProxy: KubeProxySpec.prefault({}),
  networking: NetworkingSpec.prefault({}),
  controlPlane: ControlPlaneSpec.prefault({}),
  etcd: EtcdSpec.prefault({}),
  images: ImagesSpec.prefault({}),
  addons: AddonsSpec.prefault({}),
  files: z.array(ExtraFile).default([]),
  units: z.array(ExtraUnit).default([]),
  preflight: z.strictObject({ ignore: z.array(z.string()).default([]) }).prefault({}),
});
export type NodeSpec = z.infer<typeof NodeSpec>;

export const NodeConfig = z.strictObject({
  apiVersion: z.literal(apiVersion),
  kind: z.literal('NodeConfig'),
  metadata: z.strictObject({ cluster: DnsLabel, instanceGroup: DnsLabel }),
  spec: NodeSpec,
});
export type NodeConfig = z.infer<typeof NodeConfig>;

function describeInput(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 57) + '...' : v);
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return typeof v;
}

/** One line per problem: `<path>: <what was expected>, got <what was there>`. Pure. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    const at = issue.path.length > 0 ? issue.path.map(String).join('.') : '(document)';
    const input = (issue as { input?: unknown }).input;
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const k of issue.keys) out.push(`${at === '(document)' ? k : `${at}.${k}`}: unknown key (check the spelling; the JSON Schema lists every key)`);
        break;
      case 'invalid_type':
        // A schema's own message (FileMode's, for a bare number) says more than the type name.
        out.push(issue.message.startsWith('Invalid input') ? `${at}: expected ${issue.expected}, got ${describeInput(input)}` : `${at}: ${issue.message}, got ${describeInput(input)}`);
        break;
      case 'invalid_union':
        out.push(`${at}: ${issue.message.replace(/^Invalid input$/, 'not a valid value')}, got ${describeInput(input)}`);
        break;
      default:
        out.push(`${at}: ${issue.message}${input !== undefined ? `, got ${describeInput(input)}` : ''}`);
    }
  }
  return out;
}

function parseYaml(text: string, source: string): unknown {
  try {
    return yaml.load(text, { filename: source });
  } catch (err: unknown) {
    throw new AgentError('CONFIG_INVALID', `${source}: not valid YAML: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`, {
      cause: err,
      details: { file: source },
    });
  }
}

function validate<T extends z.ZodType>(schema: T, data: unknown, source: string): z.infer<T> {
  const res = schema.safeParse(data, { reportInput: true });
  if (res.success) return res.data;
  throw configInvalid(source, formatIssues(res.error.issues));
}

/** The one error for a config that breaks rules: every problem, one line each, and the file. */
export function configInvalid(source: string, problems: readonly string[]): AgentError {
  return new AgentError('CONFIG_INVALID', `${source}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n  ${problems.join('\n  ')}`, {
    details: { file: source, problems },
  });
}

export function parseBootConfig(text: string, source: string): BootConfig {
  return validate(BootConfig, parseYaml(text, source), source);
}

/** A boot config for a NodeConfig checked or planned off any node (validate, mirror): it pins the document's hash. Pure. */
export function bootConfigFor(config: NodeConfig, raw: string | Buffer, stateStore: string, assetMirrors: readonly string[] = []): BootConfig {
  return {
    apiVersion,
    kind: 'BootConfig',
    stateStore,
    clusterName: config.metadata.cluster,
    instanceGroup: config.metadata.instanceGroup,
    nodeConfigHash: configHash(raw),
    assetMirrors: [...assetMirrors],
  };
}

export function configHash(raw: string | Buffer): string {
  return 'sha256:' + createHash('sha256').update(raw).digest('hex');
}

/** A NodeConfig checked against its schema (`config` then set) and the rules beyond it (src/model/validate.ts). */
export interface NodeConfigCheck {
  readonly config?: NodeConfig;
  /** One line per problem, `<path>: <message>`; schema problems alone when the shapes are wrong. */
  readonly problems: readonly string[];
}

/**
 * Checks the stored NodeConfig without throwing for its problems (callers add their own rules and
 * report every problem at once); throws for YAML syntax and, with `expectedHash`, a hash mismatch.
 */
export function checkNodeConfig(raw: string | Buffer, source: string, expectedHash?: string): NodeConfigCheck {
  if (expectedHash !== undefined) {
    const actual = configHash(raw);
    if (actual !== expectedHash) {
      throw new AgentError('CONFIG_HASH_MISMATCH', `${source}: config hash mismatch: the boot config pins ${expectedHash}, the state store holds ${actual}`, {
        details: { file: source, expected: expectedHash, actual },
      });
    }
  }
  const res = NodeConfig.safeParse(parseYaml(raw.toString(), source), { reportInput: true });
  if (!res.success) return { problems: formatIssues(res.error.issues) };
  return { config: res.data, problems: nodeConfigProblems(res.data).map(formatProblem) };
}

/** Parses the stored NodeConfig; with `expectedHash`, refuses bytes whose hash differs. */
export function parseNodeConfig(raw: string | Buffer, source: string, expectedHash?: string): NodeConfig {
  const { config, problems } = checkNodeConfig(raw, source, expectedHash);
  if (config === undefined || problems.length > 0) throw configInvalid(source, problems);
  return config;
}

/** JSON Schemas for editors: the input shapes (defaults are optional there). */
export function jsonSchemas(): Record<string, unknown> {
  return {
    'boot-config.schema.json': z.toJSONSchema(BootConfig, { io: 'input', target: 'draft-2020-12' }),
    'node-config.schema.json': z.toJSONSchema(NodeConfig, { io: 'input', target: 'draft-2020-12' }),
  };
}
