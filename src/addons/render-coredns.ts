// Pure renderer of the CoreDNS add-on, shaped like the one kubeadm installs: ServiceAccount,
// ClusterRole/Binding system:coredns, ConfigMap with the Corefile, Deployment, and the kube-dns
// Service at the cluster DNS address kubelets are configured with.
import type { KubeObject } from './kube-object.ts';
import { clusterRoleBinding } from './render-bootstrap.ts';

export interface CorednsInput {
  /** e.g. registry.k8s.io: the image is <registry>/coredns/coredns:<version>. */
  readonly imageRegistry: string;
  /** v1.12.1 */
  readonly version: string;
  readonly replicas: number;
  readonly clusterDomain: string;
  /** The kube-dns Service's ClusterIP (kubelet's clusterDNS). */
  readonly clusterIP: string;
}

export function renderCorefile(clusterDomain: string): string {
  return [
    '.:53 {',
    '    errors',
    '    health {',
    '       lameduck 5s',
    '    }',
    '    ready',
    `    kubernetes ${clusterDomain} in-addr.arpa ip6.arpa {`,
    '       pods insecure',
    '       fallthrough in-addr.arpa ip6.arpa',
    '       ttl 30',
    '    }',
    '    prometheus :9153',
    '    forward . /etc/resolv.conf {',
    '       max_concurrent 1000',
    '    }',
    '    cache 30',
    '    loop',
    '    reload',
    '    loadbalance',
    '}',
    '',
  ].join('\n');
}

const ns = 'kube-system';
const appLabels = { 'k8s-app': 'kube-dns' };

/** In apply order: account and RBAC, config, Deployment, Service. */
export function renderCoredns(i: CorednsInput): KubeObject[] {
  const serviceAccount: KubeObject = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'coredns', namespace: ns } };
  const role: KubeObject = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'system:coredns' },
    rules: [
      { apiGroups: [''], resources: ['endpoints', 'services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
    ],
  };
  const binding = clusterRoleBinding('system:coredns', 'system:coredns', [{ kind: 'ServiceAccount', name: 'coredns', namespace: ns }]);
  const config: KubeObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'coredns', namespace: ns }, data: { Corefile: renderCorefile(i.clusterDomain) } };
  const probe = (path: string, port: number, extra: Record<string, number>): Record<string, unknown> => ({
    httpGet: { path, port, scheme: 'HTTP' },
    ...extra,
  });
  const deployment: KubeObject = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'coredns', namespace: ns, labels: { ...appLabels } },
    spec: {
      replicas: i.replicas,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
      selector: { matchLabels: { ...appLabels } },
      template: {
        metadata: { labels: { ...appLabels } },
        spec: {
          priorityClassName: 'system-cluster-critical',
          serviceAccountName: 'coredns',
          tolerations: [
            { key: 'CriticalAddonsOnly', operator: 'Exists' },
            { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' },
          ],
          nodeSelector: { 'kubernetes.io/os': 'linux' },
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                {
                  weight: 100,
                  podAffinityTerm: { labelSelector: { matchExpressions: [{ key: 'k8s-app', operator: 'In', values: ['kube-dns'] }] }, topologyKey: 'kubernetes.io/hostname' },
                },
              ],
            },
          },
          containers: [
            {
              name: 'coredns',
              image: `${i.imageRegistry}/coredns/coredns:${i.version}`,
              imagePullPolicy: 'IfNotPresent',
              args: ['-conf', '/etc/coredns/Corefile'],
              resources: { limits: { memory: '170Mi' }, requests: { cpu: '100m', memory: '70Mi' } },
              volumeMounts: [{ name: 'config-volume', mountPath: '/etc/coredns', readOnly: true }],
              ports: [
                { name: 'dns', containerPort: 53, protocol: 'UDP' },
                { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
                { name: 'metrics', containerPort: 9153, protocol: 'TCP' },
              ],
              livenessProbe: probe('/health', 8080, { initialDelaySeconds: 60, timeoutSeconds: 5, successThreshold: 1, failureThreshold: 5 }),
              readinessProbe: probe('/ready', 8181, {}),
              securityContext: {
                allowPrivilegeEscalation: false,
                capabilities: { add: ['NET_BIND_SERVICE'], drop: ['ALL'] },
                readOnlyRootFilesystem: true,
              },
            },
          ],
          dnsPolicy: 'Default',
          volumes: [{ name: 'config-volume', configMap: { name: 'coredns', items: [{ key: 'Corefile', path: 'Corefile' }] } }],
        },
      },
    },
  };
  const service: KubeObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: 'kube-dns',
      namespace: ns,
      labels: { ...appLabels, 'kubernetes.io/cluster-service': 'true', 'kubernetes.io/name': 'CoreDNS' },
      annotations: { 'prometheus.io/port': '9153', 'prometheus.io/scrape': 'true' },
    },
    spec: {
      selector: { ...appLabels },
      clusterIP: i.clusterIP,
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 },
        { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 },
        { name: 'metrics', port: 9153, protocol: 'TCP', targetPort: 9153 },
      ],
    },
  };
  return [serviceAccount, role, binding, config, deployment, service];
}
