// Pure renderers of kubelet's kubeconfigs. Both reference files on disk (the CA, the client pair)
// rather than embedding them, so rotating a certificate never rewrites a kubeconfig.
import * as yaml from 'js-yaml';
import { managedHeader } from '../engine/tasks/file.ts';

export interface BootstrapKubeconfigInput {
  readonly clusterName: string;
  readonly server: string;
  readonly caFile: string;
  /** "<id>.<secret>": the file holding it is written 0600. */
  readonly token: string;
}

export interface CertKubeconfigInput {
  readonly clusterName: string;
  readonly server: string;
  readonly caFile: string;
  readonly user: string;
  readonly certFile: string;
  readonly keyFile: string;
}

function render(clusterName: string, server: string, caFile: string, user: string, credentials: Record<string, string>): string {
  const context = `${user}@${clusterName}`;
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: clusterName, cluster: { server, 'certificate-authority': caFile } }],
    users: [{ name: user, user: credentials }],
    contexts: [{ name: context, context: { cluster: clusterName, user } }],
    'current-context': context,
  };
  return `# ${managedHeader}\n` + yaml.dump(doc, { lineWidth: -1, noRefs: true, sortKeys: false });
}

/** Workers: the bootstrap kubeconfig kubelet uses once to request its client certificate (TLS bootstrap). */
export function renderBootstrapKubeconfig(i: BootstrapKubeconfigInput): string {
  return render(i.clusterName, i.server, i.caFile, 'kubelet-bootstrap', { token: i.token });
}

/** A kubeconfig authenticating with a client certificate pair on disk (control-plane kubelet, kube-proxy). */
export function renderCertKubeconfig(i: CertKubeconfigInput): string {
  return render(i.clusterName, i.server, i.caFile, i.user, { 'client-certificate': i.certFile, 'client-key': i.keyFile });
}
