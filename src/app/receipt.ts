// The run receipt: what the last run did, so people and orchestrators see failures, not silence.
import type { ErrorSummary } from '../engine/errors.ts';
import type { RunReport, TaskStatus } from '../engine/executor.ts';
import type { PreflightResult } from './preflight.ts';

import { receiptFile } from '../engine/host/facts.ts';

export const receiptPath = receiptFile;
export const readySentinel = '/run/nodeup/ready';
export const capiSentinel = '/run/cluster-api/bootstrap-success.complete';

export interface Receipt {
  readonly apiVersion: 'nodeup.dev/v1alpha1';
  readonly kind: 'Receipt';
  readonly nodeName: string;
  readonly cluster: string;
  readonly instanceGroup: string;
  readonly mode: 'plan' | 'apply' | 'bake';
  readonly configHash: string;
  readonly nodeupVersion: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  /**
   * The Kubernetes version the node last converged to: this run's when it converged, else the one
   * the run before carried (the version-skew check reads it from the node's last receipt).
   */
  readonly convergedKubernetesVersion?: string;
  /** Set by `nodeup rollback`: the hash of the last good config the run went back to (configHash says the same). */
  readonly rolledBackTo?: string;
  /** An automatic rollback (`apply --rollback-on-failure`): the hash of the config that failed, and why it failed. */
  readonly rolledBackFrom?: string;
  readonly rollbackReason?: string;
  /** A run that restarted a running kubelet or containerd on a registered Node (drain-guard.ts): what it did around the change. */
  readonly disruption?: Disruption;
  readonly result: 'converged' | 'failed';
  readonly changed: number;
  readonly failed: number;
  readonly blocked: number;
  readonly tasks: readonly {
    readonly key: string;
    readonly component: string;
    readonly status: TaskStatus;
    readonly durationMs: number;
    readonly changes?: readonly string[];
    readonly error?: ErrorSummary;
    readonly blockedBy?: string;
  }[];
  readonly preflight?: readonly PreflightResult[];
  readonly error?: ErrorSummary;
}

export interface Disruption {
  /** The restarts that made the run disruptive: `unit:kubelet.service (drop-in 10-flags.conf, download:...)`. */
  readonly restarts: readonly string[];
  /** cordoned and drained first; skipped (with why): applied without; none: nothing to restart (a leftover cordon was lifted). */
  readonly drain: 'drained' | 'skipped' | 'none';
  readonly skippedBecause?: string;
  readonly evicted?: readonly string[];
  /** Whether the run made the node schedulable again at the end. */
  readonly uncordoned: boolean;
}

export interface ReceiptInput {
  readonly nodeName: string;
  readonly cluster: string;
  readonly instanceGroup: string;
  readonly mode: Receipt['mode'];
  readonly configHash: string;
  readonly nodeupVersion: string;
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly report?: RunReport;
  readonly preflight?: readonly PreflightResult[];
  readonly error?: ErrorSummary;
  /** This run's Kubernetes version, when it set up the whole node (no --only, no --skip). */
  readonly kubernetesVersion?: string;
  /** What the node's last receipt said it last converged to. */
  readonly previousConvergedVersion?: string;
  /** `nodeup rollback`: the hash of the last good config this run went back to. */
  readonly rolledBackTo?: string;
  readonly disruption?: Disruption;
  readonly rolledBackFrom?: string;
  readonly rollbackReason?: string;
}

export function buildReceipt(i: ReceiptInput): Receipt {
  const r = i.report;
  const converged = !i.error && (r?.ok ?? false);
  const lastGood = converged && i.mode === 'apply' ? (i.kubernetesVersion ?? i.previousConvergedVersion) : i.previousConvergedVersion;
  return {
    apiVersion: 'nodeup.dev/v1alpha1',
    kind: 'Receipt',
    nodeName: i.nodeName,
    cluster: i.cluster,
    instanceGroup: i.instanceGroup,
    mode: i.mode,
    configHash: i.configHash,
    nodeupVersion: i.nodeupVersion,
    startedAt: new Date(i.startedAt).toISOString(),
    finishedAt: new Date(i.finishedAt).toISOString(),
    durationMs: i.finishedAt - i.startedAt,
    result: converged ? 'converged' : 'failed',
    ...(lastGood ? { convergedKubernetesVersion: lastGood } : {}),
    ...(i.rolledBackTo ? { rolledBackTo: i.rolledBackTo } : {}),
    ...(i.rolledBackFrom ? { rolledBackFrom: i.rolledBackFrom, ...(i.rollbackReason ? { rollbackReason: i.rollbackReason } : {}) } : {}),
    ...(i.disruption ? { disruption: i.disruption } : {}),
    changed: r?.changed ?? 0,
    failed: r?.failed ?? 0,
    blocked: r?.blocked ?? 0,
    tasks: (r?.results ?? []).map((t) => ({
      key: t.key,
      component: t.component,
      status: t.status,
      durationMs: t.durationMs,
      ...(t.changes.length > 0 ? { changes: t.changes.map((c) => (c.from === undefined ? `${c.field}: ${c.to}` : `${c.field}: ${c.from} -> ${c.to}`)) } : {}),
      ...(t.error ? { error: t.error } : {}),
      ...(t.blockedBy ? { blockedBy: t.blockedBy } : {}),
    })),
    ...(i.preflight ? { preflight: i.preflight } : {}),
    ...(i.error ? { error: i.error } : {}),
  };
}
