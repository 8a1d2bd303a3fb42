// Config rules beyond the schemas' shapes: values that are well-formed one by one and still break
// the node together (overlapping ranges, a DNS address outside the service range, two files at one
// path, a schedule systemd refuses, an asset name nodeup does not know). Run once at the edge, after
// the schema, by every path that reads a config (apply, plan, publish, validate). Pure: each rule
// returns problems as `<field path>: <what is wrong and what to do>`; docs/config-validation.md
// lists them. Imports the engine and the model's own tables only.
import * as path from 'node:path/posix';
import type { BootConfig, NodeConfig } from './config.ts';
import { assetNames, supportedMinors } from './assets/versions.ts';
import { cidrsOverlap, ipInCidr, nthAddress, parseCidr, parseIp } from '../engine/net/cidr.ts';

export interface Problem {
  /** Dotted path of the field, e.g. spec.networking.podCIDR or spec.files[2].path. */
  readonly path: string;
  readonly message: string;
}

export const formatProblem = (p: Problem): string => `${p.path}: ${p.message}`;

/** Why a path is not absolute and normalized (no `.`/`..` segments, no `//`, no trailing `/`), or undefined. Pure. */
export function pathProblem(p: string): string | undefined {
  if (!p.startsWith('/')) return 'expected an absolute path';
  if (p === '/') return 'expected a file path, not /';
  if (p.includes('\0')) return 'expected a path without NUL characters';
  const normal = path.normalize(p).replace(/\/$/, '');
  if (normal !== p || p.split('/').some((s) => s === '.' || s === '..')) return `expected a normalized path (no "..", ".", "//" or trailing "/"): write ${normal}`;
  return undefined;
}

const calendarShorthands = new Set(['minutely', 'hourly', 'daily', 'weekly', 'monthly', 'yearly', 'annually', 'quarterly', 'semiannually']);
const weekdays = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

/** Whether every element of a comma list is `*`, a value or a range a..b (each with an optional /step) inside [min, max]. */
function calendarField(text: string, min: number, max: number, decimals = false): boolean {
  const num = decimals ? /^\d{1,4}(\.\d+)?$/ : /^\d{1,4}$/;
  return text.split(',').every((item) => {
    const [range = '', step, ...extra] = item.split('/');
    if (extra.length > 0 || (step !== undefined && (!/^\d+$/.test(step) || Number(step) === 0))) return false;
    if (range === '*') return true;
    const ends = range.split('..');
    if (ends.length > 2 || ends.some((e) => !num.test(e) || Number(e) < min || Number(e) > max)) return false;
    return ends.length === 1 || Number(ends[0]) <= Number(ends[1]);
  });
}

/**
 * Why systemd would refuse an OnCalendar expression, or undefined (systemd.time(7): a shorthand
 * such as `daily`, or `[weekdays] [[year-]month-day] [hour:minute[:second]] [UTC]`). This checks
 * the forms and the ranges of each part; `systemd-analyze calendar` remains the final word. Pure.
 */
export function calendarProblem(spec: string): string | undefined {
  const hint = 'expected a systemd OnCalendar expression such as "*:0/15", "hourly" or "Mon..Fri *-*-* 02:00:00"';
  const words = spec.trim().split(/\s+/);
  if (words.length === 1 && calendarShorthands.has((words[0] ?? '').toLowerCase())) return undefined;
  if (words[words.length - 1] === 'UTC') words.pop();
  let i = 0;
  const day = words[0]?.toLowerCase() ?? '';
  if (/^[a-z]/.test(day)) {
    const ok = day.split(',').every((part) => part.split('..').every((d) => weekdays.includes(d)) && part.split('..').length <= 2);
    if (!ok) return hint;
    i++;
  }
  let sawDate = false;
  let sawTime = false;
  for (; i < words.length; i++) {
    const w = words[i] ?? '';
    if (!sawDate && !sawTime && w.includes('-') && !w.includes(':')) {
      const parts = w.split('-');
      const [y, m, d] = parts.length === 3 ? parts : ['*', ...parts];
      if (parts.length < 2 || parts.length > 3 || !calendarField(y ?? '', 1970, 2199) || !calendarField(m ?? '', 1, 12) || !calendarField((d ?? '').replace(/^~/, ''), 1, 31)) return hint;
      sawDate = true;
    } else if (!sawTime && w.includes(':')) {
      const [h = '', m = '', s, ...extra] = w.split(':');
      if (extra.length > 0 || !calendarField(h, 0, 23) || !calendarField(m, 0, 59) || (s !== undefined && !calendarField(s, 0, 59, true))) return hint;
      sawTime = true;
    } else {
      return hint;
    }
  }
  return i === 0 ? hint : undefined;
}

