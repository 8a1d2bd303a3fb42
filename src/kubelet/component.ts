// Layer: component. Imports src/engine and src/model only, never another component's folder.
// kubelet (and kubectl): the node agent from a verified release asset, configured by file.
// Owns: <binDir>/kubelet and <binDir>/kubectl, /var/lib/kubelet/config.yaml (KubeletConfiguration),
// /var/lib/kubelet/kubelet-flags.env (node name, node IP, labels, kubeconfig flags), kubelet.service, and the
// kubeconfig: /etc/kubernetes/kubelet.conf on control planes (client pair issued by the PKI tasks),
// /etc/kubernetes/bootstrap-kubelet.conf plus /etc/kubernetes/pki/ca.crt on workers (TLS bootstrap
// with the cluster's bootstrap token; kubelet then writes kubelet.conf itself).
// Runs after: containerd's unit and the prereqs tasks (when those components are in the run).
// Also: removes a key pair kubelet wrote itself under /var/lib/kubelet/pki when it is unreadable
// (cert-files-task.ts), so kubelet makes a new one.
// Restarts: only when its unit, config, flags, kubeconfig or binary changed, or such a pair was removed.
import type { Component, PreflightCheck } from '../model/component.ts';
import { modelAsset, nodeApiServer, type NodeModel } from '../model/node-model.ts';
import { clusterDnsIps } from '../model/service-addresses.ts';
import type { TaskKey } from '../engine/task.ts';
import { DownloadTask } from '../engine/tasks/download.ts';
import { DirTask, FileTask } from '../engine/tasks/file.ts';
import { containerdEndpoint, containerdUnitKey } from '../model/paths/containerd.ts';
import { kmodKey, swapKey, sysctlKey } from '../model/paths/node-prereqs.ts';
import { UnitTask } from '../engine/tasks/unit.ts';
import { KubeletCertFilesTask } from './cert-files-task.ts';
import {
  bootstrapKubeconfigPath,
  caCertPath,
  kubeletCertDir,
  kubeletClientCertPath,
  kubeletClientKeyPath,
  kubeletConfigPath,
  kubeletFlagsPath,
  kubeletKubeconfigPath,
  kubeletUnitKey,
  kubeletUnitName,
  staticPodDir,
} from '../model/paths/kubelet.ts';
import { renderKubeletConfig, type KubeletConfigInput } from './render-config.ts';
import { renderBootstrapKubeconfig, renderCertKubeconfig } from './render-kubeconfig.ts';
import { renderKubeletFlags, renderKubeletUnit } from './render-unit.ts';
import type { Taint } from './schema.ts';

