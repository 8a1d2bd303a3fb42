// Reading files of the machine itself (not under --root): the boot config and CLI inputs.
import * as fsp from 'node:fs/promises';
import { AgentError } from '../errors.ts';

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
