// Kubernetes objects as plain data: REST paths, the hash nodeup stamps on what it manages, and the
// comparison of the fields nodeup sets against what the API server holds. All pure.
import { createHash } from 'node:crypto';
import * as yaml from 'js-yaml';
import { AgentError } from '../engine/errors.ts';

export interface ObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: ObjectMeta;
  readonly [field: string]: unknown;
}

export const managedByLabel = 'app.kubernetes.io/managed-by';
export const managedByValue = 'nodeup';
export const hashAnnotation = 'nodeup.dev/hash';

interface Resource {
  readonly plural: string;
  readonly namespaced: boolean;
}

/** The kinds nodeup writes. A kind missing here is a programming error, caught by the unit tests. */
const resources: Readonly<Record<string, Resource>> = {
  'v1/Secret': { plural: 'secrets', namespaced: true },
  'v1/ConfigMap': { plural: 'configmaps', namespaced: true },
  'v1/Service': { plural: 'services', namespaced: true },
  'v1/ServiceAccount': { plural: 'serviceaccounts', namespaced: true },
  'rbac.authorization.k8s.io/v1/ClusterRole': { plural: 'clusterroles', namespaced: false },
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': { plural: 'clusterrolebindings', namespaced: false },
  'rbac.authorization.k8s.io/v1/Role': { plural: 'roles', namespaced: true },
  'rbac.authorization.k8s.io/v1/RoleBinding': { plural: 'rolebindings', namespaced: true },
  'apps/v1/Deployment': { plural: 'deployments', namespaced: true },
  'policy/v1/PodDisruptionBudget': { plural: 'poddisruptionbudgets', namespaced: true },
};

function resourceOf(apiVersion: string, kind: string): Resource {
  const r = resources[`${apiVersion}/${kind}`];
  if (!r) throw new AgentError('KUBE_API', `nodeup does not know the REST path of ${apiVersion} ${kind}`, { details: { apiVersion, kind } });
  return r;
}

/** The collection path of a kind (in a namespace when the kind is namespaced). */
export function collectionPath(apiVersion: string, kind: string, namespace?: string): string {
  const r = resourceOf(apiVersion, kind);
  const base = apiVersion === 'v1' ? '/api/v1' : `/apis/${apiVersion}`;
  if (!r.namespaced) return `${base}/${r.plural}`;
  if (!namespace) throw new AgentError('KUBE_API', `${kind} is namespaced: metadata.namespace is required`, { details: { kind } });
  return `${base}/namespaces/${encodeURIComponent(namespace)}/${r.plural}`;
}

/** The REST path of one object. */
export function objectPath(obj: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>): string {
  return `${collectionPath(obj.apiVersion, obj.kind, obj.metadata.namespace)}/${encodeURIComponent(obj.metadata.name)}`;
}

/** "ClusterRoleBinding/nodeup:kubelet-bootstrap" or "kube-system/Secret/bootstrap-token-abcdef". */
export function describeObject(obj: Pick<KubeObject, 'kind' | 'metadata'>): string {
  return `${obj.metadata.namespace ? `${obj.metadata.namespace}/` : ''}${obj.kind}/${obj.metadata.name}`;
}

/** JSON with sorted keys: the same object always hashes the same. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** The object nodeup sends: its label and the hash of everything else (before the hash was added). */
export function stampObject(obj: KubeObject): KubeObject {
  const labels = { ...(obj.metadata.labels ?? {}), [managedByLabel]: managedByValue };
  const unhashed: KubeObject = { ...obj, metadata: { ...obj.metadata, labels } };
  const hash = 'sha256:' + createHash('sha256').update(canonicalJson(unhashed)).digest('hex').slice(0, 16);
  return { ...unhashed, metadata: { ...unhashed.metadata, annotations: { ...(obj.metadata.annotations ?? {}), [hashAnnotation]: hash } } };
}

export function objectHash(obj: KubeObject): string | undefined {
  return obj.metadata.annotations?.[hashAnnotation];
}

/**
 * The paths of the fields nodeup sets whose value on the server differs (drift: someone edited the
 * object). Fields the server adds (defaults, status, managedFields) are ignored: only what `want`
 * names is compared. Lists must have the same length and match item by item. Values are never
 * returned, only paths (Secrets hold keys).
 */
export function driftedFields(want: unknown, have: unknown, at = ''): string[] {
  if (Array.isArray(want)) {
    if (!Array.isArray(have) || have.length !== want.length) return [at || '(root)'];
    return want.flatMap((w, i) => driftedFields(w, have[i], `${at}[${i}]`));
  }
  if (want !== null && typeof want === 'object') {
    if (have === null || typeof have !== 'object' || Array.isArray(have)) return [at || '(root)'];
    const h = have as Record<string, unknown>;
    return Object.entries(want as Record<string, unknown>).flatMap(([k, w]) => (w === undefined ? [] : driftedFields(w, h[k], at ? `${at}.${k}` : k)));
  }
  return want === have ? [] : [at || '(root)'];
}

/** Objects as a multi-document YAML stream (golden files, `kubectl apply -f` compatible). */
export function objectsYaml(objects: readonly KubeObject[]): string {
  return objects.map((o) => yaml.dump(o, { lineWidth: -1, noRefs: true })).join('---\n');
}
