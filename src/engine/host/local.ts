// Reading files of the machine itself (not under --root): the boot config and CLI inputs.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { AgentError } from '../errors.ts';

/** SHA-256 hex of a file, streamed. Throws the fs error (ENOENT, EACCES...) for callers to word. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

export async function readLocalFile(path: string, what: string): Promise<string> {
  try {
    return await fsp.readFile(path, 'utf8');
  } catch (err: unknown) {
    const code = (err as { code?: string }).code;
    throw new AgentError('CONFIG_INVALID', `cannot read ${what} ${path}: ${code === 'ENOENT' ? 'no such file' : (code ?? String(err))}`, {
      cause: err,
      details: { file: path },
    });
  }
}

export async function writeLocalFile(path: string, data: string, mode = 0o644): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await fsp.writeFile(tmp, data, { mode });
  await fsp.rename(tmp, path);
}

export async function makeLocalDir(path: string): Promise<void> {
  await fsp.mkdir(path, { recursive: true });
}
