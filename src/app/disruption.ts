// Which changes of a run disrupt the pods of a running node (issue 19, item 2): a restart of a
// kubelet or containerd that is running now, because its unit, drop-ins, config, flags,
// kubeconfig or binary change (a task that notifies the unit changed). Starting a unit that is not
// running (a first boot) disrupts nothing. Pure decisions over task results, plus the cheap
// prediction apply makes before its walk: it observes only the units and the tasks that notify
// them, not the whole graph.
import { AgentError, errorMessage } from '../engine/errors.ts';
import type { TaskResult } from '../engine/executor.ts';
import type { TaskGraph } from '../engine/graph.ts';
import type { Host } from '../engine/host/host.ts';
import type { AnyTask, Change, TaskContext, TaskKey } from '../engine/task.ts';
import { containerdUnitKey } from '../model/paths/containerd.ts';
import { kubeletUnitKey } from '../model/paths/kubelet.ts';

/** The units whose restart reaches every pod of the node. */
export const disruptiveUnits: readonly TaskKey[] = [containerdUnitKey, kubeletUnitKey];

export interface Restart {
  readonly unit: TaskKey;
  /** What makes it restart: the unit's own changed fields and the tasks that notify it. */
  readonly because: readonly string[];
}

type Outcome = Pick<TaskResult, 'key' | 'status' | 'changes' | 'notifiedBy'>;

/** The field names of a unit's own file changes (the unit task's diff). */
const fileChange = (c: Change): boolean => c.field === 'unit file' || c.field.startsWith('drop-in ');

/**
 * The restarts of running disruptive units in a walk's results (plan or prediction). Only
 * meaningful on a live host: on a scratch root a unit's `active` is not observed.
 */
export function restartsOf(results: readonly Outcome[]): Restart[] {
  const out: Restart[] = [];
  for (const unit of disruptiveUnits) {
    const r = results.find((x) => x.key === unit);
    if (!r || (r.status !== 'planned' && r.status !== 'changed')) continue;
    // Not running now: apply starts it, which stops nothing.
    if (r.changes.some((c) => c.field === 'active')) continue;
    const because = [...r.changes.filter(fileChange).map((c) => c.field), ...r.notifiedBy];
    if (because.length > 0) out.push({ unit, because });
  }
  return out;
}

/** The tasks whose change restarts a disruptive unit, directly or through a task they notify, with the units. */
export function restartClosure(graph: TaskGraph): AnyTask[] {
  const inside = new Set<TaskKey>(disruptiveUnits.filter((k) => graph.tasks.has(k)));
  for (let grew = true; grew; ) {
    grew = false;
    for (const [key, task] of graph.tasks) {
      if (!inside.has(key) && (task.notify ?? []).some((n) => inside.has(n))) {
        inside.add(key);
        grew = true;
      }
    }
  }
  return graph.order.filter((k) => inside.has(k)).map((k) => graph.tasks.get(k) as AnyTask);
}

/**
 * What apply would restart, from observing only `restartClosure(graph)` (in dependency order, so
 * a notification reaches its target as in the executor). A task that cannot be observed counts as
 * changed: draining once too often is safer than restarting under running pods.
 */
export async function predictRestarts(graph: TaskGraph, host: Host, ctx: TaskContext): Promise<Restart[]> {
  const tasks = restartClosure(graph);
  const notified = new Map<TaskKey, TaskKey[]>();
  const results: Outcome[] = [];
  for (const task of tasks) {
    let changes: readonly Change[];
    try {
      changes = task.diff(await task.observe(host, ctx));
    } catch (err: unknown) {
      changes = [{ field: 'unobservable', to: errorMessage(err) }];
    }
    const notifiedBy = notified.get(task.key) ?? [];
    const changed = changes.length > 0 || (notifiedBy.length > 0 && task.react !== undefined);
    if (changed) for (const t of task.notify ?? []) notified.set(t, [...(notified.get(t) ?? []), task.key]);
    results.push({ key: task.key, status: changed ? 'planned' : 'unchanged', changes, notifiedBy });
  }
  return restartsOf(results);
}

export function describeRestarts(restarts: readonly Restart[]): string {
  return restarts.map((r) => `${r.unit} (${r.because.join(', ')})`).join('; ');
}

/** --drain-timeout or --ready-timeout SECONDS (a whole number above 0) in milliseconds. */
export function drainTimeoutMs(value: string | boolean | readonly (string | boolean)[] | undefined, fallbackS: number, flag = '--drain-timeout'): number {
  const text = value === undefined ? String(fallbackS) : Array.isArray(value) ? value.join(',') : String(value);
  if (!/^\d+$/.test(text) || Number(text) === 0) {
    throw new AgentError('USAGE', `${flag} takes a whole number of seconds above 0, got '${text}'`, { details: { flag } });
  }
  return Number(text) * 1000;
}
