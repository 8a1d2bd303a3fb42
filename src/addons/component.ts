// Layer: component. Imports src/engine and src/model only, never another component's folder.
// addons: the cluster objects that let workers join, held in the API server by server-side apply
// (kubeadm's `bootstrap-token` and `kubelet-finalize` phases), plus optional CoreDNS.
// Owns, in the API server (label app.kubernetes.io/managed-by=nodeup, annotation nodeup.dev/hash):
//  - Secret kube-system/bootstrap-token-<id> from secrets/bootstrap-token in the state store (a
//    rotated token's old Secret is deleted);
//  - ClusterRoleBindings nodeup:kubelet-bootstrap, nodeup:node-autoapprove-bootstrap,
//    nodeup:node-autoapprove-certificate-rotation, nodeup:apiserver-kubelet-client and (default)
//    nodeup:node-proxier;
//  - with spec.addons.coredns.enabled: ServiceAccount, ClusterRole(Binding) system:coredns,
//    ConfigMap and Deployment coredns, Service kube-dns.
// Nothing on disk. Credentials: the admin kubeconfig the control-plane component writes; the local
// API server (https://127.0.0.1:<port>), never the load balancer.
// Runs after: the kube-apiserver static pod manifest, the admin kubeconfig, kubelet's unit, this
// node's etcd members, the bootstrap token in the store (each when in the run); every other object
// after the first binding, so only one task waits for the API server. Only on live control planes:
// not in a bake, not on an offline root.
import type { Component } from '../model/component.ts';
import { localApiServer, type NodeModel } from '../model/node-model.ts';
import type { TaskContext, TaskKey } from '../engine/task.ts';
import { adminKubeconfig, manifestDir } from '../model/paths/controlplane.ts';
import { etcdMemberKey } from '../model/paths/etcd.ts';
import { kubeletUnitKey } from '../model/paths/kubelet.ts';
import { bootstrapTokenKey } from '../engine/pki/cluster-pki.ts';
import { bootstrapTokenTaskKey } from '../engine/pki/tasks.ts';
import { nodeRoutesOn } from '../model/config.ts';
import type { ApiTarget } from './kube-api.ts';
import type { KubeObject } from './kube-object.ts';
import { ManifestTask, manifestKey, type Desired } from './manifest-task.ts';
import { renderBootstrapRbac, renderBootstrapTokenSecret, tokenSelector } from './render-bootstrap.ts';
import { renderCoredns, type CorednsInput } from './render-coredns.ts';
import { clusterDnsIps } from '../model/service-addresses.ts';

export const apiServerManifestKey: TaskKey = `file:${manifestDir}/kube-apiserver.yaml`;
export const adminKubeconfigKey: TaskKey = 'cert:kubeconfig-admin';
export const bootstrapTokenSecretId = 'kube-system/secret/bootstrap-token';

/** `kube-system/deployment/coredns`, `clusterrolebinding/nodeup:kubelet-bootstrap`. */
export function objectId(o: KubeObject): string {
  return `${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.kind.toLowerCase()}/${o.metadata.name}`;
}

/** Where the addons talk to: the API server on this node, with the admin kubeconfig. Pure. */
export function apiTarget(model: NodeModel): ApiTarget {
  return { server: localApiServer(model), kubeconfigPath: adminKubeconfig };
}

/** CoreDNS's inputs for this cluster. Pure. */
export function corednsInput(model: NodeModel): CorednsInput {
  const c = model.spec.addons.coredns;
  return {
    imageRegistry: c.imageRegistry ?? model.spec.controlPlane.imageRegistry,
    version: c.version ?? model.versions.coredns,
    replicas: c.replicas,
    clusterDomain: model.spec.kubelet.clusterDomain,
    clusterIP: clusterDnsIps(model.spec)[0],
  };
}

/** The token Secret, rendered from the run's state store when observed (the builder does no I/O). */
export async function loadTokenSecret(ctx: TaskContext): Promise<Desired> {
  const raw = await ctx.store.read(bootstrapTokenKey);
  if (!raw) return { pending: `${bootstrapTokenKey} exists in the state store` };
  return renderBootstrapTokenSecret(raw.toString('utf8').trim(), bootstrapTokenKey);
}

export const addonsComponent: Component = {
  name: 'addons',
  enabled: (m) => m.spec.role === 'control-plane' && !m.bake && m.live,
  build(model, graph) {
    const api = apiTarget(model);
    const present = (keys: readonly TaskKey[]): TaskKey[] => keys.filter((k) => graph.has(k));
    // The local API server needs the local etcd member: a joining control plane's wait (and its
    // NotReady deadline) starts once that member has joined, not while it is still joining.
    const base = present([apiServerManifestKey, adminKubeconfigKey, kubeletUnitKey, ...model.spec.etcd.clusters.map((c) => etcdMemberKey(c.name))]);
    // The first binding is the gate: only it waits for the API server (NotReady retries hold an
    // executor slot), the others start once it has been applied.
    const [gate, ...bindings] = renderBootstrapRbac({
      nodeProxierForNodes: model.spec.addons.nodeProxierForNodes,
      nodeRoutes: nodeRoutesOn(model.spec.networking),
    });
    if (!gate) return;
    const gateKey = manifestKey(objectId(gate));
    graph.add(new ManifestTask({ id: objectId(gate), api, object: gate, after: base }));
    for (const o of bindings) graph.add(new ManifestTask({ id: objectId(o), api, object: o, after: [gateKey] }));
    graph.add(
      new ManifestTask({
        id: bootstrapTokenSecretId,
        api,
        object: loadTokenSecret,
        prune: { labelSelector: tokenSelector },
        after: [gateKey, ...present([bootstrapTokenTaskKey])],
      }),
    );

    if (!model.spec.addons.coredns.enabled) return;
    let previous: TaskKey[] = [gateKey];
    for (const o of renderCoredns(corednsInput(model))) {
      const id = objectId(o);
      graph.add(new ManifestTask({ id, api, object: o, after: previous }));
      previous = [manifestKey(id)];
    }
  },
};
