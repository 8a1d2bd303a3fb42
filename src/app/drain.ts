// Cordon, drain and uncordon this node through the API server (issue 19, item 2), with the node's
// own kubelet credentials: the Node authorizer lets a node patch its own Node object and list its
// pods, and the NodeRestriction admission plugin lets it evict only pods bound to itself, so no
// cluster-admin credential ever sits on a worker.
//
// Drain as kOps' rolling update does it (kubectl's drain helper with Force, IgnoreAllDaemonSets
// and DeleteEmptyDirData): every pod but mirror pods (static pods; the kubelet runs them whatever
// the API says) and DaemonSet pods (their controller ignores unschedulable) is evicted through
// the Eviction API, so PodDisruptionBudgets are respected: an eviction a budget refuses (HTTP 429)
// is retried until the drain's deadline. Pods without a controller are evicted too (they would
// not come back; the log names them).
//
// The cordon carries the annotation `nodeup.dev/cordoned`, so a run that dies between cordon and
// uncordon is finished by the next run that converges: nodeup uncordons only a node it cordoned,
// never one an operator cordoned.
import { AgentError } from '../engine/errors.ts';
import type { Host } from '../engine/host/host.ts';
import type { Logger } from '../engine/log.ts';
import { parseKubeconfig } from '../engine/pki/kubeconfig.ts';
import { KubeApi, statusMessage, type Credentials } from '../addons/kube-api.ts';

export const cordonAnnotation = 'nodeup.dev/cordoned';

interface Meta {
  readonly name: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly ownerReferences?: readonly { readonly kind: string; readonly name: string; readonly controller?: boolean }[];
  readonly deletionTimestamp?: string;
}

export interface NodeObject {
  readonly metadata: Meta;
  readonly spec?: { readonly unschedulable?: boolean };
  readonly status?: { readonly conditions?: readonly { readonly type: string; readonly status: string; readonly reason?: string }[] };
}

export interface PodObject {
  readonly metadata: Meta;
  readonly status?: { readonly phase?: string };
}

/**
 * Credentials of a kubeconfig, embedded (`*-data`) or in files (the kubelet's own kubeconfig points
 * at /var/lib/kubelet/pki/kubelet-client-current.pem, which holds certificate and key together).
 * undefined when the kubeconfig does not exist: the kubelet has not joined yet.
 */
export async function kubeconfigClient(host: Host, kubeconfigPath: string, timeoutMs = 5000): Promise<KubeApi | undefined> {
  const raw = await host.fs.read(kubeconfigPath);
  if (!raw) return undefined;
  const parts = parseKubeconfig(raw.toString('utf8'));
  const file = async (p: string | undefined, what: string): Promise<string | undefined> => {
    if (p === undefined) return undefined;
    const b = await host.fs.read(p);
    if (!b) throw new AgentError('KUBE_API', `${kubeconfigPath}: its ${what} ${p} does not exist`, { details: { file: kubeconfigPath, missing: p } });
    return b.toString('utf8');
  };
  const ca = parts.caPem ?? (await file(parts.caFile, 'certificate authority'));
  const certText = parts.certPem ?? (await file(parts.certFile, 'client certificate'));
  const keyText = parts.keyPem ?? (parts.keyFile === parts.certFile ? certText : await file(parts.keyFile, 'client key'));
  const cert = pemBlocks(certText, (label) => label === 'CERTIFICATE');
  const key = pemBlocks(keyText, (label) => label.endsWith('PRIVATE KEY'));
  if (!parts.server || !ca || !cert || !key) {
    throw new AgentError('KUBE_API', `${kubeconfigPath}: expected a server, a certificate authority and a client certificate and key`, { details: { file: kubeconfigPath } });
  }
  const creds: Credentials = { ca, cert, key };
  return new KubeApi(host, parts.server, creds, timeoutMs);
}

/** The PEM blocks of `text` whose label passes `want`, joined; undefined for none. */
export function pemBlocks(text: string | undefined, want: (label: string) => boolean): string | undefined {
  if (text === undefined) return undefined;
  const blocks = [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g)].filter((m) => want(m[1] as string)).map((m) => m[0]);
  return blocks.length > 0 ? blocks.join('\n') + '\n' : undefined;
}

