// A small etcd v3 client over the JSON gateway (/v3/...), which etcd 3.4, 3.5 and 3.6 all serve on
// their client URLs, through host.http() with mutual TLS. Enough for membership, health, backups
// and tests: member list/add/promote/remove, status, snapshot, put/range.
import { AgentError, errorMessage } from '../engine/errors.ts';
import type { Host, HttpResponse } from '../engine/host/host.ts';

export interface EtcdTls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface EtcdMember {
  /** Decimal uint64, as the gateway sends it. */
  readonly id: string;
  /** Empty for a member that was added but has not started yet. */
  readonly name: string;
  readonly peerURLs: readonly string[];
  readonly clientURLs: readonly string[];
  readonly isLearner: boolean;
}

export interface EtcdStatus {
  readonly memberId: string;
  readonly clusterId: string;
  readonly version: string;
  readonly dbSize: number;
  readonly leader: string;
  readonly raftIndex: number;
  readonly raftAppliedIndex: number;
  readonly isLearner: boolean;
}

/** The hex form etcdctl prints (8e9e05c52164694d). */
export function memberHex(id: string): string {
  return BigInt(id).toString(16);
}

interface RawMember {
  ID?: string;
  name?: string;
  peerURLs?: string[];
  clientURLs?: string[];
  isLearner?: boolean;
}

function toMember(m: RawMember): EtcdMember {
  return { id: String(m.ID ?? '0'), name: m.name ?? '', peerURLs: m.peerURLs ?? [], clientURLs: m.clientURLs ?? [], isLearner: m.isLearner === true };
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** The key just after every key that starts with prefix (etcd's range_end for a prefix). */
export function prefixEnd(prefix: string): string {
  const b = Buffer.from(prefix, 'utf8');
  for (let i = b.length - 1; i >= 0; i--) {
    if ((b[i] ?? 0) < 0xff) {
      b[i] = (b[i] ?? 0) + 1;
      return b.subarray(0, i + 1).toString('latin1');
    }
  }
  return '\0';
}

/**
 * What etcd answered, by identity: etcd's server errors (api/v3rpc/rpctypes) are fixed descriptions,
 * each with its gRPC code; the gateway passes the description on, and etcd's own Go client tells
 * them apart by that exact description (rpctypes.Error). This table is the one place that reads it.
 */
const etcdErrors = {
  'etcdserver: member not found': 'member-not-found',
  'etcdserver: unhealthy cluster': 'unhealthy-cluster',
  'etcdserver: too many learner members in cluster': 'too-many-learners',
  'etcdserver: can only promote a learner member which is in sync with leader': 'learner-not-ready',
  'etcdserver: can only promote a learner member': 'member-not-learner',
  'etcdserver: rpc not supported for learner': 'not-supported-for-learner',
  'etcdserver: re-configuration failed due to not enough started members': 'not-enough-started',
  'etcdserver: leader changed': 'leader-changed',
  'etcdserver: no leader': 'no-leader',
  'etcdserver: not leader': 'not-leader',
  'etcdserver: request timed out': 'timeout',
  'etcdserver: request timed out, possibly due to previous leader failure': 'timeout',
  'etcdserver: request timed out, possibly due to connection lost': 'timeout',
  'etcdserver: request timed out, leader transfer took too long': 'timeout',
  'etcdserver: request timed out, waiting for the applied index took too long': 'timeout',
  'etcdserver: too many requests': 'too-many-requests',
} as const;

export type EtcdErrorKind = (typeof etcdErrors)[keyof typeof etcdErrors] | 'other';

/** The kind of an etcd error description (the gateway's `message`, or a gRPC status' `desc = ...`). */
export function etcdErrorKind(description: string): EtcdErrorKind {
  const desc = description.replace(/^rpc error: code = \w+ desc = /, '').trim();
  return (etcdErrors as Readonly<Record<string, EtcdErrorKind>>)[desc] ?? 'other';
}

/** What etcd itself answered to a call (not a network failure, not a local file), or undefined. */
export function etcdRefusal(err: unknown): EtcdErrorKind | undefined {
  if (!(err instanceof AgentError)) return undefined;
  const kind = err.details.etcdError;
  return typeof kind === 'string' ? (kind as EtcdErrorKind) : undefined;
}

/** etcd's own answers that clear by themselves: an election in progress, a busy or slow leader. */
const transientKinds: ReadonlySet<EtcdErrorKind> = new Set(['leader-changed', 'no-leader', 'timeout', 'too-many-requests']);

/**
 * Worth a retry: no endpoint answered at all (a network failure or a timeout), etcd answered that
 * it is electing a leader or is too busy (under load, as when a member joins a small cluster), or a
 * membership guard found the members too slow to answer their status (`busy`).
 */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof AgentError)) return false;
  const kind = etcdRefusal(err);
  return err.details.unreachable === true || err.details.busy === true || (kind !== undefined && transientKinds.has(kind));
}

