// Layer: component. Imports src/engine and src/model only, never another component's folder.
// kube-proxy: a static pod on every node, nftables mode by default (iptables selectable; ipvs is
// deprecated upstream and not offered). Disabled (spec.kubeProxy.enabled: false, e.g. when the CNI
// replaces it): the manifest is removed if an earlier run wrote it.
// Owns: /var/lib/kube-proxy/config.conf, /var/lib/kube-proxy/kubeconfig, /etc/kubernetes/manifests/kube-proxy.yaml.
// Credentials: control planes use /etc/kubernetes/pki/kube-proxy.{crt,key} (issued by the control-plane
// PKI tasks); workers use kubelet's rotating client certificate (see paths.ts for the RBAC it needs).
// Runs after: nothing explicit; kubelet picks the manifest up whenever it appears.
// Bake: nothing is written into an image (the pod belongs to a running node with its credentials).
import type { Component } from '../model/component.ts';
import { nodeApiServer, type NodeModel } from '../model/node-model.ts';
import { DirTask, FileTask, shortHash } from '../engine/tasks/file.ts';
import { caCertPath, pkiDir, staticPodDir } from '../model/paths/kubelet.ts';
import { AbsentFileTask } from './absent-task.ts';
import {
  kubeletClientCurrentPath,
  kubeletPkiDir,
  kubeProxyCertPath,
  kubeProxyConfigPath,
  kubeProxyDir,
  kubeProxyKeyPath,
  kubeProxyKubeconfigPath,
  kubeProxyManifestPath,
} from '../model/paths/kube-proxy.ts';
import { renderKubeProxyConfig } from './render-config.ts';
import { renderKubeProxyKubeconfig } from './render-kubeconfig.ts';
import { renderKubeProxyManifest } from './render-manifest.ts';

export interface KubeProxyFiles {
  readonly config: string;
  readonly kubeconfig: string;
  readonly manifest: string;
}

/** Every file kube-proxy needs on this node. Pure. */
export function kubeProxyFiles(model: NodeModel): KubeProxyFiles {
  const config = renderKubeProxyConfig({ mode: model.spec.kubeProxy.mode, clusterCIDR: model.spec.networking.podCIDR, kubeconfig: kubeProxyKubeconfigPath });
  const worker = model.spec.role === 'worker';
  const kubeconfig = renderKubeProxyKubeconfig({
    clusterName: model.boot.clusterName,
    server: nodeApiServer(model),
    caFile: caCertPath,
    certFile: worker ? kubeletClientCurrentPath : kubeProxyCertPath,
    keyFile: worker ? kubeletClientCurrentPath : kubeProxyKeyPath,
  });
  const manifest = renderKubeProxyManifest({
    image: `registry.k8s.io/kube-proxy:${model.versions.kubernetes}`,
    configPath: kubeProxyConfigPath,
    configDir: kubeProxyDir,
    credentialDirs: [{ name: 'pki', path: pkiDir }, ...(worker ? [{ name: 'kubelet-pki', path: kubeletPkiDir }] : [])],
    configHash: shortHash(config + kubeconfig),
  });
  return { config, kubeconfig, manifest };
}

export const kubeProxyComponent: Component = {
  name: 'kube-proxy',
  enabled: (m) => !m.bake,
  build(model, graph) {
    if (!model.spec.kubeProxy.enabled) {
      graph.add(new AbsentFileTask(kubeProxyManifestPath));
      return;
    }
    const f = kubeProxyFiles(model);
    graph.ensure(new DirTask({ path: staticPodDir, mode: 0o755 }));
    graph.add(new FileTask({ path: kubeProxyConfigPath, content: f.config, mode: 0o644 }));
    graph.add(new FileTask({ path: kubeProxyKubeconfigPath, content: f.kubeconfig, mode: 0o600 }));
    graph.add(new FileTask({ path: kubeProxyManifestPath, content: f.manifest, mode: 0o600, after: [`file:${kubeProxyConfigPath}`, `file:${kubeProxyKubeconfigPath}`] }));
  },
};
