// Pure renderers of what kubelet TLS bootstrap needs in the API server (kubeadm's `bootstrap-token`
// and `kubelet-finalize` phases, cmd/kubeadm/app/phases/bootstraptoken/node/{token,tlsbootstrap}.go):
// the bootstrap token Secret and the ClusterRoleBindings to the roles Kubernetes itself creates.
import { AgentError } from '../engine/errors.ts';
import { managedByLabel, managedByValue, type KubeObject } from './kube-object.ts';

/** The extra group every nodeup bootstrap token puts its user in (kubeadm's is ...:kubeadm:default-node-token). */
export const bootstrapGroup = 'system:bootstrappers:nodeup:default-node-token';
/** The label that marks nodeup's token Secrets, so a rotated token's old Secret is deleted. */
export const tokenLabel = 'nodeup.dev/bootstrap-token';
export const tokenSelector = `${managedByLabel}=${managedByValue},${tokenLabel}=true`;
/** CN of the API server's client certificate for the kubelet API (src/controlplane issues it). */
export const apiServerKubeletClientUser = 'kube-apiserver-kubelet-client';

const tokenRe = /^([a-z0-9]{6})\.([a-z0-9]{16})$/;
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/**
 * kube-system/bootstrap-token-<id> of type bootstrap.kubernetes.io/token. No expiration: the token
 * lives as long as secrets/bootstrap-token in the state store (rotate it there; see docs/addons.md).
 */
export function renderBootstrapTokenSecret(token: string, source = 'secrets/bootstrap-token'): KubeObject {
  const m = tokenRe.exec(token);
  if (!m) {
    throw new AgentError('KUBE_API', `${source} is not a bootstrap token ("<6 a-z0-9>.<16 a-z0-9>"): delete it from the state store and apply a control plane to create a new one`, {
      details: { key: source },
    });
  }
  const [, id = '', secret = ''] = m;
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: `bootstrap-token-${id}`, namespace: 'kube-system', labels: { [tokenLabel]: 'true' } },
    type: 'bootstrap.kubernetes.io/token',
    data: {
      description: b64(`kubelet TLS bootstrap token managed by nodeup (${source} in the state store)`),
      'token-id': b64(id),
      'token-secret': b64(secret),
      'usage-bootstrap-authentication': b64('true'),
      'usage-bootstrap-signing': b64('true'),
      'auth-extra-groups': b64(bootstrapGroup),
    },
  };
}

interface Subject {
  readonly kind: 'Group' | 'User' | 'ServiceAccount';
  readonly name: string;
  readonly namespace?: string;
}

export function clusterRoleBinding(name: string, role: string, subjects: readonly Subject[]): KubeObject {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
    subjects: subjects.map((s) => (s.kind === 'ServiceAccount' ? { kind: s.kind, name: s.name, namespace: s.namespace } : { apiGroup: 'rbac.authorization.k8s.io', kind: s.kind, name: s.name })),
  };
}

export interface BootstrapRbacInput {
  /** Bind system:node-proxier to system:nodes (workers' kube-proxy runs as the node). */
  readonly nodeProxierForNodes: boolean;
  /** Let nodes list Nodes (nodeup-routes.service routes pod subnets from them: bridge CNI, per-node subnets). */
  readonly nodeRoutes?: boolean;
}

/** Read-only access to Node objects, the one permission `nodeup routes` needs. */
export const nodeRoutesRole: KubeObject = {
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRole',
  metadata: { name: 'nodeup:node-routes' },
  rules: [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] }],
};

/** The bindings, in a stable order. Every role named here is created by the API server itself (RBAC bootstrap policy), but nodeup:node-routes, which comes just before its binding. */
export function renderBootstrapRbac(i: BootstrapRbacInput): KubeObject[] {
  const out = [
    // Bootstrap tokens may create CSRs (kubeadm:kubelet-bootstrap).
    clusterRoleBinding('nodeup:kubelet-bootstrap', 'system:node-bootstrapper', [{ kind: 'Group', name: bootstrapGroup }]),
    // The csrapprover controller approves their node client CSRs (kubeadm:node-autoapprove-bootstrap).
    clusterRoleBinding('nodeup:node-autoapprove-bootstrap', 'system:certificates.k8s.io:certificatesigningrequests:nodeclient', [{ kind: 'Group', name: bootstrapGroup }]),
    // ...and nodes' renewals of their own client certificate (kubeadm:node-autoapprove-certificate-rotation).
    clusterRoleBinding('nodeup:node-autoapprove-certificate-rotation', 'system:certificates.k8s.io:certificatesigningrequests:selfnodeclient', [
      { kind: 'Group', name: 'system:nodes' },
    ]),
    // The API server's kubelet client may use the kubelet API: logs, exec, port-forward (kubeadm:apiserver-kubelet-client).
    clusterRoleBinding('nodeup:apiserver-kubelet-client', 'system:kubelet-api-admin', [{ kind: 'User', name: apiServerKubeletClientUser }]),
  ];
  if (i.nodeProxierForNodes) {
    out.push(clusterRoleBinding('nodeup:node-proxier', 'system:node-proxier', [{ kind: 'Group', name: 'system:nodes' }]));
  }
  if (i.nodeRoutes) {
    out.push(nodeRoutesRole, clusterRoleBinding('nodeup:node-routes', 'nodeup:node-routes', [{ kind: 'Group', name: 'system:nodes' }]));
  }
  return out;
}
