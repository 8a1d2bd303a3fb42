// Durability helpers of the host facade: fsync a file before its rename and its directory after.
// Public engine API: NodeHost's atomic writes and the file:// state store both use them.
import * as fsp from 'node:fs/promises';

/** Flushes a file's data to the disk (before it is renamed into place). */
export async function syncFile(p: string): Promise<void> {
  const fh = await fsp.open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Flushes a directory entry (after a rename) so a power cut keeps the new name; best effort. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  try {
    await fh.sync();
  } catch {
    // some filesystems refuse fsync on a directory: the data itself is already synced
  } finally {
    await fh.close();
  }
}
