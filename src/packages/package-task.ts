// The `package` task kind: one `package:<name>` task per distro package, all sharing one
// PackageSet per run. Why this shape:
// - one task per package keeps keys stable and precise (`after: ['package:iptables']`, a plan line
//   per package, a failure names its package);
// - the set makes it ONE batch: the first observe runs one query (dpkg-query / rpm -q) for every
//   package and all tasks diff against that snapshot; the first apply runs the whole batch (one
//   list refresh if needed, one install command, one hold) and every later apply awaits the same
//   batch and checks its own package in a fresh query;
// - `exclusive: 'package-manager'` makes the executor run them one at a time, so nothing else of
//   ours competes for the dpkg/rpm lock.
// The plan prints, on the first changing package task, the exact commands the batch would run.
import { AgentError } from '../engine/errors.ts';
import type { Host } from '../engine/host/host.ts';
import type { Logger } from '../engine/log.ts';
import { fieldChange, type ApplyContext, type Change, type Task, type TaskKey } from '../engine/task.ts';
import { sortedWants, type BatchPlan, type InstalledPackage, type PackageManager, type PackageWant, type Snapshot } from './manager.ts';

/** Every package of one run and the one batch that converges them. One instance per build. */
export class PackageSet {
  readonly manager: PackageManager;
  readonly wants: readonly PackageWant[];
  private readonly snapshots = new WeakMap<Host, Promise<Snapshot>>();
  private readonly batches = new WeakMap<Host, Promise<ReadonlyMap<string, InstalledPackage>>>();

  constructor(manager: PackageManager, wants: readonly PackageWant[]) {
    this.manager = manager;
    this.wants = sortedWants(wants);
  }

  /** The run's one query, shared by every task (cached per host). */
  snapshot(host: Host): Promise<Snapshot> {
    let s = this.snapshots.get(host);
    if (!s) {
      s = this.manager.snapshot(host, this.manager.queryNames(this.wants));
      this.snapshots.set(host, s);
    }
    return s;
  }

  /** Pure: the batch for a snapshot. */
  plan(snap: Snapshot): BatchPlan {
    return this.manager.plan(this.wants, snap);
  }

  /** Runs the batch once per host; returns a fresh query of every package afterwards. */
  converge(host: Host, log: Logger): Promise<ReadonlyMap<string, InstalledPackage>> {
    let b = this.batches.get(host);
    if (!b) {
      b = (async () => {
        const snap = await this.snapshot(host);
        const batch = this.plan(snap);
        const started = host.now();
        log.info({ manager: this.manager.name, install: batch.install.length, hold: batch.hold.length, repair: batch.repair.length }, 'package batch starting');
        await this.manager.apply(host, batch, snap, log);
        const after = (await this.manager.snapshot(host, this.manager.queryNames(this.wants))).installed;
        log.info({ manager: this.manager.name, durationMs: host.now() - started }, 'package batch finished');
        return after;
      })();
      this.batches.set(host, b);
    }
    return b;
  }
}

interface PackageActual {
  readonly snapshot: Snapshot;
  readonly installed: InstalledPackage | undefined;
}

export class PackageTask implements Task<PackageActual> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[];
  readonly exclusive = 'package-manager' as const;
  readonly want: PackageWant;
  private readonly set: PackageSet;

  constructor(set: PackageSet, want: PackageWant, after: readonly TaskKey[] = []) {
    this.set = set;
    this.want = want;
    this.key = `package:${want.name}`;
    this.after = after;
  }

  async observe(host: Host): Promise<PackageActual> {
    const snapshot = await this.set.snapshot(host);
    return { snapshot, installed: snapshot.installed.get(this.want.name) };
  }

  diff(actual: PackageActual | undefined): readonly Change[] {
    if (!actual) return [];
    const batch = this.set.plan(actual.snapshot);
    const have = actual.installed;
    const out: Change[] = [];
    if (batch.repair.includes(this.want.name)) out.push(fieldChange('repair', 'half-configured', 'configured'));
    if (batch.install.some((w) => w.name === this.want.name)) {
      out.push(have ? fieldChange('version', have.version, this.want.version ?? '') : fieldChange('install', undefined, this.want.version ?? 'repository version'));
    }
    if (batch.hold.some((w) => w.name === this.want.name)) out.push(fieldChange('hold', String(have?.held ?? false), 'true'));
    // The first changing package of the batch shows the commands the whole batch runs.
    const first = [...batch.repair, ...batch.install.map((w) => w.name), ...batch.hold.map((w) => w.name)].sort()[0];
    if (out.length > 0 && first === this.want.name) {
      for (const c of batch.commands) out.push({ field: 'runs', to: c });
    }
    return out;
  }

  async apply(host: Host, _changes: readonly Change[], ctx: ApplyContext): Promise<void> {
    const after = await this.set.converge(host, ctx.log);
    const have = after.get(this.want.name);
    if (!have) {
      throw new AgentError('TASK_FAILED', `package ${this.want.name} is still not installed after the ${this.set.manager.name} batch`, {
        details: { package: this.want.name },
      });
    }
    if (this.want.version !== undefined && !have.held) {
      throw new AgentError('TASK_FAILED', `package ${this.want.name} is installed at ${have.version} but not held at the pinned ${this.want.version}`, {
        details: { package: this.want.name, installed: have.version, pinned: this.want.version },
      });
    }
  }
}