function networkingProblems(cfg: NodeConfig): Problem[] {
  const out: Problem[] = [];
  const n = cfg.spec.networking;
  const at = 'spec.networking';
  const pod = parseCidr(n.podCIDR);
  const svc = parseCidr(n.serviceCIDR);
  if (pod && svc && pod.family !== svc.family) {
    out.push({ path: `${at}.serviceCIDR`, message: `${n.serviceCIDR} is IPv${svc.family} and podCIDR ${n.podCIDR} is IPv${pod.family}: nodeup sets up one address family; use the same for both` });
  } else if (cidrsOverlap(n.podCIDR, n.serviceCIDR)) {
    out.push({ path: `${at}.serviceCIDR`, message: `${n.serviceCIDR} overlaps podCIDR ${n.podCIDR}: pod and Service addresses would collide; choose ranges that do not overlap (defaults 10.244.0.0/16 and 10.96.0.0/12)` });
  }
  const nodeCidr = n.nodeAddress.cidr;
  if (nodeCidr !== undefined) {
    for (const [name, range] of [['podCIDR', n.podCIDR], ['serviceCIDR', n.serviceCIDR]] as const) {
      if (cidrsOverlap(nodeCidr, range)) {
        out.push({ path: `${at}.nodeAddress.cidr`, message: `${nodeCidr} overlaps ${name} ${range}: node addresses must lie outside the pod and Service ranges (traffic to them would be routed into the cluster network)` });
      }
    }
  }
  const host = new URL(cfg.spec.apiServerEndpoint).hostname.replace(/^\[|\]$/g, '');
  if (parseIp(host) !== undefined) {
    for (const [name, range] of [['podCIDR', n.podCIDR], ['serviceCIDR', n.serviceCIDR]] as const) {
      if (ipInCidr(host, range)) {
        out.push({ path: 'spec.apiServerEndpoint', message: `${host} lies inside ${at}.${name} ${range}: nodes reach the API server before the cluster network exists; use the control plane's node address or a load balancer` });
      }
    }
  }
  (cfg.spec.kubelet.clusterDNS ?? []).forEach((ip, i) => {
    const where = `spec.kubelet.clusterDNS.${i}`;
    if (!ipInCidr(ip, n.serviceCIDR)) {
      out.push({ path: where, message: `${ip} is outside networking.serviceCIDR ${n.serviceCIDR}: the cluster DNS is a Service address; remove clusterDNS to use ${nthAddress(n.serviceCIDR, 10) ?? 'the 10th address'} or pick one inside the range` });
    } else if (ip === nthAddress(n.serviceCIDR, 0) || ip === nthAddress(n.serviceCIDR, 1)) {
      out.push({ path: where, message: `${ip} is the network address or the kubernetes Service's address of ${n.serviceCIDR}: pick another address of the range (kubeadm uses the 10th)` });
    }
  });
  return out;
}

function fileAndUnitProblems(cfg: NodeConfig): Problem[] {
  const out: Problem[] = [];
  const paths = new Map<string, number>();
  cfg.spec.files.forEach((f, i) => {
    const bad = pathProblem(f.path);
    if (bad !== undefined) out.push({ path: `spec.files.${i}.path`, message: bad });
    const first = paths.get(f.path);
    if (first !== undefined) out.push({ path: `spec.files.${i}.path`, message: `${f.path} is listed twice (also spec.files.${first}): keep one entry per path` });
    else paths.set(f.path, i);
  });
  const units = new Map<string, number>();
  cfg.spec.units.forEach((u, i) => {
    const first = units.get(u.name);
    if (first !== undefined) out.push({ path: `spec.units.${i}.name`, message: `${u.name} is listed twice (also spec.units.${first}): keep one entry per unit` });
    else units.set(u.name, i);
    if (u.name === 'nodeup.service') out.push({ path: `spec.units.${i}.name`, message: 'nodeup.service is nodeup\'s own unit (nodeup install-unit writes it): choose another name' });
  });
  return out;
}

