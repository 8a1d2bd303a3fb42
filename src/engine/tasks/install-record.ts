// A stat cache for large installed files (binaries): a converged run compares size and mtime with
// the record written at install time instead of re-hashing hundreds of megabytes. A file whose stat
// differs from its record is hashed again, so drift is still found.
import { createHash } from 'node:crypto';
import type { Host } from '../host/host.ts';

export const installRecordDir = '/var/lib/nodeup/installed';

interface InstallRecord {
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
  readonly mtimeMs: number;
}

function recordPath(p: string): string {
  return `${installRecordDir}/${createHash('sha256').update(p).digest('hex').slice(0, 24)}.json`;
}

/** The SHA-256 of the file at `p`, from its install record when the stat still matches. */
export async function installedHash(host: Host, p: string): Promise<string | undefined> {
  const st = await host.fs.stat(p);
  if (!st || st.kind !== 'file') return undefined;
  const raw = await host.fs.read(recordPath(p));
  if (raw) {
    try {
      const rec = JSON.parse(raw.toString('utf8')) as InstallRecord;
      if (rec.path === p && rec.size === st.size && rec.mtimeMs === st.mtimeMs) return rec.sha256;
    } catch {
      // a damaged record is just a cache miss
    }
  }
  return host.hashFile(p);
}

export async function recordInstall(host: Host, p: string, sha256: string): Promise<void> {
  const st = await host.fs.stat(p);
  if (!st) return;
  await host.fs.mkdirp(installRecordDir, 0o755);
  const rec: InstallRecord = { path: p, sha256, size: st.size, mtimeMs: st.mtimeMs };
  await host.fs.writeAtomic(recordPath(p), JSON.stringify(rec) + '\n', { mode: 0o644 });
}