export class EtcdClient {
  readonly endpoints: readonly string[];
  private readonly host: Host;
  private readonly tls: EtcdTls | undefined;
  private readonly timeoutMs: number;

  constructor(host: Host, endpoints: readonly string[], tls?: EtcdTls, timeoutMs = 10_000) {
    if (endpoints.length === 0) throw new AgentError('ETCD_MEMBERSHIP', 'an etcd client needs at least one endpoint');
    this.host = host;
    this.endpoints = endpoints.map((e) => e.replace(/\/+$/, ''));
    this.tls = tls;
    this.timeoutMs = timeoutMs;
  }

  /** The same client aimed at other endpoints. */
  withEndpoints(endpoints: readonly string[]): EtcdClient {
    return new EtcdClient(this.host, endpoints, this.tls, this.timeoutMs);
  }

  private async post(endpoint: string, path: string, body: unknown, timeoutMs = this.timeoutMs): Promise<HttpResponse> {
    return this.host.http({
      url: `${endpoint}${path}`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      timeoutMs,
      ...(this.tls ? { tls: this.tls } : {}),
    });
  }

  /**
   * Calls each endpoint in turn until one answers. An etcd error answer (HTTP 4xx/5xx with a message)
   * is final: it is the cluster's word, not a network problem.
   */
  private async call<T>(path: string, body: unknown, opts: { endpoint?: string; timeoutMs?: number } = {}): Promise<T> {
    const targets = opts.endpoint ? [opts.endpoint] : this.endpoints;
    let last: unknown;
    for (const ep of targets) {
      let res: HttpResponse;
      try {
        res = await this.post(ep, path, body, opts.timeoutMs);
      } catch (err: unknown) {
        last = err;
        continue;
      }
      const text = res.body.toString('utf8');
      if (res.status >= 200 && res.status < 300) {
        const parsed = JSON.parse(text) as T & { error?: string };
        return parsed;
      }
      let message = text.trim();
      let grpcCode: number | undefined;
      try {
        const e = JSON.parse(text) as { error?: string; message?: string; code?: number };
        message = e.message ?? e.error ?? message;
        grpcCode = typeof e.code === 'number' ? e.code : undefined;
      } catch {
        // not JSON: keep the text
      }
      const etcdError = etcdErrorKind(message);
      // A learner refuses most calls; another endpoint may be a voting member.
      if (etcdError === 'not-supported-for-learner' && !opts.endpoint) {
        last = new AgentError('ETCD_MEMBERSHIP', `etcd ${ep}: ${message}`, { details: { endpoint: ep, path } });
        continue;
      }
      throw new AgentError('ETCD_MEMBERSHIP', `etcd ${ep}${path}: ${message}`, {
        details: { endpoint: ep, path, status: res.status, ...(grpcCode === undefined ? {} : { grpcCode }), etcdError, etcdMessage: message },
      });
    }
    throw new AgentError('ETCD_MEMBERSHIP', `no etcd endpoint answered ${path} (${targets.join(', ')}): ${errorMessage(last)}`, {
      cause: last,
      details: { endpoints: targets, path, unreachable: true },
    });
  }

  /**
   * The member list. Linearizable by default (through the leader); `linearizable: false` is served
   * by the member asked from its own view, which still answers when the cluster has lost quorum
   * (etcd 3.4 always answers that way).
   */
  async memberList(opts: { readonly linearizable?: boolean } = {}): Promise<{ readonly clusterId: string; readonly members: readonly EtcdMember[] }> {
    const r = await this.call<{ header?: { cluster_id?: string }; members?: RawMember[] }>('/v3/cluster/member/list', { linearizable: opts.linearizable ?? true });
    return { clusterId: r.header?.cluster_id ?? '', members: (r.members ?? []).map(toMember) };
  }

  async memberAdd(peerURLs: readonly string[], isLearner: boolean): Promise<{ readonly member: EtcdMember; readonly members: readonly EtcdMember[] }> {
    const r = await this.call<{ member?: RawMember; members?: RawMember[] }>('/v3/cluster/member/add', { peerURLs, isLearner });
    if (!r.member) throw new AgentError('ETCD_MEMBERSHIP', 'etcd answered member add without the new member');
    return { member: toMember(r.member), members: (r.members ?? []).map(toMember) };
  }

