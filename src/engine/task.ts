// src/engine owns the foundation: task contract, graph, executor, plan printer, errors, log,
// semaphore, schema helpers, the state-store contract; host/ (the host facade), tasks/ (generic task
// kinds), pki/ (certificate task kinds).
// Layer: engine (README "How it works"). Imports no project layer above it: only src/engine.
// The whole contract of a task kind: observe the host, diff against the desired state (pure),
// apply the changes. `plan` is the same walk without apply.
import type { Host } from './host/host.ts';
import type { Logger } from './log.ts';
import type { StateStore } from './state-store.ts';

export type TaskKind =
  | 'file'
  | 'dir'
  | 'symlink'
  | 'sysctl'
  | 'kmod'
  | 'swap'
  | 'download'
  | 'archive'
  | 'package'
  | 'unit'
  | 'image'
  | 'cert'
  | 'cert-files'
  | 'pki'
  | 'etcd-member'
  | 'etcd-membership'
  | 'preflight'
  | 'manifest'
  | 'prune';

export type TaskKey = `${TaskKind}:${string}`;

export interface Change {
  readonly field: string;
  readonly from?: string;
  readonly to: string;
}

/**
 * What a run lends every task besides the host. The NodeModel is data; live services (the state
 * store) come only from here, so a builder stays pure and a test lends its own.
 */
export interface TaskContext {
  /** The cluster's state store (a run without one lends `noStateStore`, which refuses by name). */
  readonly store: StateStore;
}

export interface ApplyContext extends TaskContext {
  readonly log: Logger;
  /** Keys of tasks that changed this run and asked this one to react (restart, reload). */
  readonly notifiedBy: readonly TaskKey[];
}

export interface Task<Actual = unknown> {
  readonly key: TaskKey;
  /** Explicit edges: these tasks finish first. Never inferred from anything but the two graph rules. */
  readonly after: readonly TaskKey[];
  /** Tasks poked when this one changes (a changed config restarts its unit). They also run after it. */
  readonly notify?: readonly TaskKey[];
  /** The node path this task owns, if any: it then also waits for the `dir:` task of its nearest parent. */
  readonly path?: string;
  /** Several owned paths (an archive's members): each waits for its nearest parent `dir:` task too. */
  readonly ownedPaths?: readonly string[];
  /** Tasks sharing a group run one at a time (apt/dnf hold a lock). */
  readonly exclusive?: 'package-manager';
  observe(host: Host, ctx: TaskContext): Promise<Actual | undefined>;
  diff(actual: Actual | undefined): readonly Change[];
  apply(host: Host, changes: readonly Change[], ctx: ApplyContext): Promise<void>;
  /** Called when notified but without changes of its own (e.g. restart a unit whose config changed). */
  react?(host: Host, ctx: ApplyContext): Promise<void>;
  /** What the plan prints for a notification, e.g. "restart". */
  readonly reaction?: string;
}

export type AnyTask = Task<unknown>;

/** Helper for the common case where a task's desired value is compared field by field. */
export function fieldChange(field: string, from: string | undefined, to: string): Change {
  return from === undefined ? { field, to } : { field, from, to };
}

export function octal(mode: number): string {
  return '0' + mode.toString(8).padStart(3, '0');
}
