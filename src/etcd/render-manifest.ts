// Pure renderers for etcd: the flags of one member (shared by the static pod, the systemd unit and
// the integration tests, so tests run the flags nodes run), the static pod manifest, the systemd
// unit, and the scheduled-backup service and timer.
import { renderUnit } from '../engine/tasks/render-unit.ts';
import { renderStaticPod } from '../model/static-pod.ts';

export interface EtcdTlsPaths {
  readonly serverCert: string;
  readonly serverKey: string;
  readonly peerCert: string;
  readonly peerKey: string;
  /** CA that signs client and server certificates. */
  readonly clientCa: string;
  /** CA that signs peer certificates. */
  readonly peerCa: string;
}

export interface EtcdMemberConfig {
  readonly cluster: string;
  readonly name: string;
  readonly dataDir: string;
  /** The address peers and clients use (the node's IP; 127.0.0.1 in tests). */
  readonly advertiseIp: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly initialCluster: string;
  readonly initialClusterState: 'new' | 'existing';
  readonly initialClusterToken: string;
  readonly tls: EtcdTlsPaths;
  /** --heartbeat-interval / --election-timeout in ms; etcd's own defaults when unset. */
  readonly timing?: { readonly heartbeatIntervalMs?: number | undefined; readonly electionTimeoutMs?: number | undefined } | undefined;
}

export function clientUrl(ip: string, port: number): string {
  return `https://${ip}:${port}`;
}

export function peerUrl(ip: string, port: number): string {
  return `https://${ip}:${port}`;
}

/** etcd's flags for one member. Pure. */
export function etcdArgs(c: EtcdMemberConfig): string[] {
  const client = clientUrl(c.advertiseIp, c.clientPort);
  const local = clientUrl('127.0.0.1', c.clientPort);
  const listenClient = client === local ? client : `${client},${local}`;
  const peer = peerUrl(c.advertiseIp, c.peerPort);
  return [
    `--name=${c.name}`,
    `--data-dir=${c.dataDir}`,
    `--listen-client-urls=${listenClient}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=${c.initialCluster}`,
    `--initial-cluster-state=${c.initialClusterState}`,
    `--initial-cluster-token=${c.initialClusterToken}`,
    `--cert-file=${c.tls.serverCert}`,
    `--key-file=${c.tls.serverKey}`,
    `--client-cert-auth=true`,
    `--trusted-ca-file=${c.tls.clientCa}`,
    `--peer-cert-file=${c.tls.peerCert}`,
    `--peer-key-file=${c.tls.peerKey}`,
    `--peer-client-cert-auth=true`,
    `--peer-trusted-ca-file=${c.tls.peerCa}`,
    `--snapshot-count=10000`,
    `--auto-compaction-mode=periodic`,
    `--auto-compaction-retention=8h`,
    `--strict-reconfig-check=true`,
    ...(c.timing?.heartbeatIntervalMs !== undefined ? [`--heartbeat-interval=${c.timing.heartbeatIntervalMs}`] : []),
    ...(c.timing?.electionTimeoutMs !== undefined ? [`--election-timeout=${c.timing.electionTimeoutMs}`] : []),
  ];
}

export interface EtcdManifestInput {
  readonly member: EtcdMemberConfig;
  /** Full image reference, e.g. registry.k8s.io/etcd:3.6.4-0. */
  readonly image: string;
  /** Host directory holding the member's certificates (mounted read-only). */
  readonly pkiDir: string;
}

/** The static pod manifest of one etcd member. Pure. */
export function renderEtcdManifest(i: EtcdManifestInput): string {
  const m = i.member;
  return renderStaticPod({
    name: `etcd-${m.cluster}`,
    labels: { component: 'etcd', tier: 'control-plane', 'etcd.nodeup.dev/cluster': m.cluster },
    container: {
      name: 'etcd',
      image: i.image,
      imagePullPolicy: 'IfNotPresent',
      command: ['etcd', ...etcdArgs(m)],
      resources: { requests: { cpu: '100m', memory: '100Mi' } },
      livenessProbe: { tcpSocket: { host: '127.0.0.1', port: m.clientPort }, initialDelaySeconds: 15, periodSeconds: 10, failureThreshold: 8 },
      startupProbe: { tcpSocket: { host: '127.0.0.1', port: m.clientPort }, periodSeconds: 10, failureThreshold: 24 },
      volumeMounts: [
        { name: 'etcd-data', mountPath: m.dataDir },
        { name: 'etcd-pki', mountPath: i.pkiDir, readOnly: true },
      ],
    },
    volumes: [
      { name: 'etcd-data', hostPath: { path: m.dataDir, type: 'DirectoryOrCreate' } },
      { name: 'etcd-pki', hostPath: { path: i.pkiDir, type: 'Directory' } },
    ],
  });
}

/** etcd-<cluster>.service for systemd mode. Pure. */
export function renderEtcdUnit(member: EtcdMemberConfig, binary: string): string {
  return renderUnit({
    Unit: {
      Description: `etcd ${member.cluster} cluster member (nodeup)`,
      Wants: 'network-online.target',
      After: 'network-online.target',
    },
    Service: {
      Type: 'notify',
      ExecStart: [binary, ...etcdArgs(member)].join(' \\\n  '),
      Restart: 'always',
      RestartSec: '5s',
      LimitNOFILE: 65536,
      Nice: -10,
    },
    Install: { WantedBy: 'multi-user.target' },
  });
}

export interface BackupTimerInput {
  readonly nodeupBinary: string;
  readonly bootConfig: string;
  readonly schedule: string;
}

/** nodeup-etcd-backup.service: one backup of every etcd cluster this node serves. Pure. */
export function renderBackupService(i: BackupTimerInput): string {
  return renderUnit({
    Unit: { Description: 'nodeup: back up etcd to the state store', After: 'network-online.target' },
    Service: {
      Type: 'oneshot',
      EnvironmentFile: '-/etc/nodeup/environment',
      ExecStart: `${i.nodeupBinary} etcd backup --all --scheduled --config ${i.bootConfig} --log-format json`,
      Nice: 10,
    },
  });
}

export function renderBackupTimer(i: BackupTimerInput): string {
  return renderUnit({
    Unit: { Description: 'nodeup: scheduled etcd backups' },
    Timer: { OnCalendar: i.schedule, RandomizedDelaySec: '60s', Persistent: true },
    Install: { WantedBy: 'timers.target' },
  });
}
