// Pure renderer of kube-proxy's static pod. The pod carries a hash of its config and kubeconfig, so
// kubelet recreates it exactly when one of them changed.
import * as yaml from 'js-yaml';
import { managedHeader } from '../engine/tasks/file.ts';

export interface KubeProxyManifestInput {
  readonly image: string;
  readonly configPath: string;
  readonly configDir: string;
  /** Read-only host directories holding the CA and the client credentials, by volume name. */
  readonly credentialDirs: readonly { readonly name: string; readonly path: string }[];
  /** Hash of the config and kubeconfig contents. */
  readonly configHash: string;
}

export function renderKubeProxyManifest(i: KubeProxyManifestInput): string {
  const doc = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'kube-proxy',
      namespace: 'kube-system',
      labels: { 'k8s-app': 'kube-proxy', tier: 'node', 'app.kubernetes.io/managed-by': 'nodeup' },
      annotations: { 'nodeup.dev/config-hash': i.configHash },
    },
    spec: {
      hostNetwork: true,
      priorityClassName: 'system-node-critical',
      tolerations: [{ operator: 'Exists' }],
      containers: [
        {
          name: 'kube-proxy',
          image: i.image,
          command: ['/usr/local/bin/kube-proxy', `--config=${i.configPath}`, '--hostname-override=$(NODE_NAME)'],
          env: [{ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
          resources: { requests: { cpu: '100m' } },
          securityContext: { privileged: true },
          volumeMounts: [
            { name: 'kube-proxy', mountPath: i.configDir, readOnly: true },
            ...i.credentialDirs.map((d) => ({ name: d.name, mountPath: d.path, readOnly: true })),
            { name: 'xtables-lock', mountPath: '/run/xtables.lock' },
            { name: 'lib-modules', mountPath: '/lib/modules', readOnly: true },
          ],
        },
      ],
      volumes: [
        { name: 'kube-proxy', hostPath: { path: i.configDir, type: 'Directory' } },
        ...i.credentialDirs.map((d) => ({ name: d.name, hostPath: { path: d.path, type: 'Directory' } })),
        { name: 'xtables-lock', hostPath: { path: '/run/xtables.lock', type: 'FileOrCreate' } },
        { name: 'lib-modules', hostPath: { path: '/lib/modules', type: 'Directory' } },
      ],
    },
  };
  return `# ${managedHeader}\n` + yaml.dump(doc, { lineWidth: -1, noRefs: true, sortKeys: false });
}
