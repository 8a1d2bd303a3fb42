// Walks the task graph: observe, diff, and (in apply mode) apply. Ready tasks run concurrently
// (limit 4), package tasks one at a time; NotReadyError is retried with backoff until a deadline,
// and a task waiting out its backoff gives its slot to others; any other failure fails that task
// and blocks its dependents while independent branches finish.
import { AgentError, NotReadyError, summarizeError, type ErrorSummary } from './errors.ts';
import type { TaskGraph } from './graph.ts';
import type { Host } from './host/host.ts';
import type { Logger } from './log.ts';
import { Semaphore } from './semaphore.ts';
import type { AnyTask, ApplyContext, Change, TaskKey } from './task.ts';
import { noStateStore, type StateStore } from './state-store.ts';

export type Mode = 'plan' | 'apply';
export type TaskStatus = 'unchanged' | 'changed' | 'planned' | 'failed' | 'blocked';

export interface TaskResult {
  readonly key: TaskKey;
  readonly component: string;
  readonly status: TaskStatus;
  readonly changes: readonly Change[];
  readonly notifiedBy: readonly TaskKey[];
  readonly durationMs: number;
  readonly error?: ErrorSummary;
  /** For blocked tasks: the failed prerequisite. */
  readonly blockedBy?: TaskKey;
}

export interface RunReport {
  readonly mode: Mode;
  readonly results: readonly TaskResult[];
  readonly changed: number;
  readonly failed: number;
  readonly blocked: number;
  readonly ok: boolean;
}

export interface ExecutorOptions {
  readonly mode: Mode;
  readonly log: Logger;
  readonly concurrency?: number;
  /** How long a task may keep answering NotReady before it fails. */
  readonly notReadyDeadlineMs?: number;
  readonly owner?: ReadonlyMap<TaskKey, string>;
  /** The state store tasks reach through their context (default: `noStateStore`, which refuses). */
  readonly store?: StateStore;
}

export async function execute(graph: TaskGraph, host: Host, opts: ExecutorOptions): Promise<RunReport> {
  const limit = opts.concurrency ?? 4;
  const deadline = opts.notReadyDeadlineMs ?? 10 * 60_000;
  const results = new Map<TaskKey, TaskResult>();
  const notified = new Map<TaskKey, TaskKey[]>();
  const pending = new Set(graph.order);
  const running = new Set<TaskKey>();
  const slots = new Semaphore(limit);
  const groups = new Map<string, Semaphore>();
  let wake: () => void = () => undefined;

  /** One observe/diff/apply attempt holds a slot (and its exclusive group); backoff sleeps hold none. */
  const attempt = <T>(task: AnyTask, fn: () => Promise<T>): Promise<T> => {
    if (!task.exclusive) return slots.use(fn);
    let group = groups.get(task.exclusive);
    if (!group) groups.set(task.exclusive, (group = new Semaphore(1)));
    return group.use(() => slots.use(fn));
  };

  const component = (k: TaskKey): string => opts.owner?.get(k) ?? '';

  const finish = (r: TaskResult): void => {
    results.set(r.key, r);
    running.delete(r.key);
    const task = graph.tasks.get(r.key);
    if ((r.status === 'changed' || r.status === 'planned') && task?.notify) {
      for (const t of task.notify) notified.set(t, [...(notified.get(t) ?? []), r.key]);
    }
    wake();
  };

  const runTask = async (task: AnyTask): Promise<void> => {
    const started = host.now();
    const log = opts.log.child({ component: component(task.key), task: task.key });
    const notifiedBy = [...(notified.get(task.key) ?? [])].sort();
    const ctx: ApplyContext = { store: opts.store ?? noStateStore, log, notifiedBy };
    try {
      let changes: readonly Change[] = [];
      for (let n = 1; ; n++) {
        try {
          changes = await attempt(task, async () => {
            const found = task.diff(await task.observe(host, ctx));
            log.debug({ changes: found }, 'observed');
            if (opts.mode === 'apply') {
              if (found.length > 0) {
                log.info({ changes: found.map(describeChange) }, 'applying');
                await task.apply(host, found, ctx);
              } else if (notifiedBy.length > 0 && task.react) {
                log.info({ notifiedBy, reaction: task.reaction }, 'reacting');
                await task.react(host, ctx);
              }
            }
            return found;
          });
          break;
        } catch (err: unknown) {
          if (err instanceof NotReadyError && host.now() - started < deadline) {
            const wait = Math.min(1000 * 2 ** Math.min(n - 1, 4), 15_000);
            log.info({ reason: err.message, waitMs: wait, attempt: n }, 'not ready, waiting');
            await host.sleep(wait);
            continue;
          }
          throw err;
        }
      }
      const reaction = notifiedBy.length > 0 && changes.length === 0 && task.react
        ? [{ field: task.reaction ?? 'react', to: `notified by ${notifiedBy.join(', ')}` }]
        : [];
      const all = [...changes, ...reaction];
      const status: TaskStatus = all.length === 0 ? 'unchanged' : opts.mode === 'plan' ? 'planned' : 'changed';
      finish({ key: task.key, component: component(task.key), status, changes: all, notifiedBy, durationMs: host.now() - started });
    } catch (err: unknown) {
      const wrapped =
        err instanceof AgentError && err.code === 'TASK_FAILED' && err.details.task === task.key
          ? err
          : new AgentError('TASK_FAILED', `task ${task.key} failed: ${err instanceof Error ? err.message : String(err)}`, {
              cause: err,
              details: { task: task.key },
            });
      log.error({ err: wrapped }, 'task failed');
      finish({
        key: task.key,
        component: component(task.key),
        status: 'failed',
        changes: [],
        notifiedBy,
        durationMs: host.now() - started,
        error: summarizeError(err),
      });
    }
  };

  while (pending.size > 0 || running.size > 0) {
    let progressed = false;
    for (const key of [...pending]) {
      const deps = graph.deps.get(key) ?? [];
      const failedDep = deps.find((d) => {
        const s = results.get(d)?.status;
        return s === 'failed' || s === 'blocked';
      });
      if (failedDep) {
        pending.delete(key);
        const root = results.get(failedDep)?.blockedBy ?? failedDep;
        results.set(key, { key, component: component(key), status: 'blocked', changes: [], notifiedBy: [], durationMs: 0, blockedBy: root });
        opts.log.warn({ task: key, blockedBy: root }, 'task blocked by a failed prerequisite');
        progressed = true;
        continue;
      }
      if (!deps.every((d) => results.has(d))) continue;
      const task = graph.tasks.get(key) as AnyTask;
      pending.delete(key);
      running.add(key);
      progressed = true;
      void runTask(task);
    }
    if (!progressed || pending.size === 0) {
      if (running.size === 0 && pending.size > 0 && !progressed) {
        throw new AgentError('TASK_FAILED', 'executor stalled: tasks pending with nothing running', {
          details: { pending: [...pending] },
        });
      }
      if (running.size > 0) await new Promise<void>((r) => (wake = r));
    }
  }

  const ordered = graph.order.map((k) => results.get(k) as TaskResult);
  const changed = ordered.filter((r) => r.status === 'changed' || r.status === 'planned').length;
  const failed = ordered.filter((r) => r.status === 'failed').length;
  const blocked = ordered.filter((r) => r.status === 'blocked').length;
  return { mode: opts.mode, results: ordered, changed, failed, blocked, ok: failed === 0 && blocked === 0 };
}

export function describeChange(c: Change): string {
  return c.from === undefined ? `${c.field}: ${c.to}` : `${c.field}: ${c.from} -> ${c.to}`;
}