/** Why a pod stays on a drained node (undefined: it is evicted). */
export function keepReason(pod: PodObject): string | undefined {
  if (pod.metadata.annotations?.['kubernetes.io/config.mirror'] !== undefined) return 'mirror pod (static pod)';
  if ((pod.metadata.ownerReferences ?? []).some((o) => o.controller && o.kind === 'DaemonSet')) return 'DaemonSet pod';
  return undefined;
}

/** A pod without a controller: evicting it deletes it for good. */
export const unmanaged = (pod: PodObject): boolean => !(pod.metadata.ownerReferences ?? []).some((o) => o.controller);

const podId = (p: PodObject): string => `${p.metadata.namespace ?? 'default'}/${p.metadata.name}`;

export interface DrainOptions {
  readonly log: Logger;
  /** Until when evictions are retried and evicted pods awaited (host.now() milliseconds). */
  readonly deadline: number;
  /** Between rounds of evictions refused by a budget, and between checks for gone pods. */
  readonly pollMs?: number;
}

export interface DrainResult {
  readonly evicted: readonly string[];
  readonly kept: readonly string[];
}

/** The Node API of one node, as that node sees it. */
export class NodeApi {
  readonly api: KubeApi;
  readonly name: string;
  private readonly host: Host;

  constructor(host: Host, api: KubeApi, nodeName: string) {
    this.host = host;
    this.api = api;
    this.name = nodeName;
  }

  private get nodePath(): string {
    return `/api/v1/nodes/${encodeURIComponent(this.name)}`;
  }

  /** The Node, null when it is not registered, or why the API server cannot be asked. */
  async node(): Promise<NodeObject | null | { unreachable: string }> {
    const res = await this.api.request('GET', this.nodePath);
    if ('unreachable' in res) return res;
    if (res.status === 404) return null;
    if (res.status !== 200) throw this.failure(`read Node ${this.name}`, res.status, statusMessage(res));
    return JSON.parse(res.body.toString('utf8')) as NodeObject;
  }

  /** Marks the node unschedulable and notes that nodeup did it. */
  async cordon(at: string): Promise<void> {
    await this.patch({ metadata: { annotations: { [cordonAnnotation]: at } }, spec: { unschedulable: true } }, 'cordon');
  }

  /** Schedulable again, and the note gone. */
  async uncordon(): Promise<void> {
    await this.patch({ metadata: { annotations: { [cordonAnnotation]: null } }, spec: { unschedulable: null } }, 'uncordon');
  }

  private async patch(body: unknown, verb: string): Promise<void> {
    const res = await this.api.request('PATCH', this.nodePath, { body: JSON.stringify(body), contentType: 'application/merge-patch+json' });
    if ('unreachable' in res) throw new AgentError('DRAIN', `cannot ${verb} Node ${this.name}: ${res.unreachable}`, { details: { node: this.name } });
    if (res.status !== 200) throw this.failure(`${verb} Node ${this.name}`, res.status, statusMessage(res));
  }