export const controlPlaneTaint: Taint = { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' };
const bootstrapTokenRe = /^[a-z0-9]{6}\.[a-z0-9]{16}$/;

/** The KubeletConfiguration inputs for this node. Pure. */
export function kubeletConfigInput(model: NodeModel): KubeletConfigInput {
  const k = model.spec.kubelet;
  const taints = k.registerWithTaints ?? (model.spec.role === 'control-plane' ? [controlPlaneTaint] : []);
  return {
    clusterDNS: [...clusterDnsIps(model.spec)],
    clusterDomain: k.clusterDomain,
    maxPods: k.maxPods,
    registerWithTaints: taints,
    evictionHard: k.evictionHard,
    systemReserved: k.systemReserved,
    kubeReserved: k.kubeReserved,
    swapBehavior: k.swap.behavior,
    failSwapOn: k.swap.behavior === 'NoSwap' && k.swap.disableHostSwap,
    featureGates: k.featureGates,
    containerRuntimeEndpoint: containerdEndpoint,
    resolvConf: model.distro.resolvConf,
    clientCAFile: caCertPath,
    staticPodPath: staticPodDir,
    serverTLSBootstrap: k.serverTLSBootstrap,
    extraConfig: k.extraConfig,
  };
}

/** Whether this node joins with TLS bootstrap (workers, outside a bake). Pure. */
function bootstraps(model: NodeModel): boolean {
  return model.spec.role === 'worker' && !model.bake;
}

export const kubeletChecks: readonly PreflightCheck[] = [
  {
    name: 'BootstrapToken',
    check(model) {
      if (!bootstraps(model)) return undefined;
      const t = model.secrets.bootstrapToken;
      if (t === undefined) return 'the state store has no secrets/bootstrap-token: a worker joins with it (TLS bootstrap); apply a control-plane node first, it creates the token';
      if (!bootstrapTokenRe.test(t)) return 'secrets/bootstrap-token in the state store is not a bootstrap token ("<6 a-z0-9>.<16 a-z0-9>"): recreate it';
      return undefined;
    },
  },
  {
    name: 'ClusterCA',
    check(model) {
      if (!bootstraps(model)) return undefined;
      const ca = model.secrets.clusterCaCert;
      if (ca === undefined) return 'the state store has no pki/ca.crt: a worker needs the cluster CA certificate; apply a control-plane node first, it creates the PKI';
      if (!ca.includes('-----BEGIN CERTIFICATE-----')) return 'pki/ca.crt in the state store is not a PEM certificate';
      return undefined;
    },
  },
];

export const kubeletComponent: Component = {
  name: 'kubelet',
  enabled: () => true,
  build(model, graph) {
    const k = model.spec.kubelet;
    const bin = model.distro.binDir;
    const notifyUnit: TaskKey[] = [kubeletUnitKey];
    graph.add(new DownloadTask({ asset: modelAsset(model, 'kubelet'), path: `${bin}/kubelet`, mode: 0o755, notify: notifyUnit }));
    if (k.installKubectl) graph.add(new DownloadTask({ asset: modelAsset(model, 'kubectl'), path: `${bin}/kubectl`, mode: 0o755 }));
    graph.ensure(new DirTask({ path: staticPodDir, mode: 0o755 }));
    graph.add(new FileTask({ path: kubeletConfigPath, content: renderKubeletConfig(kubeletConfigInput(model)), mode: 0o644, notify: notifyUnit }));

    if (!model.bake) {
      const worker = model.spec.role === 'worker';
      graph.add(
        new FileTask({
          path: kubeletFlagsPath,
          content: renderKubeletFlags({
            kubeconfig: kubeletKubeconfigPath,
            ...(worker ? { bootstrapKubeconfig: bootstrapKubeconfigPath } : {}),
            certDir: kubeletCertDir,
            nodeName: model.nodeName,
            nodeIp: model.nodeIp,
            nodeLabels: k.nodeLabels,
            extraArgs: k.extraArgs,
          }),
          mode: 0o644,
          notify: notifyUnit,
        }),
      );
      // A pair kubelet wrote itself and a power cut left unreadable would stop it at every start.
      graph.add(new KubeletCertFilesTask({ dir: kubeletCertDir, notify: notifyUnit }));
      const server = nodeApiServer(model);
      const clusterName = model.boot.clusterName;
      if (worker) {
        // Both present when the preflight checks pass; with the checks ignored, kubelet waits for them.
        const ca = model.secrets.clusterCaCert;
        if (ca !== undefined) graph.ensure(new FileTask({ path: caCertPath, content: ca, mode: 0o644, notify: notifyUnit }));
        const token = model.secrets.bootstrapToken;
        if (token !== undefined) {
          graph.add(
            new FileTask({ path: bootstrapKubeconfigPath, content: renderBootstrapKubeconfig({ clusterName, server, caFile: caCertPath, token }), mode: 0o600, notify: notifyUnit }),
          );
        }
      } else {
        graph.add(
          new FileTask({
            path: kubeletKubeconfigPath,
            content: renderCertKubeconfig({
              clusterName,
              server,
              caFile: caCertPath,
              user: `system:node:${model.nodeName}`,
              certFile: kubeletClientCertPath,
              keyFile: kubeletClientKeyPath,
            }),
            mode: 0o600,
            notify: notifyUnit,
          }),
        );
      }
    }

    const after = [containerdUnitKey, kmodKey, sysctlKey, swapKey].filter((key) => graph.has(key));
    graph.add(
      new UnitTask({
        name: kubeletUnitName,
        unitDir: model.distro.unitDir,
        content: renderKubeletUnit({ binary: `${bin}/kubelet`, configPath: kubeletConfigPath, flagsPath: kubeletFlagsPath }),
        // A baked image must not start kubelet before nodeup has written this node's identity.
        enabled: !model.bake,
        running: !model.bake,
        after,
      }),
    );
  },
  preflight: () => kubeletChecks,
};

