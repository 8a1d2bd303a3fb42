// The `kmod` task kind: kernel modules listed in /etc/modules-load.d (systemd-modules-load loads them
// at every boot) and, on a live node, loaded now with modprobe. On an offline root only the file is
// managed. A module counts as loaded when /sys/module/<name> exists (also true for built-ins).
import * as path from 'node:path/posix';
import type { Host } from '../host/host.ts';
import { fieldChange, type ApplyContext, type Change, type Task, type TaskKey } from '../task.ts';
import { managedHeader, shortHash } from './file.ts';

export const modulesLoadDir = '/etc/modules-load.d';

export interface KmodSpec {
  /** File stem: "kubernetes" writes /etc/modules-load.d/kubernetes.conf. */
  readonly name: string;
  readonly modules: readonly string[];
  /** Whether the running kernel is the node's (false on offline roots). */
  readonly live: boolean;
  readonly after?: readonly TaskKey[];
  readonly notify?: readonly TaskKey[];
}

interface KmodActual {
  readonly fileHash: string | undefined;
  readonly loaded: Readonly<Record<string, boolean>>;
}

/** The modules-load.d file. Pure. */
export function renderModulesLoadFile(modules: readonly string[]): string {
  return [`# ${managedHeader}`, ...modules].join('\n') + '\n';
}

/** /sys/module spells module names with underscores. Pure. */
function sysModulePath(name: string): string {
  return `/sys/module/${name.replace(/-/g, '_')}`;
}

export class KmodTask implements Task<KmodActual> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[];
  readonly notify: readonly TaskKey[];
  readonly path: string;
  readonly spec: KmodSpec;
  readonly content: string;
  constructor(spec: KmodSpec) {
    this.spec = spec;
    this.path = path.join(modulesLoadDir, `${spec.name}.conf`);
    this.key = `kmod:${this.path}`;
    this.after = spec.after ?? [];
    this.notify = spec.notify ?? [];
    this.content = renderModulesLoadFile(spec.modules);
  }

  async observe(host: Host): Promise<KmodActual> {
    const file = await host.fs.read(this.path);
    const loaded: Record<string, boolean> = {};
    if (this.spec.live) {
      for (const m of this.spec.modules) loaded[m] = (await host.fs.stat(sysModulePath(m))) !== undefined;
    }
    return { fileHash: file ? shortHash(file) : undefined, loaded };
  }

  diff(actual: KmodActual | undefined): readonly Change[] {
    const out: Change[] = [];
    const want = shortHash(this.content);
    if (actual?.fileHash !== want) out.push(fieldChange('file', actual?.fileHash, want));
    if (this.spec.live) {
      for (const m of this.spec.modules) if (!actual?.loaded[m]) out.push(fieldChange(`module ${m}`, 'not loaded', 'loaded'));
    }
    return out;
  }

  async apply(host: Host, changes: readonly Change[], _ctx: ApplyContext): Promise<void> {
    if (changes.some((c) => c.field === 'file')) {
      await host.fs.mkdirp(modulesLoadDir, 0o755);
      await host.fs.writeAtomic(this.path, this.content, { mode: 0o644 });
    }
    if (!this.spec.live) return;
    for (const m of this.spec.modules) {
      if (changes.some((c) => c.field === `module ${m}`)) await host.run('modprobe', [m]);
    }
  }
}
