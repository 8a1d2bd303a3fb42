// spec.kubelet: what the KubeletConfiguration, the kubelet flags and the node's registration say.
// Defaults live here; the builder derives only what depends on other sections (cluster DNS from
// networking.serviceCIDR, the control plane's taint from the role).
import { z } from 'zod';
import { DnsName, IpAddress } from '../engine/schema-util.ts';

const labelName = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Label keys under kubernetes.io / k8s.io that kubelet itself may set (k8s.io/kubelet KubeletLabels). */
const kubeletAllowedLabels = new Set([
  'kubernetes.io/hostname',
  'kubernetes.io/arch',
  'kubernetes.io/os',
  'beta.kubernetes.io/instance-type',
  'node.kubernetes.io/instance-type',
  'failure-domain.beta.kubernetes.io/region',
  'failure-domain.beta.kubernetes.io/zone',
  'topology.kubernetes.io/region',
  'topology.kubernetes.io/zone',
]);
/** Namespaces kubelet may use freely (KubeletLabelNamespaces). */
const kubeletAllowedNamespaces = ['kubelet.kubernetes.io', 'node.kubernetes.io'];

/** Why a label or taint key is not a Kubernetes qualified name, or undefined. Pure. */
export function qualifiedNameProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : '';
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (!labelName.test(name)) return 'expected a name of up to 63 characters, alphanumerics with - _ . inside, after an optional prefix/';
  if (slash >= 0 && (prefix.length > 253 || !dnsSubdomain.test(prefix))) return 'expected a DNS subdomain as the prefix';
  return undefined;
}

/** Why kubelet would refuse a --node-labels key, or undefined when it is fine. Pure. */
export function nodeLabelProblem(key: string): string | undefined {
  const bad = qualifiedNameProblem(key);
  if (bad) return bad;
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : '';
  const restricted = /(^|\.)(kubernetes\.io|k8s\.io)$/.test(prefix);
  if (!restricted || kubeletAllowedLabels.has(key)) return undefined;
  if (kubeletAllowedNamespaces.some((ns) => prefix === ns || prefix.endsWith(`.${ns}`))) return undefined;
  return (
    'kubelet may not set labels under kubernetes.io or k8s.io (it refuses to start); use the ' +
    'node.kubernetes.io/ or kubelet.kubernetes.io/ prefix, or your own domain. node-role.kubernetes.io/* ' +
    'labels are set by a controller or kubectl, not by the node'
  );
}

const LabelValue = z
  .string()
  .regex(/^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/, 'expected a label value: up to 63 characters, alphanumerics with - _ . inside');

export const NodeLabels = z.record(z.string(), LabelValue).superRefine((labels, ctx) => {
  for (const key of Object.keys(labels)) {
    const problem = nodeLabelProblem(key);
    if (problem) ctx.addIssue({ code: 'custom', path: [key], message: problem, input: key });
  }
});

export const Taint = z.strictObject({
  key: z.string().refine((k) => qualifiedNameProblem(k) === undefined, 'expected a taint key such as example.com/dedicated'),
  value: LabelValue.optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']),
});
export type Taint = z.infer<typeof Taint>;

/** Resource quantities such as "100Mi", "500m", "10%" (eviction thresholds). */
const Quantity = z.string().regex(/^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|%)?$/, 'expected a quantity such as 100Mi, 500m or 10%');
const ReservedKey = z.enum(['cpu', 'memory', 'ephemeral-storage', 'pid']);

export const SwapSpec = z.strictObject({
  /**
   * NoSwap (default): pods never use swap. LimitedSwap: burstable pods may use swap in proportion to
   * their memory request (cgroup v2 only); nodeup then leaves the host's swap on.
   */
  behavior: z.enum(['NoSwap', 'LimitedSwap']).default('NoSwap'),
  /** With NoSwap: turn swap off (swapoff -a, fstab entries commented). false leaves swap alone, and kubelet refuses to start while it is on. */
  disableHostSwap: z.boolean().default(true),
});
export type SwapSpec = z.infer<typeof SwapSpec>;

export const KubeletSpec = z.strictObject({
  maxPods: z.number().int().positive().max(2500).default(110),
  clusterDomain: DnsName.default('cluster.local'),
  /** The cluster DNS service addresses; default: the 10th address of networking.serviceCIDR. */
  clusterDNS: z.array(IpAddress).min(1).optional(),
  /** Labels kubelet registers the node with (--node-labels); restricted kubernetes.io keys are refused. */
  nodeLabels: NodeLabels.default({}),
  /** Taints the node registers with; default: node-role.kubernetes.io/control-plane:NoSchedule on control planes, none on workers. */
  registerWithTaints: z.array(Taint).optional(),
  evictionHard: z
    .record(z.string().regex(/^[a-z]+(\.[a-zA-Z]+)+$/, 'expected an eviction signal such as memory.available'), Quantity)
    .default({ 'memory.available': '100Mi', 'nodefs.available': '10%', 'nodefs.inodesFree': '5%', 'imagefs.available': '15%' }),
  systemReserved: z.partialRecord(ReservedKey, Quantity).default({}),
  kubeReserved: z.partialRecord(ReservedKey, Quantity).default({}),
  swap: SwapSpec.prefault({}),
  featureGates: z.record(z.string().regex(/^[A-Z][A-Za-z0-9]+$/, 'expected a feature gate name such as NodeSwap'), z.boolean()).default({}),
  /** Request the serving certificate from the API server (needs an approver for kubelet-serving CSRs). */
  serverTLSBootstrap: z.boolean().default(false),
  /** Extra KubeletConfiguration fields, applied last (they win over nodeup's values). */
  extraConfig: z.record(z.string(), z.unknown()).default({}),
  /** Extra kubelet flags, without the leading dashes: { "v": "2" } becomes --v=2. */
  extraArgs: z.record(z.string().regex(/^[a-z][a-z0-9-]*$/, 'expected a flag name such as v'), z.string().regex(/^\S*$/, 'expected a value without whitespace')).default({}),
  /** Install kubectl next to kubelet (same version, verified asset). */
  installKubectl: z.boolean().default(true),
});
export type KubeletSpec = z.infer<typeof KubeletSpec>;
