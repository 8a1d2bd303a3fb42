// The `unit` task kind: a systemd unit file (plus drop-ins), enabled and, on a live node, running.
// Restarts happen only when the unit itself changed or a task it listens to notified it. One
// daemon-reload is shared by every unit that changed at about the same time.
import * as path from 'node:path/posix';
import type { Host } from '../host/host.ts';
import { shortHash } from './file.ts';
import { fieldChange, type ApplyContext, type Change, type Task, type TaskKey } from '../task.ts';

export interface UnitTaskSpec {
  /** e.g. "kubelet.service" */
  readonly name: string;
  /** Directory of the unit file (the distro table's unitDir). */
  readonly unitDir: string;
  /** Full unit file content; omit for units a package ships (then only drop-ins are managed). */
  readonly content?: string;
  /** Drop-in name -> content, written to <unitDir>/<name>.d/<dropin>. */
  readonly dropins?: Readonly<Record<string, string>>;
  readonly enabled: boolean;
  /** Whether the unit should be running on a live node (oneshot boot units: false). */
  readonly running: boolean;
  /** Target the unit is wanted by when enabled. */
  readonly wantedBy?: string;
  /** Start without waiting (a oneshot that runs long, such as nodeup.service itself). */
  readonly noBlock?: boolean;
  readonly after?: readonly TaskKey[];
  readonly notify?: readonly TaskKey[];
}

interface UnitActual {
  readonly contentHash: string | undefined;
  readonly dropinHashes: Readonly<Record<string, string | undefined>>;
  readonly enabled: boolean;
  readonly active: boolean | undefined; // undefined when not live
}

const reloads = new WeakMap<Host, { dirty: boolean; running: Promise<void> | undefined }>();

/** Marks systemd's view stale; the next ensureReloaded() runs one daemon-reload for all. */
function markDirty(host: Host): void {
  const s = reloads.get(host) ?? { dirty: false, running: undefined };
  s.dirty = true;
  reloads.set(host, s);
}

async function ensureReloaded(host: Host): Promise<void> {
  const s = reloads.get(host);
  if (!s) return;
  while (s.dirty || s.running) {
    if (s.running) {
      await s.running;
      continue;
    }
    s.dirty = false;
    s.running = host.run('systemctl', ['daemon-reload']).then(() => undefined);
    try {
      await s.running;
    } finally {
      s.running = undefined;
    }
  }
}

export class UnitTask implements Task<UnitActual> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[];
  readonly notify: readonly TaskKey[];
  readonly reaction = 'restart';
  readonly spec: UnitTaskSpec;
  private readonly unitPath: string;
  private readonly wantsLink: string;

  constructor(spec: UnitTaskSpec) {
    this.spec = spec;
    this.key = `unit:${spec.name}`;
    this.after = spec.after ?? [];
    this.notify = spec.notify ?? [];
    this.unitPath = path.join(spec.unitDir, spec.name);
    this.wantsLink = path.join('/etc/systemd/system', `${spec.wantedBy ?? 'multi-user.target'}.wants`, spec.name);
  }

  private dropinPath(name: string): string {
    return path.join(this.spec.unitDir, `${this.spec.name}.d`, name);
  }

  async observe(host: Host): Promise<UnitActual> {
    const content = this.spec.content !== undefined ? await host.fs.read(this.unitPath) : undefined;
    const dropinHashes: Record<string, string | undefined> = {};
    for (const name of Object.keys(this.spec.dropins ?? {})) {
      const d = await host.fs.read(this.dropinPath(name));
      dropinHashes[name] = d ? shortHash(d) : undefined;
    }
    const enabled = (await host.fs.stat(this.wantsLink)) !== undefined;
    let active: boolean | undefined;
    if (host.root === '/') {
      const res = await host.run('systemctl', ['is-active', '--quiet', this.spec.name], { okExitCodes: [1, 2, 3, 4] });
      active = res.exitCode === 0;
    }
    return { contentHash: content ? shortHash(content) : undefined, dropinHashes, enabled, active };
  }

  diff(actual: UnitActual | undefined): readonly Change[] {
    const out: Change[] = [];
    if (this.spec.content !== undefined) {
      const want = shortHash(this.spec.content);
      if (actual?.contentHash !== want) out.push(fieldChange('unit file', actual?.contentHash, want));
    }
    for (const [name, content] of Object.entries(this.spec.dropins ?? {})) {
      const want = shortHash(content);
      const have = actual?.dropinHashes[name];
      if (have !== want) out.push(fieldChange(`drop-in ${name}`, have, want));
    }
    if ((actual?.enabled ?? false) !== this.spec.enabled) out.push(fieldChange('enabled', String(actual?.enabled ?? false), String(this.spec.enabled)));
    if (actual?.active !== undefined && this.spec.running && !actual.active) out.push(fieldChange('active', 'false', 'true'));
    return out;
  }

  async apply(host: Host, changes: readonly Change[], ctx: ApplyContext): Promise<void> {
    const fileChanged = changes.some((c) => c.field === 'unit file' || c.field.startsWith('drop-in '));
    if (this.spec.content !== undefined && changes.some((c) => c.field === 'unit file')) {
      await host.fs.mkdirp(this.spec.unitDir, 0o755);
      await host.fs.writeAtomic(this.unitPath, this.spec.content, { mode: 0o644 });
    }
    for (const [name, content] of Object.entries(this.spec.dropins ?? {})) {
      if (!changes.some((c) => c.field === `drop-in ${name}`)) continue;
      await host.fs.mkdirp(path.dirname(this.dropinPath(name)), 0o755);
      await host.fs.writeAtomic(this.dropinPath(name), content, { mode: 0o644 });
    }
    const live = host.root === '/';
    if (fileChanged && live) markDirty(host);
    if (live) await ensureReloaded(host);
    if (changes.some((c) => c.field === 'enabled')) {
      if (live) await host.run('systemctl', [this.spec.enabled ? 'enable' : 'disable', this.spec.name]);
      else if (this.spec.enabled) {
        await host.fs.mkdirp(path.dirname(this.wantsLink), 0o755);
        await host.fs.symlink(this.unitPath, this.wantsLink);
      } else await host.fs.remove(this.wantsLink);
    }
    if (!live || !this.spec.running) {
      if (live && this.spec.noBlock && changes.some((c) => c.field === 'enabled' || c.field === 'unit file')) {
        await host.run('systemctl', ['start', '--no-block', this.spec.name]);
      }
      return;
    }
    const mustRestart = fileChanged || ctx.notifiedBy.length > 0;
    if (mustRestart) await host.run('systemctl', ['restart', ...(this.spec.noBlock ? ['--no-block'] : []), this.spec.name]);
    else if (changes.some((c) => c.field === 'active')) await host.run('systemctl', ['start', this.spec.name]);
  }

  async react(host: Host): Promise<void> {
    if (host.root !== '/' || !this.spec.running) return;
    await ensureReloaded(host);
    await host.run('systemctl', ['restart', this.spec.name]);
  }
}
