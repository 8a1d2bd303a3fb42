// SSH targets and known_hosts matching. Pure.
import { createHmac } from 'node:crypto';
import { AgentError } from '../engine/errors.ts';
import type { InstanceInfo } from '../orchestrator/provider.ts';

export interface SshTarget {
  readonly user: string;
  readonly host: string;
  readonly port: number;
}

/** `[user@]host[:port]`, `[user@][v6addr]:port`; the user defaults to root, the port to 22. */
export function parseTarget(spec: string, what = 'host'): SshTarget {
  const m = /^(?:([A-Za-z0-9._-]+)@)?(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(spec);
  const host = m?.[2] ?? m?.[3];
  if (!m || !host) {
    throw new AgentError('USAGE', `${what} ${JSON.stringify(spec)}: expected [user@]host[:port]`, { details: { [what]: spec } });
  }
  const port = m[4] ? Number(m[4]) : 22;
  if (port < 1 || port > 65535) throw new AgentError('USAGE', `${what} ${spec}: port must be 1-65535`);
  return { user: m[1] ?? 'root', host, port };
}

export function targetName(t: SshTarget): string {
  const h = t.host.includes(':') ? `[${t.host}]` : t.host;
  return t.port === 22 ? h : `${h}:${t.port}`;
}

/** One instance of a cluster as a rollout host: its name, where its sshd answers, its role. */
export interface InstanceHost {
  readonly name: string;
  readonly target: SshTarget;
  readonly controlPlane: boolean;
}

/** What a rollout reads of a provider's instance. */
export type ListedInstance = Pick<InstanceInfo, 'name' | 'cluster' | 'instanceGroup' | 'state' | 'role' | 'ssh'>;

/**
 * The hosts of a rollout over a cluster's instances (`nodeup ssh apply --instances CLUSTER`), in
 * the provider's order; with `group`, that instance group's only (a boot config is one group's).
 * Every instance must be running, reachable over SSH and of a known role: a rollout that silently
 * left one out would report a cluster as updated when it is not. Pure.
 */
export function instanceHosts(list: readonly ListedInstance[], cluster: string, user = 'root', group?: string): InstanceHost[] {
  const ofCluster = list.filter((i) => i.cluster === cluster);
  if (ofCluster.length === 0) throw new AgentError('USAGE', `--instances ${cluster}: the provider lists no instance of that cluster (nodeup launch --list shows them)`, { details: { cluster } });
  const mine = group === undefined ? ofCluster : ofCluster.filter((i) => i.instanceGroup === group);
  if (mine.length === 0) {
    const groups = [...new Set(ofCluster.map((i) => i.instanceGroup))].join(', ');
    throw new AgentError('USAGE', `--instances ${cluster}: no instance of instance group ${group} (the boot config's); the cluster's groups: ${groups}`, { details: { cluster, instanceGroup: group } });
  }
  const refuse = (what: string, bad: readonly ListedInstance[], todo: string): void => {
    if (bad.length > 0) throw new AgentError('USAGE', `--instances ${cluster}: ${bad.map((i) => `${i.name}${what === 'not running' ? ` (${i.state})` : ''}`).join(', ')} ${bad.length === 1 ? 'is' : 'are'} ${what}: ${todo}`, { details: { cluster, instances: bad.map((i) => i.name) } });
  };
  refuse('not running', mine.filter((i) => i.state !== 'running'), 'start or delete them, or name the hosts to roll out yourself');
  refuse('without an SSH address', mine.filter((i) => !i.ssh), 'name the hosts to roll out yourself');
  refuse('of no recorded role (launched by an older nodeup)', mine.filter((i) => !i.role), 'name them with --control-plane HOST and HOST');
  return mine.map((i) => ({ name: i.name, target: { user, host: i.ssh!.host, port: i.ssh!.port }, controlPlane: i.role === 'control-plane' }));
}

/** How OpenSSH names a host in known_hosts: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function patternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(name);
}

/**
 * The host key blobs known_hosts lists for a host (plain, wildcard and hashed entries; `!`
 * negations and @revoked honoured; @cert-authority lines are not supported and skipped).
 */
export function knownHostKeys(knownHosts: string, host: string, port: number): Buffer[] {
  const name = knownHostsName(host, port);
  const keys: Buffer[] = [];
  const revoked: Buffer[] = [];
  for (const raw of knownHosts.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    let fields = line.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]?.startsWith('@')) {
      marker = fields[0];
      fields = fields.slice(1);
    }
    const [patterns, , blob] = fields;
    if (!patterns || !blob || marker === '@cert-authority') continue;
    let hit = false;
    let negated = false;
    for (const p of patterns.split(',')) {
      if (p.startsWith('!')) {
        if (patternMatches(p.slice(1), name)) negated = true;
      } else if (patternMatches(p, name)) hit = true;
    }
    if (!hit || negated) continue;
    const key = Buffer.from(blob, 'base64');
    (marker === '@revoked' ? revoked : keys).push(key);
  }
  return keys.filter((k) => !revoked.some((r) => r.equals(k)));
}
