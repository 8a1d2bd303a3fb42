// A small Kubernetes API client over host.http with mutual TLS: the credentials come from a client
// kubeconfig on the node (the admin kubeconfig the control-plane component writes). Enough for
// readiness, GET, LIST by label, server-side apply and DELETE. An API server that does not answer
// (connection refused, 5xx, 429) is reported as `unreachable`, which callers turn into NotReadyError.
import { AgentError, NotReadyError, errorMessage } from '../engine/errors.ts';
import type { Host, HttpResponse } from '../engine/host/host.ts';
import { parseKubeconfig } from '../engine/pki/kubeconfig.ts';
import { describeObject, objectPath, type KubeObject } from './kube-object.ts';

export interface ApiTarget {
  /** e.g. https://127.0.0.1:6443: the local API server, not a load balancer that may not exist yet. */
  readonly server: string;
  /** A kubeconfig with embedded CA, client certificate and key. */
  readonly kubeconfigPath: string;
}

export interface Credentials {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** Why the API server cannot be asked yet; undefined when it answered. */
export type Unreachable = { readonly unreachable: string };

export const fieldManager = 'nodeup';

export function isUnreachable(x: unknown): x is Unreachable {
  return x !== null && typeof x === 'object' && typeof (x as { unreachable?: unknown }).unreachable === 'string' && !('kind' in x);
}

/** The client credentials of a kubeconfig on the node; undefined while the file does not exist. */
export async function readCredentials(host: Host, kubeconfigPath: string): Promise<Credentials | undefined> {
  const raw = await host.fs.read(kubeconfigPath);
  if (!raw) return undefined;
  const parts = parseKubeconfig(raw.toString('utf8'));
  if (!parts.caPem || !parts.certPem || !parts.keyPem) {
    throw new AgentError('KUBE_API', `${kubeconfigPath}: expected embedded certificate-authority-data, client-certificate-data and client-key-data`, {
      details: { file: kubeconfigPath },
    });
  }
  return { ca: parts.caPem, cert: parts.certPem, key: parts.keyPem };
}

/** The message of a Kubernetes Status body, or the start of the body. */
export function statusMessage(res: HttpResponse): string {
  const text = res.body.toString('utf8');
  try {
    const s = JSON.parse(text) as { message?: unknown };
    if (typeof s.message === 'string') return s.message;
  } catch {
    // not JSON
  }
  return text.slice(0, 200);
}

const retryable = (status: number): boolean => status >= 500 || status === 429;

export class KubeApi {
  readonly server: string;
  private readonly host: Host;
  private readonly creds: Credentials;
  private readonly timeoutMs: number;

  constructor(host: Host, server: string, creds: Credentials, timeoutMs = 15_000) {
    this.host = host;
    this.server = server.replace(/\/+$/, '');
    this.creds = creds;
    this.timeoutMs = timeoutMs;
  }

  /** An answer, or `unreachable` for a refused connection, a time-out, or a 5xx/429. */
  async request(method: string, path: string, opts: { body?: string; contentType?: string } = {}): Promise<HttpResponse | Unreachable> {
    let res: HttpResponse;
    try {
      res = await this.host.http({
        url: this.server + path,
        method,
        headers: { accept: 'application/json', ...(opts.contentType ? { 'content-type': opts.contentType } : {}) },
        ...(opts.body !== undefined ? { body: opts.body } : {}),
        timeoutMs: this.timeoutMs,
        tls: this.creds,
      });
    } catch (err: unknown) {
      const reason = err instanceof AgentError && typeof err.details.reason === 'string' ? err.details.reason : errorMessage(err);
      return { unreachable: `${this.server}: ${reason}` };
    }
    if (retryable(res.status)) return { unreachable: `${this.server}${path}: HTTP ${res.status}: ${statusMessage(res)}` };
    return res;
  }

  /** undefined when /readyz answers ok; otherwise why not. */
  async notReady(): Promise<string | undefined> {
    const res = await this.request('GET', '/readyz');
    if ('unreachable' in res) return res.unreachable;
    return res.status === 200 ? undefined : `${this.server}/readyz: HTTP ${res.status}`;
  }

  /** The object, null when absent, or why the server cannot be asked. Auth failures throw. */
  async get(obj: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>): Promise<KubeObject | null | Unreachable> {
    const res = await this.request('GET', objectPath(obj));
    if ('unreachable' in res) return res;
    if (res.status === 404) return null;
    if (res.status !== 200) throw this.failure(res, 'read', describeObject(obj));
    return JSON.parse(res.body.toString('utf8')) as KubeObject;
  }

  /** Names of the objects in a collection that match a label selector. */
  async listNames(collection: string, labelSelector: string): Promise<string[] | Unreachable> {
    const res = await this.request('GET', `${collection}?labelSelector=${encodeURIComponent(labelSelector)}`);
    if ('unreachable' in res) return res;
    if (res.status === 404) return [];
    if (res.status !== 200) throw this.failure(res, 'list', collection);
    const list = JSON.parse(res.body.toString('utf8')) as { items?: { metadata?: { name?: string } }[] };
    return (list.items ?? []).map((i) => i.metadata?.name ?? '').filter((n) => n !== '').sort();
  }

  /**
   * Server-side apply (fieldManager nodeup, force: nodeup owns the fields it sets). A 404 (the
   * namespace does not exist yet) and an unreachable server are NotReadyError.
   */
  async apply(obj: KubeObject): Promise<KubeObject> {
    const path = `${objectPath(obj)}?fieldManager=${fieldManager}&force=true`;
    const res = await this.request('PATCH', path, { body: JSON.stringify(obj), contentType: 'application/apply-patch+yaml' });
    if ('unreachable' in res) throw new NotReadyError('the api server does not answer yet', { object: describeObject(obj), reason: res.unreachable });
    if (res.status === 404) throw new NotReadyError('the api server cannot take the object yet', { object: describeObject(obj), reason: statusMessage(res) });
    if (res.status !== 200 && res.status !== 201) throw this.failure(res, 'apply', describeObject(obj));
    return JSON.parse(res.body.toString('utf8')) as KubeObject;
  }

  /** Deletes an object; absent is fine. */
  async remove(obj: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>): Promise<void> {
    const res = await this.request('DELETE', objectPath(obj));
    if ('unreachable' in res) throw new NotReadyError('the api server does not answer yet', { object: describeObject(obj), reason: res.unreachable });
    if (res.status !== 200 && res.status !== 202 && res.status !== 404) throw this.failure(res, 'delete', describeObject(obj));
  }

  private failure(res: HttpResponse, verb: string, what: string): AgentError {
    const hint =
      res.status === 401 || res.status === 403
        ? ': the admin kubeconfig is not accepted (is it signed by the cluster CA the API server trusts?)'
        : '';
    return new AgentError('KUBE_API', `cannot ${verb} ${what}: HTTP ${res.status}: ${statusMessage(res)}${hint}`, {
      details: { object: what, status: res.status, server: this.server },
    });
  }
}
