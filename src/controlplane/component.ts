// Layer: component. Imports src/engine and src/model only, never another component's folder.
// control-plane: kube-apiserver, kube-controller-manager and kube-scheduler as static pods, with
// this node's leaf certificates and kubeconfigs.
// Owns: /etc/kubernetes/manifests/kube-{apiserver,controller-manager,scheduler}.yaml,
// /etc/kubernetes/{controller-manager,scheduler,admin}.conf, /etc/kubernetes/pki/{ca,front-proxy-ca,
// sa}.*, the apiserver's serving and client pairs, kubelet's and kube-proxy's client pairs on control
// planes, the audit policy; in the state store: the cluster PKI (pki:cluster, created once under a
// lock) and the workers' bootstrap token.
// Runs after: the PKI tasks it adds; kubelet (when in the run) picks the manifests up.
// Only on control-plane nodes, and not in an image bake (certificates are per node).
import type { Component } from '../model/component.ts';
import { AgentError } from '../engine/errors.ts';
import { nodeCIDRMaskSize } from '../model/config.ts';
import { localApiServer, type NodeModel } from '../model/node-model.ts';
import { ipInCidr, nthAddress, parseIp } from '../engine/net/cidr.ts';
import type { GraphBuilder } from '../engine/graph.ts';
import type { TaskKey } from '../engine/task.ts';
import { DirTask, FileTask } from '../engine/tasks/file.ts';
import { StaticPodTask } from './static-pod-task.ts';
import { BootstrapTokenTask, CertTask, ClusterPkiTask, StoreFileTask, clusterPkiKey } from '../engine/pki/tasks.ts';
import { storeLayout } from '../engine/state-store.ts';
import {
  adminKubeconfig,
  auditLogDir,
  auditPolicyPath,
  controllerManagerKubeconfig,
  manifestDir,
  paths,
  pkiDir,
  renderApiServerManifest,
  renderAuditPolicy,
  renderControllerManagerManifest,
  renderSchedulerManifest,
  schedulerKubeconfig,
  type ControlPlaneInput,
} from './render-manifests.ts';

/** The first address of the service CIDR: the `kubernetes` Service's ClusterIP. Pure. */
export function firstServiceIp(cidr: string): string {
  const ip = nthAddress(cidr, 1);
  if (ip === undefined) {
    throw new AgentError('CONFIG_INVALID', `spec.networking.serviceCIDR: ${cidr} is not a network with room for a Service address`, { details: { field: 'spec.networking.serviceCIDR' } });
  }
  return ip;
}

/** The API server's serving certificate names. Pure. */
export function apiServerSans(model: NodeModel): { readonly dnsNames: string[]; readonly ips: string[] } {
  const domain = model.spec.kubelet.clusterDomain;
  const endpointHost = new URL(model.spec.apiServerEndpoint).hostname.replace(/^\[|\]$/g, '');
  const names = new Set(['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', `kubernetes.default.svc.${domain}`, model.nodeName, 'localhost']);
  // The node IP first, then the host's other addresses (a second NIC may serve clients too), except
  // those inside the pod network: the CNI bridge's gateway appears with the first pod and would
  // otherwise reissue the certificate (and restart the API server) on the next run.
  const podCIDR = model.spec.networking.podCIDR;
  const hostIps = model.facts.ipv4.filter((ip) => !ipInCidr(ip, podCIDR));
  const ips = new Set([firstServiceIp(model.spec.networking.serviceCIDR), model.nodeIp, ...hostIps, '127.0.0.1']);
  for (const extra of [endpointHost, ...model.spec.controlPlane.apiServer.extraSANs]) (parseIp(extra) !== undefined ? ips : names).add(extra);
  return { dnsNames: [...names], ips: [...ips] };
}

/** The static pods' inputs for this node. Pure. */
export function controlPlaneInput(model: NodeModel): ControlPlaneInput {
  const cp = model.spec.controlPlane;
  const etcd = model.spec.etcd.clusters;
  const main = etcd.find((c) => c.name === 'main');
  const events = etcd.find((c) => c.name === 'events');
  return {
    imageRegistry: cp.imageRegistry,
    kubernetesVersion: model.versions.kubernetes,
    advertiseAddress: model.nodeIp,
    securePort: cp.apiServer.port,
    clusterName: model.boot.clusterName,
    serviceCIDR: model.spec.networking.serviceCIDR,
    podCIDR: model.spec.networking.podCIDR,
    allocateNodeCIDRs: model.spec.networking.cni === 'bridge',
    nodeCIDRMaskSize: nodeCIDRMaskSize(model.spec.networking),
    serviceAccountIssuer: cp.apiServer.serviceAccountIssuer ?? `https://kubernetes.default.svc.${model.spec.kubelet.clusterDomain}`,
    etcdServers: [`https://127.0.0.1:${main?.clientPort ?? 2379}`],
    ...(events ? { etcdEventsServer: `https://127.0.0.1:${events.clientPort}` } : {}),
    ...(cp.apiServer.audit.enabled ? { audit: { maxAgeDays: cp.apiServer.audit.maxAgeDays, maxBackups: cp.apiServer.audit.maxBackups, maxSizeMB: cp.apiServer.audit.maxSizeMB } } : {}),
    apiServerExtraArgs: cp.apiServer.extraArgs,
    controllerManagerExtraArgs: cp.controllerManager.extraArgs,
    schedulerExtraArgs: cp.scheduler.extraArgs,
    probes: cp.probes,
    leaderElection: cp.leaderElection,
  };
}

