// Pure renderer of KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1).
import * as yaml from 'js-yaml';
import { managedHeader } from '../engine/tasks/file.ts';

export interface KubeProxyConfigInput {
  /** nftables (default; GA since Kubernetes 1.33) or iptables. ipvs is deprecated and not offered. */
  readonly mode: 'nftables' | 'iptables';
  readonly clusterCIDR: string;
  readonly kubeconfig: string;
}

export function renderKubeProxyConfig(i: KubeProxyConfigInput): string {
  const doc = {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    bindAddress: '0.0.0.0',
    clientConnection: { kubeconfig: i.kubeconfig },
    clusterCIDR: i.clusterCIDR,
    healthzBindAddress: '0.0.0.0:10256',
    metricsBindAddress: '127.0.0.1:10249',
    mode: i.mode,
  };
  return `# ${managedHeader}\n` + yaml.dump(doc, { lineWidth: -1, noRefs: true, sortKeys: false });
}