  async memberPromote(id: string): Promise<void> {
    await this.call('/v3/cluster/member/promote', { ID: id });
  }

  async memberRemove(id: string): Promise<void> {
    await this.call('/v3/cluster/member/remove', { ID: id });
  }

  /** Status of one endpoint (a member answers for itself). */
  async status(endpoint: string, timeoutMs = 3000): Promise<EtcdStatus> {
    const r = await this.call<{
      header?: { member_id?: string; cluster_id?: string };
      version?: string;
      dbSize?: string;
      leader?: string;
      raftIndex?: string;
      raftAppliedIndex?: string;
      isLearner?: boolean;
    }>('/v3/maintenance/status', {}, { endpoint, timeoutMs });
    return {
      memberId: r.header?.member_id ?? '',
      clusterId: r.header?.cluster_id ?? '',
      version: r.version ?? '',
      dbSize: Number(r.dbSize ?? 0),
      leader: r.leader ?? '',
      raftIndex: Number(r.raftIndex ?? 0),
      raftAppliedIndex: Number(r.raftAppliedIndex ?? r.raftIndex ?? 0),
      isLearner: r.isLearner === true,
    };
  }

  async put(key: string, value: string): Promise<void> {
    await this.call('/v3/kv/put', { key: b64(key), value: b64(value) });
  }

  /** Writes many keys, up to 100 per transaction (etcd's default --max-txn-ops is 128). */
  async putMany(entries: readonly (readonly [string, string])[]): Promise<void> {
    for (let i = 0; i < entries.length; i += 100) {
      const success = entries.slice(i, i + 100).map(([k, v]) => ({ requestPut: { key: b64(k), value: b64(v) } }));
      await this.call('/v3/kv/txn', { success });
    }
  }

  async get(key: string): Promise<string | undefined> {
    const r = await this.call<{ kvs?: { value?: string }[] }>('/v3/kv/range', { key: b64(key) });
    const v = r.kvs?.[0]?.value;
    return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
  }

  /** Number of keys under a prefix (linearizable). */
  async count(prefix: string): Promise<number> {
    const r = await this.call<{ count?: string }>('/v3/kv/range', { key: b64(prefix), range_end: Buffer.from(prefixEnd(prefix), 'latin1').toString('base64'), count_only: true });
    return Number(r.count ?? 0);
  }

  /** A consistent snapshot of the backend database (with etcd's trailing SHA-256), from one endpoint. */
  async snapshot(endpoint?: string): Promise<Buffer> {
    const targets = endpoint ? [endpoint] : this.endpoints;
    let last: unknown;
    let answered = false;
    for (const ep of targets) {
      let res: HttpResponse;
      try {
        res = await this.post(ep, '/v3/maintenance/snapshot', {}, 300_000);
      } catch (err: unknown) {
        last = err;
        continue;
      }
      answered = true;
      try {
        if (res.status !== 200) throw new AgentError('ETCD_MEMBERSHIP', `etcd ${ep} refused a snapshot: HTTP ${res.status} ${res.body.toString('utf8').slice(0, 200)}`);
        return parseSnapshotStream(res.body.toString('utf8'), ep);
      } catch (err: unknown) {
        last = err;
      }
    }
    // Only when no endpoint answered at all is it worth waiting out (isTransient); a refusal or a
    // broken stream is etcd's word.
    throw new AgentError('ETCD_MEMBERSHIP', `no etcd endpoint gave a snapshot: ${errorMessage(last)}`, {
      cause: last,
      details: { endpoints: targets, unreachable: !answered },
    });
  }
}

/** The gateway streams one JSON object per chunk: {"result":{"blob":"<base64>",...}} or {"error":...}. Pure. */
export function parseSnapshotStream(text: string, endpoint = ''): Buffer {
  const parts: Buffer[] = [];
  for (const line of text.split('\n')) {
    const l = line.trim();
    if (!l) continue;
    const obj = JSON.parse(l) as { result?: { blob?: string }; error?: { message?: string } | string };
    if (obj.error !== undefined) {
      const msg = typeof obj.error === 'string' ? obj.error : (obj.error.message ?? JSON.stringify(obj.error));
      throw new AgentError('ETCD_MEMBERSHIP', `etcd ${endpoint} snapshot failed: ${msg}`);
    }
    if (obj.result?.blob) parts.push(Buffer.from(obj.result.blob, 'base64'));
  }
  const out = Buffer.concat(parts);
  if (out.length === 0) throw new AgentError('ETCD_MEMBERSHIP', `etcd ${endpoint} sent an empty snapshot`);
  return out;
}
