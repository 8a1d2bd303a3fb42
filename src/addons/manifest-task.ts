// `manifest:<id>`: one Kubernetes object held in the API server by server-side apply.
//  - observe: GET the object (and, with `prune`, LIST the same kind by label) with the client
//    credentials of a kubeconfig on the node. An API server that does not answer yet is an
//    observation ("unreachable"), so `plan` on a fresh control plane prints what will be applied.
//  - diff: the object is absent, lacks the managed-by label, carries another hash annotation than
//    the rendered object, or a field nodeup sets was edited (drift). Values never appear in the
//    plan, only field paths and hashes (Secrets hold keys).
//  - apply: wait for /readyz (NotReadyError until it answers ok: the executor retries with backoff
//    until its deadline), PATCH with application/apply-patch+yaml, fieldManager=nodeup, force=true;
//    then delete pruned objects (an old bootstrap token's Secret).
import { AgentError, NotReadyError } from '../engine/errors.ts';
import type { Host } from '../engine/host/host.ts';
import type { ApplyContext, Change, Task, TaskContext, TaskKey } from '../engine/task.ts';
import { KubeApi, isUnreachable, readCredentials, type ApiTarget } from './kube-api.ts';
import {
  collectionPath,
  describeObject,
  driftedFields,
  hashAnnotation,
  managedByLabel,
  managedByValue,
  objectHash,
  stampObject,
  type KubeObject,
} from './kube-object.ts';

/** The desired object, or why it cannot be rendered yet (its source, e.g. a state-store value, is missing). */
export type Desired = KubeObject | { readonly pending: string };

export interface ManifestSpec {
  /** Stable id: the task key is `manifest:<id>`. */
  readonly id: string;
  readonly api: ApiTarget;
  /** The object (pure, from the builder), or a loader called when observing and applying. */
  readonly object: KubeObject | ((ctx: TaskContext) => Promise<Desired>);
  /** Delete the objects of the same kind and namespace that match this selector and have another name. */
  readonly prune?: { readonly labelSelector: string };
  readonly after?: readonly TaskKey[];
}

export interface ManifestActual {
  /** Set when the API server could not be asked (or nodeup has no credentials yet). */
  readonly unreachable?: string;
  /** Set when the desired object cannot be rendered yet. */
  readonly pending?: string;
  /** The stamped desired object. */
  readonly want?: KubeObject;
  /** The object in the API server; null when absent. */
  readonly live?: KubeObject | null;
  /** Names of same-kind objects to delete. */
  readonly stale: readonly string[];
}

const isPending = (d: Desired): d is { readonly pending: string } => 'pending' in d;

export function manifestKey(id: string): TaskKey {
  return `manifest:${id}`;
}

