// Pure renderers for the control-plane static pods (kube-apiserver, kube-controller-manager,
// kube-scheduler) and the default audit policy. Flags are maps, sorted, with user extraArgs last
// (they override); plain data in, YAML out.
import * as yaml from 'js-yaml';
import { managedHeader } from '../engine/tasks/file.ts';
import { adminKubeconfig, manifestDir } from '../model/paths/controlplane.ts';
import { renderStaticPod } from '../model/static-pod.ts';

export { adminKubeconfig, manifestDir };

export const pkiDir = '/etc/kubernetes/pki';
export const controllerManagerKubeconfig = '/etc/kubernetes/controller-manager.conf';
export const schedulerKubeconfig = '/etc/kubernetes/scheduler.conf';
export const auditPolicyPath = '/etc/kubernetes/audit-policy.yaml';
export const auditLogDir = '/var/log/kubernetes/audit';

export const paths = {
  ca: `${pkiDir}/ca.crt`,
  caKey: `${pkiDir}/ca.key`,
  frontProxyCa: `${pkiDir}/front-proxy-ca.crt`,
  etcdCa: `${pkiDir}/etcd/ca.crt`,
  saKey: `${pkiDir}/sa.key`,
  saPub: `${pkiDir}/sa.pub`,
  apiserverCert: `${pkiDir}/apiserver.crt`,
  apiserverKey: `${pkiDir}/apiserver.key`,
  kubeletClientCert: `${pkiDir}/apiserver-kubelet-client.crt`,
  kubeletClientKey: `${pkiDir}/apiserver-kubelet-client.key`,
  etcdClientCert: `${pkiDir}/apiserver-etcd-client.crt`,
  etcdClientKey: `${pkiDir}/apiserver-etcd-client.key`,
  frontProxyClientCert: `${pkiDir}/front-proxy-client.crt`,
  frontProxyClientKey: `${pkiDir}/front-proxy-client.key`,
} as const;

export interface AuditInput {
  readonly maxAgeDays: number;
  readonly maxBackups: number;
  readonly maxSizeMB: number;
}

export interface ControlPlaneInput {
  readonly imageRegistry: string;
  /** v1.35.4 */
  readonly kubernetesVersion: string;
  readonly advertiseAddress: string;
  readonly securePort: number;
  readonly clusterName: string;
  readonly serviceCIDR: string;
  readonly podCIDR: string;
  /** kube-controller-manager gives each Node a /nodeCIDRMaskSize of podCIDR (spec.podCIDR). */
  readonly allocateNodeCIDRs: boolean;
  readonly nodeCIDRMaskSize: number;
  readonly serviceAccountIssuer: string;
  readonly etcdServers: readonly string[];
  /** e.g. https://127.0.0.1:2381 for /events; undefined when events share the main cluster. */
  readonly etcdEventsServer?: string;
  readonly audit?: AuditInput;
  readonly apiServerExtraArgs: Readonly<Record<string, string>>;
  readonly controllerManagerExtraArgs: Readonly<Record<string, string>>;
  readonly schedulerExtraArgs: Readonly<Record<string, string>>;
  /** Failed probes (10 s apart) before kubelet restarts a pod: while it starts, once it runs. */
  readonly probes: { readonly startupFailureThreshold: number; readonly livenessFailureThreshold: number };
  /** Leader election of the controller-manager and the scheduler, in seconds. */
  readonly leaderElection: { readonly leaseDurationSeconds: number; readonly renewDeadlineSeconds: number; readonly retryPeriodSeconds: number };
}

type Flags = Record<string, string>;

function flagList(base: Flags, extra: Readonly<Record<string, string>>): string[] {
  const all: Flags = { ...base, ...extra };
  return Object.keys(all)
    .sort()
    .map((k) => `--${k}=${all[k] as string}`);
}

interface Volume {
  readonly name: string;
  readonly hostPath: string;
  readonly mountPath: string;
  readonly type: 'Directory' | 'DirectoryOrCreate' | 'File' | 'FileOrCreate';
  readonly readOnly: boolean;
}

interface PodInput {
  readonly name: string;
  readonly image: string;
  readonly command: readonly string[];
  readonly probe: { readonly host: string; readonly port: number; readonly livePath: string; readonly readyPath?: string };
  readonly cpu: string;
  readonly volumes: readonly Volume[];
  readonly thresholds: ControlPlaneInput['probes'];
}

