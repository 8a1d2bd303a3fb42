// file:// state store: a directory. Writes are atomic and durable (temp file, fsync, rename or
// link, fsync of the directory); create-only writes use link(), so two processes racing for a lock
// get one winner.
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentError } from '../engine/errors.ts';
import { syncDir, syncFile } from '../engine/host/fsync.ts';
import type { StateStore, WriteStoreOptions } from '../engine/state-store.ts';

export class FileStore implements StateStore {
  readonly url: string;
  readonly writable = true;
  private readonly dir: string;

  constructor(url: string) {
    this.url = url.replace(/\/+$/, '');
    this.dir = fileURLToPath(this.url);
  }

  private pathOf(key: string): string {
    const full = path.join(this.dir, key);
    if (path.relative(this.dir, full).startsWith('..')) {
      throw new AgentError('STATE_STORE', `state store key escapes the store: ${key}`, { details: { key } });
    }
    return full;
  }

  async read(key: string): Promise<Buffer | undefined> {
    try {
      return await fsp.readFile(this.pathOf(key));
    } catch (err: unknown) {
      const code = (err as { code?: string }).code;
      if (code === 'ENOENT') return undefined;
      if (code === 'ENOTDIR' || code === 'EISDIR') return undefined;
      throw new AgentError('STATE_STORE', `state store ${this.url}: cannot read ${key}: ${code ?? String(err)}`, { cause: err, details: { key } });
    }
  }

  async write(key: string, data: string | Buffer, opts: WriteStoreOptions = {}): Promise<boolean> {
    const full = this.pathOf(key);
    const mode = opts.secret ? 0o600 : 0o644;
    try {
      await fsp.mkdir(path.dirname(full), { recursive: true, mode: 0o755 });
      // The content reaches the disk before its name does, and the name before we return: a power
      // cut never leaves an empty or torn object (the power-cut VM scenario found an empty etcd
      // `created` marker on the embedded file:// store).
      const tmp = `${full}.tmp-${randomBytes(6).toString('hex')}`;
      await fsp.writeFile(tmp, data, { mode, flag: 'wx' });
      await syncFile(tmp);
      if (opts.ifAbsent) {
        // link() the temp file into place: link fails if the key exists, so the winner's file is
        // complete the moment it appears.
        try {
          await fsp.link(tmp, full);
          await syncDir(path.dirname(full));
          return true;
        } catch (err: unknown) {
          if ((err as { code?: string }).code === 'EEXIST') return false;
          throw err;
        } finally {
          await fsp.rm(tmp, { force: true });
        }
      }
      await fsp.rename(tmp, full);
      await syncDir(path.dirname(full));
      return true;
    } catch (err: unknown) {
      const code = (err as { code?: string }).code;
      throw new AgentError('STATE_STORE', `state store ${this.url}: cannot write ${key}: ${code ?? String(err)}`, { cause: err, details: { key } });
    }
  }

  async list(prefix: string): Promise<readonly string[]> {
    const out: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const full = path.join(dir, e.name);
        if (e.isDirectory()) await walk(full);
        else if (!e.name.includes('.tmp-')) out.push(path.relative(this.dir, full).split(path.sep).join('/'));
      }
    };
    await walk(this.dir);
    return out.filter((k) => k.startsWith(prefix)).sort();
  }

  async remove(key: string): Promise<void> {
    await fsp.rm(this.pathOf(key), { force: true });
  }
}