function addOnce(graph: GraphBuilder, task: { readonly key: TaskKey } & Parameters<GraphBuilder['add']>[0]): void {
  if (!graph.has(task.key)) graph.add(task);
}

export const controlPlaneComponent: Component = {
  name: 'control-plane',
  enabled: (m) => m.spec.role === 'control-plane' && !m.bake,
  build(model, graph) {
    const days = model.spec.controlPlane.certificateValidityDays;
    const localServer = localApiServer(model);
    const cluster = model.boot.clusterName;
    addOnce(graph, new ClusterPkiTask(model.nodeName));
    graph.add(new BootstrapTokenTask());
    graph.ensure(new DirTask({ path: pkiDir, mode: 0o755 }));
    graph.ensure(new DirTask({ path: manifestDir, mode: 0o755 }));
    const afterPki: TaskKey[] = [clusterPkiKey];

    // State-store objects this node needs on disk. CA keys: only the cluster CA's, for the
    // controller-manager's CSR signer; the etcd and front-proxy CA keys never leave the store.
    const copies: [string, string, number][] = [
      [paths.ca, 'ca.crt', 0o644],
      [paths.caKey, 'ca.key', 0o600],
      [paths.frontProxyCa, 'front-proxy-ca.crt', 0o644],
      [paths.saKey, 'sa.key', 0o600],
      [paths.saPub, 'sa.pub', 0o644],
      [paths.etcdCa, 'etcd-ca.crt', 0o644],
    ];
    for (const [p, key, mode] of copies) addOnce(graph, new StoreFileTask({ path: p, storeKey: storeLayout.pki(key), mode, after: afterPki }));

    // A renewed certificate restarts the pod that reads it (kubelet restarts a changed manifest).
    const pod = (name: string): TaskKey[] => [`file:${manifestDir}/${name}.yaml`];
    const pem = (
      id: string,
      ca: 'ca' | 'etcd-ca' | 'front-proxy-ca',
      commonName: string,
      usages: ('server' | 'client')[],
      more: { organizations?: string[]; dnsNames?: string[]; ips?: string[] } = {},
      notify: TaskKey[] = [],
    ): CertTask =>
      new CertTask({
        id,
        ca,
        request: { commonName, usages, validityDays: days, ...more },
        output: { kind: 'pem', certPath: `${pkiDir}/${id}.crt`, keyPath: `${pkiDir}/${id}.key` },
        after: afterPki,
        notify,
      });
    const api = pod('kube-apiserver');
    graph.add(pem('apiserver', 'ca', 'kube-apiserver', ['server'], apiServerSans(model), api));
    graph.add(pem('apiserver-kubelet-client', 'ca', 'kube-apiserver-kubelet-client', ['client'], { organizations: ['system:masters'] }, api));
    graph.add(pem('apiserver-etcd-client', 'etcd-ca', 'kube-apiserver-etcd-client', ['client'], {}, api));
    graph.add(pem('front-proxy-client', 'front-proxy-ca', 'front-proxy-client', ['client'], {}, api));
    // Client pairs the kubelet and kube-proxy components reference on control planes.
    graph.add(pem('kubelet-client', 'ca', `system:node:${model.nodeName}`, ['client'], { organizations: ['system:nodes'] }));
    graph.add(pem('kube-proxy', 'ca', 'system:kube-proxy', ['client']));
    const kubeconfig = (id: string, path: string, user: string, server: string, organizations: string[] = [], notify: TaskKey[] = []): CertTask =>
      new CertTask({
        id: `kubeconfig-${id}`,
        ca: 'ca',
        request: { commonName: user, usages: ['client'], validityDays: days, organizations },
        output: { kind: 'kubeconfig', path, server, clusterName: cluster, user },
        after: afterPki,
        notify,
      });
    graph.add(kubeconfig('controller-manager', controllerManagerKubeconfig, 'system:kube-controller-manager', localServer, [], pod('kube-controller-manager')));
    graph.add(kubeconfig('scheduler', schedulerKubeconfig, 'system:kube-scheduler', localServer, [], pod('kube-scheduler')));
    graph.add(kubeconfig('admin', adminKubeconfig, 'kubernetes-admin', model.spec.apiServerEndpoint, ['system:masters']));

    const input = controlPlaneInput(model);
    const apiAfter: TaskKey[] = ['cert:apiserver', 'cert:apiserver-kubelet-client', 'cert:apiserver-etcd-client', 'cert:front-proxy-client', `pki:${paths.saKey}`, `pki:${paths.saPub}`, `pki:${paths.etcdCa}`];
    if (input.audit) {
      const policy = model.spec.controlPlane.apiServer.audit.policy ?? renderAuditPolicy();
      graph.add(new FileTask({ path: auditPolicyPath, content: policy, mode: 0o600 }));
      graph.ensure(new DirTask({ path: auditLogDir, mode: 0o700 }));
      apiAfter.push(`file:${auditPolicyPath}`, `dir:${auditLogDir}`);
    }
    graph.add(new StaticPodTask({ path: `${manifestDir}/kube-apiserver.yaml`, content: renderApiServerManifest(input), after: apiAfter }));
    graph.add(
      new StaticPodTask({
        path: `${manifestDir}/kube-controller-manager.yaml`,
        content: renderControllerManagerManifest(input),
        after: ['cert:kubeconfig-controller-manager', `pki:${paths.caKey}`, `pki:${paths.saKey}`],
      }),
    );
    graph.add(new StaticPodTask({ path: `${manifestDir}/kube-scheduler.yaml`, content: renderSchedulerManifest(input), after: ['cert:kubeconfig-scheduler'] }));
  },
};
