// The `sysctl` task kind: a file in /etc/sysctl.d (persists across reboots) plus, on a live node, the
// running kernel's values (`sysctl -p <file>` when a value differs). On an offline root (image bake,
// --root) only the file is managed: the kernel there is not the node's.
import * as path from 'node:path/posix';
import type { Host } from '../host/host.ts';
import { fieldChange, type ApplyContext, type Change, type Task, type TaskKey } from '../task.ts';
import { managedHeader, shortHash } from './file.ts';

export const sysctlDir = '/etc/sysctl.d';

export interface SysctlSpec {
  /** File stem: "99-kubernetes" writes /etc/sysctl.d/99-kubernetes.conf. */
  readonly name: string;
  /** Keys in dotted form (net.ipv4.ip_forward) and their values, written in this order. */
  readonly values: Readonly<Record<string, string>>;
  /** Whether the running kernel is the node's (false on offline roots). */
  readonly live: boolean;
  readonly after?: readonly TaskKey[];
  readonly notify?: readonly TaskKey[];
}

interface SysctlActual {
  readonly fileHash: string | undefined;
  /** Running values by key (undefined: not visible, e.g. the module providing it is not loaded). */
  readonly running: Readonly<Record<string, string | undefined>>;
}

/** The sysctl.d file for these values. Pure. */
export function renderSysctlFile(values: Readonly<Record<string, string>>): string {
  return [`# ${managedHeader}`, ...Object.entries(values).map(([k, v]) => `${k} = ${v}`)].join('\n') + '\n';
}

/** /proc/sys path of a dotted key. Pure. */
export function procSysPath(key: string): string {
  return `/proc/sys/${key.replace(/\./g, '/')}`;
}

/** Kernel output uses tabs between fields of multi-value keys; the file uses spaces. Pure. */
function normalize(v: string): string {
  return v.trim().split(/\s+/).join(' ');
}

export class SysctlTask implements Task<SysctlActual> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[];
  readonly notify: readonly TaskKey[];
  readonly path: string;
  readonly spec: SysctlSpec;
  readonly content: string;
  constructor(spec: SysctlSpec) {
    this.spec = spec;
    this.path = path.join(sysctlDir, `${spec.name}.conf`);
    this.key = `sysctl:${this.path}`;
    this.after = spec.after ?? [];
    this.notify = spec.notify ?? [];
    this.content = renderSysctlFile(spec.values);
  }

  async observe(host: Host): Promise<SysctlActual> {
    const file = await host.fs.read(this.path);
    const running: Record<string, string | undefined> = {};
    if (this.spec.live) {
      for (const k of Object.keys(this.spec.values)) {
        const v = await host.fs.read(procSysPath(k));
        running[k] = v === undefined ? undefined : normalize(v.toString('utf8'));
      }
    }
    return { fileHash: file ? shortHash(file) : undefined, running };
  }

  diff(actual: SysctlActual | undefined): readonly Change[] {
    const out: Change[] = [];
    const want = shortHash(this.content);
    if (actual?.fileHash !== want) out.push(fieldChange('file', actual?.fileHash, want));
    if (this.spec.live) {
      for (const [k, v] of Object.entries(this.spec.values)) {
        const have = actual?.running[k];
        if (have !== normalize(v)) out.push(fieldChange(k, have ?? '(not set)', normalize(v)));
      }
    }
    return out;
  }

  async apply(host: Host, changes: readonly Change[], _ctx: ApplyContext): Promise<void> {
    if (changes.some((c) => c.field === 'file')) {
      await host.fs.mkdirp(sysctlDir, 0o755);
      await host.fs.writeAtomic(this.path, this.content, { mode: 0o644 });
    }
    if (this.spec.live) await host.run('sysctl', ['-p', this.path]);
  }
}