  /** The pods bound to this node. */
  async pods(): Promise<PodObject[]> {
    const res = await this.api.request('GET', `/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${this.name}`)}`);
    if ('unreachable' in res) throw new AgentError('DRAIN', `cannot list the pods of Node ${this.name}: ${res.unreachable}`, { details: { node: this.name } });
    if (res.status !== 200) throw this.failure(`list the pods of Node ${this.name}`, res.status, statusMessage(res));
    return (JSON.parse(res.body.toString('utf8')) as { items?: PodObject[] }).items ?? [];
  }

  /** Evicts every pod but mirror and DaemonSet pods and waits until they are gone; a deadline passed throws, naming the pods and why. */
  async drain(o: DrainOptions): Promise<DrainResult> {
    const pollMs = o.pollMs ?? 5000;
    const all = await this.pods();
    const kept = all.filter((p) => keepReason(p) !== undefined).map((p) => `${podId(p)} (${keepReason(p)})`);
    const targets = all.filter((p) => keepReason(p) === undefined);
    const bare = targets.filter(unmanaged).map(podId);
    if (bare.length > 0) o.log.warn({ node: this.name, pods: bare }, 'evicting pods that no controller manages: they will not come back');
    o.log.info({ node: this.name, evict: targets.map(podId), keep: kept }, 'draining');
    const waiting = new Map<string, PodObject>(targets.filter((p) => p.metadata.deletionTimestamp !== undefined).map((p) => [podId(p), p]));
    let pending = targets.filter((p) => p.metadata.deletionTimestamp === undefined);
    const refused = new Map<string, string>();
    for (;;) {
      const next: PodObject[] = [];
      for (const pod of pending) {
        const why = await this.evict(pod);
        if (why === undefined) {
          refused.delete(podId(pod));
          waiting.set(podId(pod), pod);
        } else {
          refused.set(podId(pod), why);
          next.push(pod);
        }
      }
      pending = next;
      for (const [id, pod] of waiting) if (await this.gone(pod)) waiting.delete(id);
      if (pending.length === 0 && waiting.size === 0) break;
      if (this.host.now() >= o.deadline) {
        const left = [...pending.map((p) => `${podId(p)}: ${refused.get(podId(p)) ?? 'not evicted'}`), ...[...waiting.keys()].map((id) => `${id}: evicted, still terminating`)];
        throw new AgentError('DRAIN', `cannot drain Node ${this.name} before the drain timeout: ${left.join('; ')} (a PodDisruptionBudget that allows no disruption keeps its pods; raise --drain-timeout, fix the budget, or apply with --no-drain)`, {
          details: { node: this.name, pods: left },
        });
      }
      if (pending.length > 0) o.log.info({ node: this.name, refused: Object.fromEntries(refused) }, 'evictions refused, retrying');
      await this.host.sleep(pollMs);
    }
    o.log.info({ node: this.name, evicted: targets.length }, 'drained');
    return { evicted: targets.map(podId), kept };
  }

  /** undefined when the eviction was taken (or the pod is gone); else why not, to retry. */
  private async evict(pod: PodObject): Promise<string | undefined> {
    const ns = pod.metadata.namespace ?? 'default';
    const body = { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: pod.metadata.name, namespace: ns } };
    const res = await this.api.request('POST', `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(pod.metadata.name)}/eviction`, {
      body: JSON.stringify(body),
      contentType: 'application/json',
    });
    // 429 (a budget refuses) and 5xx come back as `unreachable` with the server's message.
    if ('unreachable' in res) return res.unreachable;
    if (res.status === 200 || res.status === 201 || res.status === 404) return undefined;
    throw this.failure(`evict pod ${podId(pod)}`, res.status, statusMessage(res));
  }

  private async gone(pod: PodObject): Promise<boolean> {
    const ns = pod.metadata.namespace ?? 'default';
    const res = await this.api.request('GET', `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(pod.metadata.name)}`);
    if ('unreachable' in res) return false;
    if (res.status === 404) return true;
    // A StatefulSet pod comes back under the same name: a new uid is a new pod.
    const now = JSON.parse(res.body.toString('utf8')) as PodObject;
    return now.metadata.uid !== pod.metadata.uid;
  }

  /**
   * Waits until `local()` (a check on this host, such as the kubelet's own health endpoint) passes
   * and the Node is Ready, or throws at the deadline with the last thing seen.
   */
  async waitReady(deadline: number, local: () => Promise<string | undefined>, pollMs = 5000): Promise<void> {
    let last = 'not asked yet';
    for (;;) {
      const here = await local();
      if (here !== undefined) last = here;
      else {
        const n = await this.node();
        if (n === null) last = 'the Node is not registered';
        else if ('unreachable' in n) last = n.unreachable;
        else {
          const ready = n.status?.conditions?.find((c) => c.type === 'Ready');
          if (ready?.status === 'True') return;
          last = ready ? `Ready=${ready.status}${ready.reason ? ` (${ready.reason})` : ''}` : 'no Ready condition';
        }
      }
      if (this.host.now() >= deadline) {
        throw new AgentError('NOT_READY', `Node ${this.name} is not Ready after the change: ${last}; it stays cordoned (fix the config and apply again, or nodeup rollback)`, {
          details: { node: this.name, last },
        });
      }
      await this.host.sleep(pollMs);
    }
  }

  private failure(what: string, status: number, message: string): AgentError {
    const hint = status === 401 || status === 403 ? ' (the node\'s kubelet credentials are not accepted: is the NodeRestriction admission plugin on and the Node authorizer in --authorization-mode?)' : '';
    return new AgentError('DRAIN', `cannot ${what}: HTTP ${status}: ${message}${hint}`, { details: { node: this.name, status } });
  }
}
