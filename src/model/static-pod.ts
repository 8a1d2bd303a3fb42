// The shape every static pod nodeup writes shares (control plane, etcd): kube-system, host network,
// system-node-critical, RuntimeDefault seccomp, one container, host-path volumes, the managed
// header. Each component passes its container and volumes. Pure. Layer: model.
import * as yaml from 'js-yaml';
import { managedHeader } from '../engine/tasks/file.ts';

export interface StaticPodInput {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly container: Readonly<Record<string, unknown>>;
  readonly volumes: readonly Readonly<Record<string, unknown>>[];
}

/** The manifest text of a static pod. Pure. */
export function renderStaticPod(p: StaticPodInput): string {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: p.name, namespace: 'kube-system', labels: { ...p.labels }, annotations: { 'nodeup.dev/managed': 'true' } },
    spec: {
      hostNetwork: true,
      priorityClassName: 'system-node-critical',
      securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
      containers: [p.container],
      volumes: [...p.volumes],
    },
  };
  return `# ${managedHeader}\n` + yaml.dump(pod, { lineWidth: -1, noRefs: true });
}
