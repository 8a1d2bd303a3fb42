import { z } from 'zod';
import { parseIp } from '../engine/net/cidr.ts';

/** A certificate name: an IP address, or a DNS name (a leading `*.` wildcard allowed). */
const SanName = z.string().min(1).refine(
  (s) => parseIp(s) !== undefined || (!/^[\d.]+$/.test(s) && s.length <= 253 && /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(s)),
  'expected an IP address or a lowercase DNS name (such as api.example.com or *.example.com)',
);

const ExtraArgs = z.record(z.string().regex(/^[a-z0-9-]+$/, 'expected a flag name without dashes, such as "v"'), z.string()).default({});

export const AuditSpec = z.strictObject({
  enabled: z.boolean().default(false),
  /** Audit policy YAML; default: log metadata of every request. */
  policy: z.string().optional(),
  maxAgeDays: z.number().int().min(1).default(30),
  maxBackups: z.number().int().min(1).default(10),
  maxSizeMB: z.number().int().min(1).default(100),
});

export const ControlPlaneSpec = z.strictObject({
  /** Registry of the control-plane images (kube-apiserver, kube-controller-manager, kube-scheduler, etcd). */
  imageRegistry: z.string().regex(/^[a-z0-9.-]+(:\d+)?(\/[a-z0-9._-]+)*$/, 'expected a registry such as registry.k8s.io or mirror.example.com:5000/k8s').default('registry.k8s.io'),
  apiServer: z
    .strictObject({
      port: z.number().int().min(1).max(65535).default(6443),
      /** Extra names and IPs for the serving certificate (load balancer names...). */
      extraSANs: z.array(SanName).default([]),
      serviceAccountIssuer: z.string().optional(),
      audit: AuditSpec.prefault({}),
      extraArgs: ExtraArgs,
    })
    .prefault({}),
  controllerManager: z.strictObject({ extraArgs: ExtraArgs }).prefault({}),
  scheduler: z.strictObject({ extraArgs: ExtraArgs }).prefault({}),
  /**
   * How many failed probes (one every 10 s) kubelet allows the API server, controller-manager and
   * scheduler before it restarts them: while they start, and once they run. kubeadm's numbers suit
   * real hardware; on slow machines (emulated guests, small boards) an API server that needs more
   * than 250 s to start is killed before it answers, again and again.
   */
  probes: z
    .strictObject({
      startupFailureThreshold: z.number().int().min(1).max(1000).default(24),
      livenessFailureThreshold: z.number().int().min(1).max(1000).default(8),
    })
    .prefault({}),
  /**
   * Leader election of the controller-manager and the scheduler (their --leader-elect-* flags;
   * the defaults are theirs). A leader that cannot renew its lease within renewDeadlineSeconds
   * exits and is restarted: where the API server answers slowly (emulated guests, small boards,
   * an overloaded control plane) longer durations keep it from restarting in a loop.
   */
  leaderElection: z
    .strictObject({
      leaseDurationSeconds: z.number().int().min(1).max(3600).default(15),
      renewDeadlineSeconds: z.number().int().min(1).max(3600).default(10),
      retryPeriodSeconds: z.number().int().min(1).max(3600).default(2),
    })
    .prefault({}),
  /** Leaf certificate lifetime; renewed when a third is left. */
  certificateValidityDays: z.number().int().min(2).max(3650).default(365),
});
export type ControlPlaneSpec = z.infer<typeof ControlPlaneSpec>;
