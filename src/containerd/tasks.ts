// Two small task shapes the containerd component needs beyond the generic kinds:
// - AbsentFileTask: a file nodeup once wrote (or had containerd write) and must now remove (the
//   bridge CNI config or template after switching `cni` or `bridge.podSubnet`);
// - ManagedDirTask: a directory whose nodeup-managed entries nodeup prunes when they are no longer
//   wanted (certs.d/<registry>/hosts.toml, conf.d/*.toml). Entries without nodeup's managed header
//   belong to the user and are never touched.
import * as path from 'node:path/posix';
import type { Host } from '../engine/host/host.ts';
import { managedHeader } from '../engine/tasks/file.ts';
import { fieldChange, octal, type Change, type Task, type TaskKey } from '../engine/task.ts';

export interface AbsentFileSpec {
  readonly path: string;
  /** Remove the file only when its content includes this text (a file another program wrote from nodeup's input). */
  readonly onlyIfContains?: string;
  readonly notify?: readonly TaskKey[];
}

export class AbsentFileTask implements Task<boolean> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[] = [];
  readonly notify: readonly TaskKey[];
  readonly path: string;
  private readonly onlyIfContains: string | undefined;
  constructor(spec: AbsentFileSpec) {
    this.key = `file:${spec.path}`;
    this.path = spec.path;
    this.onlyIfContains = spec.onlyIfContains;
    this.notify = spec.notify ?? [];
  }
  async observe(host: Host): Promise<boolean> {
    if (this.onlyIfContains === undefined) return (await host.fs.stat(this.path)) !== undefined;
    return (await host.fs.read(this.path))?.toString('utf8').includes(this.onlyIfContains) ?? false;
  }
  diff(present: boolean | undefined): readonly Change[] {
    return present ? [{ field: 'remove', from: 'present', to: 'absent' }] : [];
  }
  async apply(host: Host): Promise<void> {
    await host.fs.remove(this.path);
  }
}

export interface ManagedDirSpec {
  readonly path: string;
  readonly mode: number;
  /** Entries (relative paths of files) nodeup wants; other managed entries are removed. */
  readonly keep: readonly string[];
  /** How entries look: `sub` = <name>/<file> (certs.d), `flat` = files matching a suffix (conf.d). */
  readonly layout: { readonly kind: 'sub'; readonly file: string } | { readonly kind: 'flat'; readonly suffix: string };
  readonly notify?: readonly TaskKey[];
}

interface ManagedDirActual {
  readonly mode: number | undefined;
  readonly kind: string | undefined;
  /** Managed entries present that nodeup no longer wants. */
  readonly stale: readonly string[];
}

const isManaged = (data: Buffer | undefined): boolean => data !== undefined && data.subarray(0, 400).toString('utf8').includes(managedHeader);

export class ManagedDirTask implements Task<ManagedDirActual> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[] = [];
  readonly notify: readonly TaskKey[];
  readonly path: string;
  private readonly spec: ManagedDirSpec;
  constructor(spec: ManagedDirSpec) {
    this.spec = spec;
    this.key = `dir:${spec.path}`;
    this.path = spec.path;
    this.notify = spec.notify ?? [];
  }
  async observe(host: Host): Promise<ManagedDirActual> {
    const st = await host.fs.stat(this.path);
    if (!st) return { mode: undefined, kind: undefined, stale: [] };
    const keep = new Set(this.spec.keep);
    const stale: string[] = [];
    for (const name of await host.fs.list(this.path)) {
      const rel = this.spec.layout.kind === 'sub' ? `${name}/${this.spec.layout.file}` : name;
      if (this.spec.layout.kind === 'flat' && !name.endsWith(this.spec.layout.suffix)) continue;
      if (keep.has(rel)) continue;
      if ((await host.fs.stat(path.join(this.path, rel)))?.kind !== 'file') continue;
      if (isManaged(await host.fs.read(path.join(this.path, rel)))) stale.push(rel);
    }
    return { mode: st.mode, kind: st.kind, stale: stale.sort() };
  }
  diff(actual: ManagedDirActual | undefined): readonly Change[] {
    if (!actual || actual.kind === undefined) return [{ field: 'create', to: `directory mode ${octal(this.spec.mode)}` }];
    const out: Change[] = [];
    if (actual.kind !== 'dir') out.push(fieldChange('kind', actual.kind, 'dir'));
    else if (actual.mode !== this.spec.mode) out.push(fieldChange('mode', octal(actual.mode ?? 0), octal(this.spec.mode)));
    for (const s of actual.stale) out.push({ field: `remove ${s}`, from: 'managed by nodeup', to: 'absent' });
    return out;
  }
  async apply(host: Host, changes: readonly Change[]): Promise<void> {
    if (changes.some((c) => c.field === 'kind')) await host.fs.remove(this.path);
    await host.fs.mkdirp(this.path, this.spec.mode);
    await host.fs.chmod(this.path, this.spec.mode);
    for (const c of changes) {
      if (!c.field.startsWith('remove ')) continue;
      const rel = c.field.slice('remove '.length);
      await host.fs.remove(path.join(this.path, rel));
      // A certs.d/<registry> folder nodeup made is removed with its hosts.toml when left empty.
      if (this.spec.layout.kind === 'sub') {
        const dir = path.join(this.path, path.dirname(rel));
        if ((await host.fs.list(dir)).length === 0) await host.fs.remove(dir);
      }
    }
  }
}
