// Pure renderer of kube-proxy's kubeconfig: the cluster CA and the client pair are files on disk
// (mounted into the pod), so rotating the certificate never rewrites this file.
import * as yaml from 'js-yaml';
import { managedHeader } from '../engine/tasks/file.ts';

export interface KubeProxyKubeconfigInput {
  readonly clusterName: string;
  readonly server: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export function renderKubeProxyKubeconfig(i: KubeProxyKubeconfigInput): string {
  const user = 'system:kube-proxy';
  const context = `${user}@${i.clusterName}`;
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: i.clusterName, cluster: { server: i.server, 'certificate-authority': i.caFile } }],
    users: [{ name: user, user: { 'client-certificate': i.certFile, 'client-key': i.keyFile } }],
    contexts: [{ name: context, context: { cluster: i.clusterName, user } }],
    'current-context': context,
  };
  return `# ${managedHeader}\n` + yaml.dump(doc, { lineWidth: -1, noRefs: true, sortKeys: false });
}
