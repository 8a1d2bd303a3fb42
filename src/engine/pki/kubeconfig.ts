// Pure renderer and reader of client kubeconfigs with embedded certificates (controller-manager,
// scheduler, admin). The key is embedded, so callers write these files 0600.
import * as yaml from 'js-yaml';

export interface KubeconfigInput {
  readonly clusterName: string;
  readonly server: string;
  readonly caPem: string;
  readonly user: string;
  readonly certPem: string;
  readonly keyPem: string;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

export function renderKubeconfig(i: KubeconfigInput): string {
  const context = `${i.user}@${i.clusterName}`;
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: i.clusterName, cluster: { server: i.server, 'certificate-authority-data': b64(i.caPem) } }],
    users: [{ name: i.user, user: { 'client-certificate-data': b64(i.certPem), 'client-key-data': b64(i.keyPem) } }],
    contexts: [{ name: context, context: { cluster: i.clusterName, user: i.user } }],
    'current-context': context,
  };
  return yaml.dump(doc, { lineWidth: -1, noRefs: true, sortKeys: false });
}

export interface KubeconfigParts {
  readonly server?: string;
  readonly caPem?: string;
  readonly certPem?: string;
  readonly keyPem?: string;
  /** File references (kubeconfigs kubelet writes after TLS bootstrap point at its rotating pair). */
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
}

/** Reads back what renderKubeconfig wrote; tolerant: missing parts are undefined. Pure. */
export function parseKubeconfig(text: string): KubeconfigParts {
  let doc: unknown;
  try {
    doc = yaml.load(text);
  } catch {
    return {};
  }
  const d = doc as {
    clusters?: { cluster?: { server?: string; 'certificate-authority-data'?: string; 'certificate-authority'?: string } }[];
    users?: { user?: { 'client-certificate-data'?: string; 'client-key-data'?: string; 'client-certificate'?: string; 'client-key'?: string } }[];
  } | null;
  const un = (s: string | undefined): string | undefined => (s === undefined ? undefined : Buffer.from(s, 'base64').toString('utf8'));
  const c = d?.clusters?.[0]?.cluster;
  const u = d?.users?.[0]?.user;
  const out: { -readonly [K in keyof KubeconfigParts]: KubeconfigParts[K] } = {};
  if (c?.server !== undefined) out.server = c.server;
  const ca = un(c?.['certificate-authority-data']);
  if (ca !== undefined) out.caPem = ca;
  const cert = un(u?.['client-certificate-data']);
  if (cert !== undefined) out.certPem = cert;
  const key = un(u?.['client-key-data']);
  if (key !== undefined) out.keyPem = key;
  if (c?.['certificate-authority'] !== undefined) out.caFile = c['certificate-authority'];
  if (u?.['client-certificate'] !== undefined) out.certFile = u['client-certificate'];
  if (u?.['client-key'] !== undefined) out.keyFile = u['client-key'];
  return out;
}
