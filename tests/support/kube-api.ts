// Test helper: an in-memory API server behind createTestHost's `http` handler, with the behaviour
// the manifest task relies on: /readyz, GET/LIST/DELETE, server-side apply that adds server fields
// (uid, resourceVersion, managedFields, defaults), 404 for a missing namespace, and 422 for a changed
// roleRef. It records every request. The integration test checks the same against a real API server.
import { AgentError } from '../../src/engine/errors.ts';
import type { HttpRequest, HttpResponse } from '../../src/engine/host/host.ts';
import type { KubeObject } from '../../src/addons/kube-object.ts';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly contentType?: string;
  readonly body?: string;
}

const json = (status: number, body: unknown): HttpResponse => ({
  status,
  headers: { 'content-type': 'application/json' },
  body: Buffer.from(JSON.stringify(body)),
});
const status = (code: number, message: string): HttpResponse => json(code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, code });

export class FakeApiServer {
  readonly objects = new Map<string, KubeObject>();
  readonly requests: RecordedRequest[] = [];
  readonly namespaces = new Set(['default', 'kube-system', 'kube-public']);
  state: 'up' | 'down' | 'not-ready' | 'forbidden' = 'up';
  private rv = 1;

  readonly handler = (req: HttpRequest): HttpResponse => {
    const url = new URL(req.url);
    const method = req.method ?? 'GET';
    const contentType = req.headers?.['content-type'];
    this.requests.push({
      method,
      path: url.pathname,
      query: url.search,
      ...(contentType ? { contentType } : {}),
      ...(req.body !== undefined ? { body: req.body.toString() } : {}),
    });
    if (this.state === 'down') throw new AgentError('DOWNLOAD_FAILED', `request to ${req.url} failed`, { details: { url: req.url, reason: 'ECONNREFUSED' } });
    if (url.pathname === '/readyz') return this.state === 'not-ready' ? { status: 500, headers: {}, body: Buffer.from('[-]poststarthook/rbac/bootstrap-roles failed') } : { status: 200, headers: {}, body: Buffer.from('ok') };
    if (this.state === 'not-ready') return status(503, 'the server is currently unable to handle the request');
    if (this.state === 'forbidden') return status(403, 'forbidden: User "system:anonymous" cannot get resource');
    switch (method) {
      case 'GET':
        return this.get(url);
      case 'PATCH':
        return this.apply(url, contentType, req.body?.toString() ?? '');
      case 'DELETE':
        return this.objects.delete(url.pathname) ? json(200, { kind: 'Status', status: 'Success' }) : status(404, 'not found');
      default:
        return status(405, 'method not allowed');
    }
  };

  /** Every request as "METHOD path?query", for assertions. */
  log(): string[] {
    return this.requests.map((r) => `${r.method} ${r.path}${r.query}`);
  }

  private get(url: URL): HttpResponse {
    const obj = this.objects.get(url.pathname);
    if (obj) return json(200, obj);
    const selector = url.searchParams.get('labelSelector');
    if (selector === null) return status(404, `${url.pathname} not found`);
    const want = selector.split(',').map((kv) => kv.split('=') as [string, string]);
    const items = [...this.objects]
      .filter(([p]) => p.startsWith(url.pathname + '/') && !p.slice(url.pathname.length + 1).includes('/'))
      .map(([, o]) => o)
      .filter((o) => want.every(([k, v]) => o.metadata.labels?.[k] === v));
    return json(200, { kind: 'List', items });
  }

  private apply(url: URL, contentType: string | undefined, body: string): HttpResponse {
    if (contentType !== 'application/apply-patch+yaml') return status(415, `unsupported content type ${contentType ?? ''}`);
    if (url.searchParams.get('fieldManager') !== 'nodeup' || url.searchParams.get('force') !== 'true') return status(400, 'expected fieldManager=nodeup&force=true');
    const obj = JSON.parse(body) as KubeObject;
    const ns = /\/namespaces\/([^/]+)\//.exec(url.pathname)?.[1];
    if (ns !== undefined && !this.namespaces.has(ns)) return status(404, `namespaces "${ns}" not found`);
    const existing = this.objects.get(url.pathname);
    if (existing && obj.kind.endsWith('Binding') && JSON.stringify(existing.roleRef) !== JSON.stringify(obj.roleRef)) {
      return status(422, `${obj.kind}.rbac.authorization.k8s.io "${obj.metadata.name}" is invalid: roleRef: Invalid value: cannot change roleRef`);
    }
    const stored: KubeObject = {
      ...obj,
      metadata: {
        ...obj.metadata,
        uid: (existing?.metadata as { uid?: string } | undefined)?.uid ?? `uid-${this.rv}`,
        resourceVersion: String(++this.rv),
        managedFields: [{ manager: 'nodeup', operation: 'Apply' }],
      } as KubeObject['metadata'],
      ...(obj.kind === 'Deployment' ? { spec: { revisionHistoryLimit: 10, progressDeadlineSeconds: 600, ...(obj.spec as object) }, status: { replicas: 0 } } : {}),
      ...(obj.kind === 'Service' ? { spec: { type: 'ClusterIP', sessionAffinity: 'None', ...(obj.spec as object) } } : {}),
    };
    this.objects.set(url.pathname, stored);
    return json(existing ? 200 : 201, stored);
  }
}