export class ManifestTask implements Task<ManifestActual> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[];
  readonly spec: ManifestSpec;

  constructor(spec: ManifestSpec) {
    this.spec = spec;
    this.key = manifestKey(spec.id);
    this.after = spec.after ?? [];
  }

  private async desired(ctx: TaskContext): Promise<Desired> {
    const o = this.spec.object;
    const d = typeof o === 'function' ? await o(ctx) : o;
    return isPending(d) ? d : stampObject(d);
  }

  private async client(host: Host): Promise<KubeApi | undefined> {
    const creds = await readCredentials(host, this.spec.api.kubeconfigPath);
    return creds ? new KubeApi(host, this.spec.api.server, creds) : undefined;
  }

  async observe(host: Host, ctx: TaskContext): Promise<ManifestActual> {
    const d = await this.desired(ctx);
    const want = isPending(d) ? undefined : d;
    const base = { ...(want ? { want } : {}), ...(isPending(d) ? { pending: d.pending } : {}) };
    const api = await this.client(host);
    if (!api) return { ...base, unreachable: `${this.spec.api.kubeconfigPath} is not written yet`, stale: [] };
    if (!want) return { ...base, stale: [] };
    const live = await api.get(want);
    if (isUnreachable(live)) return { ...base, unreachable: live.unreachable, stale: [] };
    let stale: string[] = [];
    if (this.spec.prune) {
      const names = await api.listNames(collectionPath(want.apiVersion, want.kind, want.metadata.namespace), this.spec.prune.labelSelector);
      if (!Array.isArray(names)) return { ...base, unreachable: names.unreachable, stale: [] };
      stale = names.filter((n) => n !== want.metadata.name);
    }
    return { ...base, live, stale };
  }

  diff(a: ManifestActual | undefined): readonly Change[] {
    if (!a) return [{ field: 'apply', to: this.key }];
    if (a.pending !== undefined) return [{ field: 'apply', to: `${this.spec.id} once ${a.pending}` }];
    const want = a.want;
    if (!want) return [{ field: 'apply', to: this.key }];
    const what = describeObject(want);
    const hash = objectHash(want) ?? '';
    if (a.unreachable !== undefined) return [{ field: 'apply', to: `${what} ${hash} (api server not answering yet)` }];
    const out: Change[] = [];
    const live = a.live;
    if (!live) {
      out.push({ field: 'create', to: `${what} ${hash}` });
    } else {
      if (live.metadata.labels?.[managedByLabel] !== managedByValue) out.push({ field: 'adopt', from: 'not managed by nodeup', to: `${managedByLabel}=${managedByValue}` });
      const have = objectHash(live);
      if (have !== hash) out.push({ field: 'hash', ...(have !== undefined ? { from: have } : {}), to: hash });
      else {
        // Same rendering: look for edits of the fields nodeup sets (the hash annotation aside).
        const annotations = Object.fromEntries(Object.entries(want.metadata.annotations ?? {}).filter(([k]) => k !== hashAnnotation));
        const compared = { ...want, metadata: { labels: want.metadata.labels ?? {}, annotations } };
        const drift = driftedFields(compared, live);
        if (drift.length > 0) out.push({ field: 'drift', from: drift.slice(0, 5).join(', ') + (drift.length > 5 ? ', ...' : ''), to: hash });
      }
    }
    for (const name of a.stale) out.push({ field: 'delete', from: `${want.kind}/${name}`, to: 'absent' });
    return out;
  }

  async apply(host: Host, changes: readonly Change[], ctx: ApplyContext): Promise<void> {
    const api = await this.client(host);
    if (!api) throw new NotReadyError('the admin kubeconfig is not written yet', { file: this.spec.api.kubeconfigPath });
    const reason = await api.notReady();
    if (reason !== undefined) throw new NotReadyError('the api server is not ready yet', { reason });
    const d = await this.desired(ctx);
    if (isPending(d)) throw new AgentError('KUBE_API', `cannot render ${this.spec.id}: ${d.pending}`, { details: { task: this.key } });
    if (changes.some((c) => c.field !== 'delete')) {
      try {
        await api.apply(d);
      } catch (err: unknown) {
        // roleRef of a binding is immutable: a binding of the same name to another role is replaced.
        if (!(err instanceof AgentError && err.details.status === 422 && /Binding$/.test(d.kind))) throw err;
        ctx.log.warn({ object: describeObject(d) }, 'replacing a binding whose roleRef cannot change');
        await api.remove(d);
        await api.apply(d);
      }
      ctx.log.info({ object: describeObject(d), hash: objectHash(d) }, 'object applied');
    }
    for (const c of changes) {
      if (c.field !== 'delete') continue;
      const name = (c.from ?? '').slice(d.kind.length + 1);
      await api.remove({ apiVersion: d.apiVersion, kind: d.kind, metadata: { name, ...(d.metadata.namespace ? { namespace: d.metadata.namespace } : {}) } });
      ctx.log.info({ object: `${d.kind}/${name}` }, 'stale object deleted');
    }
  }
}
