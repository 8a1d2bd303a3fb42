// Layer: engine (README "How it works"). Imports no project layer above it: only src/engine.
// Generic file-system task kinds: file, dir, symlink. Content is compared by hash, so the plan never
// prints file contents (private keys stay out of plans and logs).
import { createHash } from 'node:crypto';
import * as path from 'node:path/posix';
import type { Host, FileStat } from '../host/host.ts';
import { fieldChange, octal, type ApplyContext, type Change, type Task, type TaskKey } from '../task.ts';

export const managedHeader = 'Managed by nodeup: local edits are replaced on the next run.';

export function shortHash(data: string | Buffer): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex').slice(0, 12);
}

interface Common {
  readonly after?: readonly TaskKey[];
  readonly notify?: readonly TaskKey[];
}

export interface FileSpec extends Common {
  readonly path: string;
  readonly content: string | Buffer;
  readonly mode: number;
  readonly uid?: number;
  readonly gid?: number;
  /** Only create the file; never replace content a user or another tool wrote (e.g. a token). */
  readonly ifNotExists?: boolean;
}

interface FileActual {
  readonly stat: FileStat;
  readonly hash: string;
}

export class FileTask implements Task<FileActual> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[];
  readonly notify: readonly TaskKey[];
  readonly path: string;
  private readonly spec: FileSpec;
  private readonly hash: string;
  constructor(spec: FileSpec) {
    this.spec = spec;
    this.key = `file:${spec.path}`;
    this.path = spec.path;
    this.after = spec.after ?? [];
    this.notify = spec.notify ?? [];
    this.hash = shortHash(spec.content);
  }
  async observe(host: Host): Promise<FileActual | undefined> {
    const stat = await host.fs.stat(this.spec.path);
    if (!stat) return undefined;
    const data = stat.kind === 'file' ? await host.fs.read(this.spec.path) : undefined;
    return { stat, hash: data ? shortHash(data) : `(${stat.kind})` };
  }
  diff(actual: FileActual | undefined): readonly Change[] {
    const uid = this.spec.uid ?? 0;
    const gid = this.spec.gid ?? 0;
    if (!actual) return [{ field: 'create', to: `${this.hash} mode ${octal(this.spec.mode)}` }];
    const out: Change[] = [];
    if (actual.hash !== this.hash && !this.spec.ifNotExists) out.push(fieldChange('content', actual.hash, this.hash));
    if (actual.stat.mode !== this.spec.mode) out.push(fieldChange('mode', octal(actual.stat.mode), octal(this.spec.mode)));
    if (actual.stat.uid !== uid || actual.stat.gid !== gid) {
      out.push(fieldChange('owner', `${actual.stat.uid}:${actual.stat.gid}`, `${uid}:${gid}`));
    }
    return out;
  }
  async apply(host: Host, changes: readonly Change[], _ctx: ApplyContext): Promise<void> {
    const opts = { mode: this.spec.mode, uid: this.spec.uid ?? 0, gid: this.spec.gid ?? 0 };
    if (changes.some((c) => c.field === 'create' || c.field === 'content')) {
      await host.fs.mkdirp(path.dirname(this.spec.path), 0o755);
      await host.fs.writeAtomic(this.spec.path, this.spec.content, opts);
      return;
    }
    if (changes.some((c) => c.field === 'mode')) await host.fs.chmod(this.spec.path, opts.mode);
    if (changes.some((c) => c.field === 'owner')) await host.fs.chown(this.spec.path, opts.uid, opts.gid);
  }
}

export interface DirSpec extends Common {
  readonly path: string;
  readonly mode: number;
  readonly uid?: number;
  readonly gid?: number;
}

export class DirTask implements Task<FileStat> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[];
  readonly notify: readonly TaskKey[];
  readonly path: string;
  private readonly spec: DirSpec;
  constructor(spec: DirSpec) {
    this.spec = spec;
    this.key = `dir:${spec.path}`;
    this.path = spec.path;
    this.after = spec.after ?? [];
    this.notify = spec.notify ?? [];
  }
  observe(host: Host): Promise<FileStat | undefined> {
    return host.fs.stat(this.spec.path);
  }
  diff(actual: FileStat | undefined): readonly Change[] {
    if (!actual) return [{ field: 'create', to: `directory mode ${octal(this.spec.mode)}` }];
    if (actual.kind !== 'dir') return [fieldChange('kind', actual.kind, 'dir')];
    const out: Change[] = [];
    if (actual.mode !== this.spec.mode) out.push(fieldChange('mode', octal(actual.mode), octal(this.spec.mode)));
    const uid = this.spec.uid ?? 0;
    const gid = this.spec.gid ?? 0;
    if (actual.uid !== uid || actual.gid !== gid) out.push(fieldChange('owner', `${actual.uid}:${actual.gid}`, `${uid}:${gid}`));
    return out;
  }
  async apply(host: Host, changes: readonly Change[]): Promise<void> {
    if (changes.some((c) => c.field === 'kind')) await host.fs.remove(this.spec.path);
    await host.fs.mkdirp(this.spec.path, this.spec.mode);
    await host.fs.chmod(this.spec.path, this.spec.mode);
    if (this.spec.uid !== undefined || this.spec.gid !== undefined) {
      await host.fs.chown(this.spec.path, this.spec.uid ?? 0, this.spec.gid ?? 0);
    }
  }
}

export interface SymlinkSpec extends Common {
  readonly path: string;
  readonly target: string;
}

export class SymlinkTask implements Task<string> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[];
  readonly notify: readonly TaskKey[];
  readonly path: string;
  private readonly spec: SymlinkSpec;
  constructor(spec: SymlinkSpec) {
    this.spec = spec;
    this.key = `symlink:${spec.path}`;
    this.path = spec.path;
    this.after = spec.after ?? [];
    this.notify = spec.notify ?? [];
  }
  async observe(host: Host): Promise<string | undefined> {
    const st = await host.fs.stat(this.spec.path);
    if (!st) return undefined;
    if (st.kind !== 'symlink') return `(${st.kind})`;
    return host.fs.readlink(this.spec.path);
  }
  diff(actual: string | undefined): readonly Change[] {
    if (actual === this.spec.target) return [];
    return [actual === undefined ? { field: 'create', to: `-> ${this.spec.target}` } : fieldChange('target', actual, this.spec.target)];
  }
  async apply(host: Host): Promise<void> {
    await host.fs.mkdirp(path.dirname(this.spec.path), 0o755);
    const st = await host.fs.stat(this.spec.path);
    if (st && st.kind === 'dir') await host.fs.remove(this.spec.path);
    await host.fs.symlink(this.spec.target, this.spec.path);
  }
}
