import { z } from 'zod';
import { SemVer } from '../engine/schema-util.ts';

const Port = z.number().int().min(1).max(65535);

export const EtcdClusterSpec = z.strictObject({
  /** "main" holds the cluster's objects; "events" (optional) holds Events, as kOps runs them. */
  name: z.enum(['main', 'events']),
  clientPort: Port,
  peerPort: Port,
});
export type EtcdClusterSpec = z.infer<typeof EtcdClusterSpec>;

export const defaultEtcdClusters: readonly EtcdClusterSpec[] = [
  { name: 'main', clientPort: 2379, peerPort: 2380 },
  { name: 'events', clientPort: 2381, peerPort: 2382 },
];

export const EtcdBackupSpec = z.strictObject({
  /** systemd OnCalendar expression for the scheduled backup timer; "" disables the timer. */
  schedule: z.string().default('*:0/15'),
  /** How many scheduled backups to keep per cluster (backups taken before membership changes count too). */
  retention: z.number().int().min(1).default(96),
});

export const EtcdSpec = z
  .strictObject({
    clusters: z.array(EtcdClusterSpec).min(1).default([...defaultEtcdClusters]),
    /** static-pod: manifests in /etc/kubernetes/manifests (kubelet runs etcd); systemd: etcd-<name>.service. */
    mode: z.enum(['static-pod', 'systemd']).default('static-pod'),
    /** Overrides the versions table (3.6 for Kubernetes >= 1.34, 3.5 before). */
    version: SemVer.optional(),
    /** Image for static pods; the tag is "<version>-0" as registry.k8s.io publishes it. */
    image: z.string().default('registry.k8s.io/etcd'),
    /** systemd mode: the etcd binary on the node. */
    binary: z.string().startsWith('/').default('/usr/local/bin/etcd'),
    dataDirRoot: z.string().startsWith('/').default('/var/lib/etcd'),
    backup: EtcdBackupSpec.prefault({}),
    /**
     * How many voting members each etcd cluster should have: the number of control-plane nodes.
     * When set, a member that stays unreachable for deadMemberGraceSeconds while the cluster has
     * more voting members than this (its replacement has joined) is removed automatically, after a
     * backup and only when the healthy members keep quorum. Unset: never removed automatically.
     */
    memberCount: z.number().int().min(1).max(9).optional(),
    /** How long (measured within one run, by repeated probes) a member must stay unreachable before it is removed. */
    deadMemberGraceSeconds: z.number().int().min(30).max(300).default(60),
    /**
     * etcd's --heartbeat-interval and --election-timeout (etcd's defaults 100 and 1000 ms when
     * unset). Raise both where members answer slowly (high latency, emulated or overloaded
     * machines): with a timeout too short, followers keep calling elections and the cluster has
     * no leader for long stretches. The timeout must be at least 5 times the interval.
     */
    heartbeatIntervalMs: z.number().int().min(10).max(10_000).optional(),
    electionTimeoutMs: z.number().int().min(50).max(50_000).optional(),
  })
  .superRefine((spec, ctx) => {
    const names = new Set<string>();
    const ports = new Set<number>();
    spec.clusters.forEach((c, i) => {
      if (names.has(c.name)) ctx.addIssue({ code: 'custom', path: ['clusters', i, 'name'], message: `cluster ${c.name} is listed twice` });
      names.add(c.name);
      for (const [field, port] of [['clientPort', c.clientPort], ['peerPort', c.peerPort]] as const) {
        if (ports.has(port)) ctx.addIssue({ code: 'custom', path: ['clusters', i, field], message: `port ${port} is used twice` });
        ports.add(port);
      }
    });
    if (!names.has('main')) ctx.addIssue({ code: 'custom', path: ['clusters'], message: 'the main cluster is required' });
    const heartbeat = spec.heartbeatIntervalMs ?? 100;
    const election = spec.electionTimeoutMs ?? 1000;
    if (election < 5 * heartbeat) {
      ctx.addIssue({ code: 'custom', path: ['electionTimeoutMs'], message: `${election} ms is less than 5 times the heartbeat interval (${heartbeat} ms): etcd refuses to start; raise electionTimeoutMs` });
    }
  });
export type EtcdSpec = z.infer<typeof EtcdSpec>;