function componentProblems(cfg: NodeConfig): Problem[] {
  const out: Problem[] = [];
  const s = cfg.spec;
  const minor = /^v(\d+\.\d+)\./.exec(s.kubernetesVersion)?.[1];
  if (minor !== undefined && !(supportedMinors as readonly string[]).includes(minor)) {
    out.push({ path: 'spec.kubernetesVersion', message: `${s.kubernetesVersion} is not supported: supported minors are ${supportedMinors.join(', ')}` });
  }
  for (const name of Object.keys(s.assets.overrides)) {
    if (!(assetNames as readonly string[]).includes(name)) {
      out.push({ path: `spec.assets.overrides.${name}`, message: `unknown asset ${JSON.stringify(name)} (the override would do nothing): known assets are ${assetNames.join(', ')}` });
    }
  }
  const members = s.etcd.memberCount;
  if (members !== undefined && members % 2 === 0) {
    out.push({ path: 'spec.etcd.memberCount', message: `${members} members tolerate no more failures than ${members - 1} and need more votes for quorum: use an odd count (1, 3, 5, 7 or 9)` });
  }
  if (s.etcd.backup.schedule !== '') {
    const bad = calendarProblem(s.etcd.backup.schedule);
    if (bad !== undefined) out.push({ path: 'spec.etcd.backup.schedule', message: `${bad} ("" disables the timer)` });
  }
  const le = s.controlPlane.leaderElection;
  // client-go's leaderelection refuses to start otherwise (leaseDuration > renewDeadline > 1.2 x retryPeriod).
  if (le.renewDeadlineSeconds >= le.leaseDurationSeconds) {
    out.push({ path: 'spec.controlPlane.leaderElection.renewDeadlineSeconds', message: `${le.renewDeadlineSeconds} must be less than leaseDurationSeconds (${le.leaseDurationSeconds}): the controller-manager and the scheduler refuse to start otherwise` });
  }
  if (le.renewDeadlineSeconds <= 1.2 * le.retryPeriodSeconds) {
    out.push({ path: 'spec.controlPlane.leaderElection.retryPeriodSeconds', message: `${le.retryPeriodSeconds} must be under renewDeadlineSeconds / 1.2 (${le.renewDeadlineSeconds} / 1.2): the controller-manager and the scheduler refuse to start otherwise` });
  }
  if (s.role === 'control-plane') {
    const ports = new Map<number, string>([[10250, 'kubelet\'s port 10250']]);
    s.etcd.clusters.forEach((c) => {
      ports.set(c.clientPort, `etcd ${c.name}'s clientPort`);
      ports.set(c.peerPort, `etcd ${c.name}'s peerPort`);
    });
    const taken = ports.get(s.controlPlane.apiServer.port);
    if (taken !== undefined) out.push({ path: 'spec.controlPlane.apiServer.port', message: `${s.controlPlane.apiServer.port} is also ${taken}: choose another port (default 6443)` });
  }
  return out;
}

/** Every rule on one NodeConfig beyond its schema. Pure. */
export function nodeConfigProblems(cfg: NodeConfig): Problem[] {
  return [...networkingProblems(cfg), ...fileAndUnitProblems(cfg), ...componentProblems(cfg)];
}

/** The NodeConfig a boot config pins must be the one it names. Pure. */
export function pairProblems(boot: BootConfig, cfg: NodeConfig): Problem[] {
  const out: Problem[] = [];
  if (cfg.metadata.cluster !== boot.clusterName) {
    out.push({ path: 'metadata.cluster', message: `the node config is for cluster ${cfg.metadata.cluster}, the boot config names ${boot.clusterName}: publish the right config or fix clusterName` });
  }
  if (cfg.metadata.instanceGroup !== boot.instanceGroup) {
    out.push({ path: 'metadata.instanceGroup', message: `the node config is for instance group ${cfg.metadata.instanceGroup}, the boot config names ${boot.instanceGroup}: publish the right config or fix instanceGroup` });
  }
  return out;
}
