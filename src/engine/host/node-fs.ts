// The real host's files: node:fs under a root (a live node's `/`, or an image or scratch root).
// Writes are atomic (temp file, fsync, rename, fsync of the directory).
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { AgentError } from '../errors.ts';
import { syncDir, syncFile } from './fsync.ts';
import type { FileStat, HostFs, WriteOptions } from './host.ts';
import { sha256File } from './local.ts';

/** Resolves a node path under root and refuses paths that climb out of it. */
export function resolveUnder(root: string, p: string): string {
  if (!path.isAbsolute(p)) throw new AgentError('USAGE', `node path must be absolute: ${p}`);
  const full = path.join(root, path.normalize(p));
  const rel = path.relative(root, full);
  if (rel.startsWith('..')) throw new AgentError('USAGE', `node path escapes the root: ${p}`);
  return full;
}

function toStat(s: import('node:fs').Stats): FileStat {
  const kind = s.isSymbolicLink() ? 'symlink' : s.isDirectory() ? 'dir' : s.isFile() ? 'file' : 'other';
  return { kind, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, size: s.size, mtimeMs: s.mtimeMs };
}

function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: string }).code === 'ENOENT';
}

function fsError(op: string, p: string, err: unknown): AgentError {
  const code = (err as { code?: string }).code ?? 'EUNKNOWN';
  const reason: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on device',
    ENOTDIR: 'a parent is not a directory',
    EISDIR: 'is a directory',
  };
  return new AgentError('TASK_FAILED', `cannot ${op} ${p}: ${reason[code] ?? code}`, {
    cause: err,
    details: { path: p, errno: code },
  });
}

export class NodeFs implements HostFs {
  readonly root: string;
  constructor(root: string) {
    this.root = path.resolve(root);
  }
  hostPath(p: string): string {
    return resolveUnder(this.root, p);
  }
  async read(p: string): Promise<Buffer | undefined> {
    try {
      return await fsp.readFile(this.hostPath(p));
    } catch (err: unknown) {
      if (isNotFound(err)) return undefined;
      throw fsError('read', p, err);
    }
  }
  async stat(p: string): Promise<FileStat | undefined> {
    try {
      return toStat(await fsp.lstat(this.hostPath(p)));
    } catch (err: unknown) {
      if (isNotFound(err) || (err as { code?: string }).code === 'ENOTDIR') return undefined;
      throw fsError('stat', p, err);
    }
  }
  async readlink(p: string): Promise<string | undefined> {
    try {
      return await fsp.readlink(this.hostPath(p));
    } catch (err: unknown) {
      if (isNotFound(err) || (err as { code?: string }).code === 'EINVAL') return undefined;
      throw fsError('read link', p, err);
    }
  }
  async list(dir: string): Promise<readonly string[]> {
    try {
      return (await fsp.readdir(this.hostPath(dir))).sort();
    } catch (err: unknown) {
      if (isNotFound(err)) return [];
      throw fsError('list', dir, err);
    }
  }
  private async placeAtomically(p: string, opts: WriteOptions, fill: (tmp: string) => Promise<void>): Promise<void> {
    const full = this.hostPath(p);
    const tmp = path.join(path.dirname(full), `.${path.basename(full)}.nodeup-${randomBytes(4).toString('hex')}`);
    try {
      await fill(tmp);
      await fsp.chmod(tmp, opts.mode);
      if (opts.uid !== undefined || opts.gid !== undefined) await fsp.chown(tmp, opts.uid ?? 0, opts.gid ?? 0);
      await syncFile(tmp);
      await fsp.rename(tmp, full);
      await syncDir(path.dirname(full));
    } catch (err: unknown) {
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw err instanceof AgentError ? err : fsError('write', p, err);
    }
  }
  async writeAtomic(p: string, data: string | Buffer, opts: WriteOptions): Promise<void> {
    await this.placeAtomically(p, opts, (tmp) => fsp.writeFile(tmp, data, { mode: 0o600, flag: 'wx' }));
  }
  async installFile(source: string, p: string, opts: WriteOptions): Promise<void> {
    await this.placeAtomically(p, opts, (tmp) => fsp.copyFile(source, tmp));
  }
  async mkdirp(p: string, mode: number): Promise<void> {
    const full = this.hostPath(p);
    try {
      const existed = await fsp.stat(full).then(
        () => true,
        () => false,
      );
      await fsp.mkdir(full, { recursive: true, mode });
      if (!existed) await fsp.chmod(full, mode);
    } catch (err: unknown) {
      throw fsError('create directory', p, err);
    }
  }
  async chmod(p: string, mode: number): Promise<void> {
    try {
      await fsp.chmod(this.hostPath(p), mode);
    } catch (err: unknown) {
      throw fsError('chmod', p, err);
    }
  }
  async chown(p: string, uid: number, gid: number): Promise<void> {
    try {
      await fsp.lchown(this.hostPath(p), uid, gid);
    } catch (err: unknown) {
      throw fsError('chown', p, err);
    }
  }
  async symlink(target: string, p: string): Promise<void> {
    const full = this.hostPath(p);
    const tmp = `${full}.nodeup-${randomBytes(4).toString('hex')}`;
    try {
      await fsp.symlink(target, tmp);
      await fsp.rename(tmp, full);
    } catch (err: unknown) {
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw fsError('link', p, err);
    }
  }
  async remove(p: string): Promise<void> {
    try {
      await fsp.rm(this.hostPath(p), { recursive: true, force: true });
    } catch (err: unknown) {
      throw fsError('remove', p, err);
    }
  }

  /** SHA-256 hex of a file under the root; undefined when it does not exist. */
  async hash(p: string): Promise<string | undefined> {
    try {
      return await sha256File(this.hostPath(p));
    } catch (err: unknown) {
      if (isNotFound(err)) return undefined;
      throw fsError('read', p, err);
    }
  }
}
