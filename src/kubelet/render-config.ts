// Pure renderer of kubelet's KubeletConfiguration (kubelet.config.k8s.io/v1beta1).
import * as yaml from 'js-yaml';
import { managedHeader } from '../engine/tasks/file.ts';
import type { Taint } from './schema.ts';
import { compareText } from '../engine/text-order.ts';

export interface KubeletConfigInput {
  readonly clusterDNS: readonly string[];
  readonly clusterDomain: string;
  readonly maxPods: number;
  readonly registerWithTaints: readonly Taint[];
  readonly evictionHard: Readonly<Record<string, string>>;
  readonly systemReserved: Readonly<Record<string, string>>;
  readonly kubeReserved: Readonly<Record<string, string>>;
  readonly swapBehavior: 'NoSwap' | 'LimitedSwap';
  /** false when the host keeps swap on (LimitedSwap): kubelet must then start with swap. */
  readonly failSwapOn: boolean;
  readonly featureGates: Readonly<Record<string, boolean>>;
  readonly containerRuntimeEndpoint: string;
  readonly resolvConf: string;
  readonly clientCAFile: string;
  readonly staticPodPath: string;
  readonly serverTLSBootstrap: boolean;
  readonly extraConfig: Readonly<Record<string, unknown>>;
}

function sorted<T>(r: Readonly<Record<string, T>>): Record<string, T> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => compareText(a, b)));
}

/**
 * The config file. Everything kubelet can take from its file is here; only node identity and
 * credentials stay flags (kubelet-flags.env). The sandbox (pause) image is not set: kubelet 1.35 has
 * no --pod-infra-container-image and asks the CRI, whose config pins it.
 */
export function renderKubeletConfig(i: KubeletConfigInput): string {
  const doc: Record<string, unknown> = {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true, cacheTTL: '2m0s' },
      x509: { clientCAFile: i.clientCAFile },
    },
    authorization: { mode: 'Webhook', webhook: { cacheAuthorizedTTL: '5m0s', cacheUnauthorizedTTL: '30s' } },
    cgroupDriver: 'systemd',
    clusterDNS: [...i.clusterDNS],
    clusterDomain: i.clusterDomain,
    containerRuntimeEndpoint: i.containerRuntimeEndpoint,
    evictionHard: sorted(i.evictionHard),
    ...(Object.keys(i.featureGates).length > 0 ? { featureGates: sorted(i.featureGates) } : {}),
    failSwapOn: i.failSwapOn,
    ...(Object.keys(i.kubeReserved).length > 0 ? { kubeReserved: sorted(i.kubeReserved) } : {}),
    maxPods: i.maxPods,
    memorySwap: { swapBehavior: i.swapBehavior },
    ...(i.registerWithTaints.length > 0
      ? { registerWithTaints: i.registerWithTaints.map((t) => ({ key: t.key, ...(t.value !== undefined ? { value: t.value } : {}), effect: t.effect })) }
      : {}),
    resolvConf: i.resolvConf,
    rotateCertificates: true,
    serverTLSBootstrap: i.serverTLSBootstrap,
    shutdownGracePeriod: '30s',
    shutdownGracePeriodCriticalPods: '10s',
    staticPodPath: i.staticPodPath,
    ...(Object.keys(i.systemReserved).length > 0 ? { systemReserved: sorted(i.systemReserved) } : {}),
  };
  for (const [k, v] of Object.entries(i.extraConfig)) doc[k] = v;
  return `# ${managedHeader}\n` + yaml.dump(doc, { lineWidth: -1, noRefs: true, sortKeys: false });
}