function renderPod(p: PodInput): string {
  const httpGet = (path: string): Record<string, unknown> => ({ host: p.probe.host, path, port: p.probe.port, scheme: 'HTTPS' });
  return renderStaticPod({
    name: p.name,
    labels: { component: p.name, tier: 'control-plane' },
    container: {
      name: p.name,
      image: p.image,
      imagePullPolicy: 'IfNotPresent',
      command: [...p.command],
      resources: { requests: { cpu: p.cpu } },
      startupProbe: { httpGet: httpGet(p.probe.livePath), initialDelaySeconds: 10, periodSeconds: 10, timeoutSeconds: 15, failureThreshold: p.thresholds.startupFailureThreshold },
      livenessProbe: { httpGet: httpGet(p.probe.livePath), initialDelaySeconds: 10, periodSeconds: 10, timeoutSeconds: 15, failureThreshold: p.thresholds.livenessFailureThreshold },
      ...(p.probe.readyPath ? { readinessProbe: { httpGet: httpGet(p.probe.readyPath), periodSeconds: 1, timeoutSeconds: 15, failureThreshold: 3 } } : {}),
      volumeMounts: p.volumes.map((v) => ({ name: v.name, mountPath: v.mountPath, readOnly: v.readOnly })),
    },
    volumes: p.volumes.map((v) => ({ name: v.name, hostPath: { path: v.hostPath, type: v.type } })),
  });
}

const caCerts: Volume[] = [
  { name: 'ca-certs', hostPath: '/etc/ssl/certs', mountPath: '/etc/ssl/certs', type: 'DirectoryOrCreate', readOnly: true },
  { name: 'k8s-certs', hostPath: pkiDir, mountPath: pkiDir, type: 'DirectoryOrCreate', readOnly: true },
];

function image(i: ControlPlaneInput, name: string): string {
  return `${i.imageRegistry}/${name}:${i.kubernetesVersion}`;
}

export function renderApiServerManifest(i: ControlPlaneInput): string {
  const flags: Flags = {
    'advertise-address': i.advertiseAddress,
    'allow-privileged': 'true',
    'authorization-mode': 'Node,RBAC',
    'client-ca-file': paths.ca,
    'enable-admission-plugins': 'NodeRestriction',
    'enable-bootstrap-token-auth': 'true',
    'etcd-cafile': paths.etcdCa,
    'etcd-certfile': paths.etcdClientCert,
    'etcd-keyfile': paths.etcdClientKey,
    'etcd-servers': i.etcdServers.join(','),
    'kubelet-client-certificate': paths.kubeletClientCert,
    'kubelet-client-key': paths.kubeletClientKey,
    'kubelet-preferred-address-types': 'InternalIP,ExternalIP,Hostname',
    'proxy-client-cert-file': paths.frontProxyClientCert,
    'proxy-client-key-file': paths.frontProxyClientKey,
    'requestheader-allowed-names': 'front-proxy-client',
    'requestheader-client-ca-file': paths.frontProxyCa,
    'requestheader-extra-headers-prefix': 'X-Remote-Extra-',
    'requestheader-group-headers': 'X-Remote-Group',
    'requestheader-username-headers': 'X-Remote-User',
    'secure-port': String(i.securePort),
    'service-account-issuer': i.serviceAccountIssuer,
    'service-account-key-file': paths.saPub,
    'service-account-signing-key-file': paths.saKey,
    'service-cluster-ip-range': i.serviceCIDR,
    'tls-cert-file': paths.apiserverCert,
    'tls-private-key-file': paths.apiserverKey,
  };
  if (i.etcdEventsServer) flags['etcd-servers-overrides'] = `/events#${i.etcdEventsServer}`;
  const volumes = [...caCerts];
  if (i.audit) {
    Object.assign(flags, {
      'audit-log-path': `${auditLogDir}/audit.log`,
      'audit-log-maxage': String(i.audit.maxAgeDays),
      'audit-log-maxbackup': String(i.audit.maxBackups),
      'audit-log-maxsize': String(i.audit.maxSizeMB),
      'audit-policy-file': auditPolicyPath,
    });
    volumes.push(
      { name: 'audit-policy', hostPath: auditPolicyPath, mountPath: auditPolicyPath, type: 'File', readOnly: true },
      { name: 'audit-log', hostPath: auditLogDir, mountPath: auditLogDir, type: 'DirectoryOrCreate', readOnly: false },
    );
  }
  return renderPod({
    name: 'kube-apiserver',
    image: image(i, 'kube-apiserver'),
    command: ['kube-apiserver', ...flagList(flags, i.apiServerExtraArgs)],
    probe: { host: i.advertiseAddress, port: i.securePort, livePath: '/livez', readyPath: '/readyz' },
    cpu: '250m',
    thresholds: i.probes,
    volumes,
  });
}

