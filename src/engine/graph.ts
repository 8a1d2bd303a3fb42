// The task graph: explicit edges, plus two generic rules: a path (or each of several) waits for the
// `dir:` task of its nearest parent, and a notified task runs after the task that notifies it.
import * as path from 'node:path/posix';
import { GraphError } from './errors.ts';
import type { AnyTask, Task, TaskKey } from './task.ts';

export interface GraphBuilder {
  /** Adds a task; a second task with the same key throws (a programming error, caught by tests). */
  add<A>(task: Task<A>): void;
  /** Adds a task unless an equivalent one with the same key exists (shared dirs, packages). */
  ensure<A>(task: Task<A>): void;
  has(key: TaskKey): boolean;
}

export interface TaskGraph {
  readonly tasks: ReadonlyMap<TaskKey, AnyTask>;
  /** All prerequisites of each task, explicit and derived. */
  readonly deps: ReadonlyMap<TaskKey, readonly TaskKey[]>;
  /** Tasks in a deterministic dependency order (ties by key). */
  readonly order: readonly TaskKey[];
}

function sameTask(a: AnyTask, b: AnyTask): boolean {
  return (
    JSON.stringify({ ...a, after: [...a.after].sort(), notify: [...(a.notify ?? [])].sort() }) ===
    JSON.stringify({ ...b, after: [...b.after].sort(), notify: [...(b.notify ?? [])].sort() })
  );
}

export class Graph implements GraphBuilder {
  private readonly tasks = new Map<TaskKey, AnyTask>();
  /** Which component added each task (for logs). */
  readonly owner = new Map<TaskKey, string>();
  private currentOwner = '';

  setOwner(name: string): void {
    this.currentOwner = name;
  }

  add<A>(task: Task<A>): void {
    if (this.tasks.has(task.key)) throw new GraphError(`duplicate task key ${task.key} (added by ${this.currentOwner})`);
    this.tasks.set(task.key, task);
    this.owner.set(task.key, this.currentOwner);
  }

  ensure<A>(task: Task<A>): void {
    const existing = this.tasks.get(task.key);
    if (!existing) return this.add(task);
    if (!sameTask(existing, task)) {
      throw new GraphError(`task ${task.key} ensured twice with different content (by ${this.currentOwner})`);
    }
  }

  has(key: TaskKey): boolean {
    return this.tasks.has(key);
  }

  /** Resolves edges, checks them, and orders the graph. Throws GraphError on unknown keys or cycles. */
  finish(): TaskGraph {
    const deps = new Map<TaskKey, Set<TaskKey>>();
    for (const [key, task] of this.tasks) {
      const set = new Set<TaskKey>();
      for (const dep of task.after) {
        if (!this.tasks.has(dep)) throw new GraphError(`task ${key} waits for unknown task ${dep}`);
        set.add(dep);
      }
      for (const owned of [...(task.path ? [task.path] : []), ...(task.ownedPaths ?? [])]) {
        for (let dir = path.dirname(owned); ; dir = path.dirname(dir)) {
          const dk: TaskKey = `dir:${dir}`;
          if (dk !== key && this.tasks.has(dk)) {
            set.add(dk);
            break;
          }
          if (dir === '/') break;
        }
      }
      deps.set(key, set);
    }
    for (const [key, task] of this.tasks) {
      for (const target of task.notify ?? []) {
        if (!this.tasks.has(target)) throw new GraphError(`task ${key} notifies unknown task ${target}`);
        deps.get(target)?.add(key);
      }
    }
    // Kahn's algorithm with a sorted ready list: deterministic order, cycle detection.
    const indeg = new Map<TaskKey, number>();
    const rdeps = new Map<TaskKey, TaskKey[]>();
    for (const [k, ds] of deps) {
      indeg.set(k, ds.size);
      for (const d of ds) rdeps.set(d, [...(rdeps.get(d) ?? []), k]);
    }
    const ready = [...indeg].filter(([, n]) => n === 0).map(([k]) => k).sort();
    const order: TaskKey[] = [];
    while (ready.length > 0) {
      const k = ready.shift() as TaskKey;
      order.push(k);
      for (const r of rdeps.get(k) ?? []) {
        const n = (indeg.get(r) ?? 0) - 1;
        indeg.set(r, n);
        if (n === 0) {
          ready.push(r);
          ready.sort();
        }
      }
    }
    if (order.length !== this.tasks.size) {
      const stuck = [...indeg].filter(([, n]) => n > 0).map(([k]) => k).sort();
      throw new GraphError(`dependency cycle among: ${stuck.join(', ')}`);
    }
    return {
      tasks: this.tasks,
      deps: new Map([...deps].map(([k, v]) => [k, [...v].sort()])),
      order,
    };
  }
}