export function renderControllerManagerManifest(i: ControlPlaneInput): string {
  const flags: Flags = {
    'authentication-kubeconfig': controllerManagerKubeconfig,
    'authorization-kubeconfig': controllerManagerKubeconfig,
    'bind-address': '127.0.0.1',
    'client-ca-file': paths.ca,
    'cluster-name': i.clusterName,
    'cluster-signing-cert-file': paths.ca,
    'cluster-signing-key-file': paths.caKey,
    controllers: '*,bootstrapsigner,tokencleaner',
    kubeconfig: controllerManagerKubeconfig,
    'leader-elect': 'true',
    ...leaderElectionFlags(i.leaderElection),
    'requestheader-client-ca-file': paths.frontProxyCa,
    'root-ca-file': paths.ca,
    'service-account-private-key-file': paths.saKey,
    'service-cluster-ip-range': i.serviceCIDR,
    'use-service-account-credentials': 'true',
  };
  if (i.allocateNodeCIDRs) Object.assign(flags, { 'allocate-node-cidrs': 'true', 'cluster-cidr': i.podCIDR, 'node-cidr-mask-size': String(i.nodeCIDRMaskSize) });
  return renderPod({
    name: 'kube-controller-manager',
    image: image(i, 'kube-controller-manager'),
    command: ['kube-controller-manager', ...flagList(flags, i.controllerManagerExtraArgs)],
    probe: { host: '127.0.0.1', port: 10257, livePath: '/healthz' },
    cpu: '200m',
    thresholds: i.probes,
    volumes: [
      ...caCerts,
      { name: 'kubeconfig', hostPath: controllerManagerKubeconfig, mountPath: controllerManagerKubeconfig, type: 'FileOrCreate', readOnly: true },
    ],
  });
}

/** The --leader-elect-* duration flags: only those that differ from the components' own defaults (15 s, 10 s, 2 s). */
function leaderElectionFlags(l: ControlPlaneInput['leaderElection']): Flags {
  const flags: Flags = {};
  if (l.leaseDurationSeconds !== 15) flags['leader-elect-lease-duration'] = `${l.leaseDurationSeconds}s`;
  if (l.renewDeadlineSeconds !== 10) flags['leader-elect-renew-deadline'] = `${l.renewDeadlineSeconds}s`;
  if (l.retryPeriodSeconds !== 2) flags['leader-elect-retry-period'] = `${l.retryPeriodSeconds}s`;
  return flags;
}

export function renderSchedulerManifest(i: ControlPlaneInput): string {
  const flags: Flags = {
    'authentication-kubeconfig': schedulerKubeconfig,
    'authorization-kubeconfig': schedulerKubeconfig,
    'bind-address': '127.0.0.1',
    kubeconfig: schedulerKubeconfig,
    'leader-elect': 'true',
    ...leaderElectionFlags(i.leaderElection),
  };
  return renderPod({
    name: 'kube-scheduler',
    image: image(i, 'kube-scheduler'),
    command: ['kube-scheduler', ...flagList(flags, i.schedulerExtraArgs)],
    probe: { host: '127.0.0.1', port: 10259, livePath: '/healthz' },
    cpu: '100m',
    thresholds: i.probes,
    volumes: [{ name: 'kubeconfig', hostPath: schedulerKubeconfig, mountPath: schedulerKubeconfig, type: 'FileOrCreate', readOnly: true }],
  });
}

/** The default audit policy: metadata of every request, nothing of bodies (no secrets in logs). */
export function renderAuditPolicy(): string {
  return `# ${managedHeader}\n` + yaml.dump({ apiVersion: 'audit.k8s.io/v1', kind: 'Policy', omitStages: ['RequestReceived'], rules: [{ level: 'Metadata' }] }, { lineWidth: -1 });
}
