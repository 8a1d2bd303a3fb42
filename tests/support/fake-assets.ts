// Test helper: the one way tests make release assets: small files and reproducible tar.gz archives
// in a temp dir, served as file:// URLs with their real SHA-256 (what spec.assets.overrides takes).
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tar from 'tar';

export interface FakeAsset {
  readonly urls: string[];
  readonly sha256: string;
}

export const sha256Of = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** `dir/name` holding `content`. */
export async function fakeFile(dir: string, name: string, content: string): Promise<FakeAsset> {
  const file = path.join(dir, name);
  await fsp.writeFile(file, content);
  return { urls: [pathToFileURL(file).href], sha256: sha256Of(content) };
}

/**
 * `dir/name.tar.gz` holding `members` (names, each then a small script; or name -> content), all
 * executable, reproducible (mtime 0, portable headers). `prefix` goes before each member's path
 * in the archive (CNI plugin archives list `./bridge`).
 */
export async function fakeArchive(dir: string, name: string, members: readonly string[] | Readonly<Record<string, string>>, opts: { prefix?: string } = {}): Promise<FakeAsset> {
  const entries: [string, string][] = Array.isArray(members) ? members.map((m) => [m, `#!/bin/sh\necho fake ${m}\n`]) : Object.entries(members);
  const src = path.join(dir, `${name}.src`);
  for (const [m, content] of entries) {
    const p = path.join(src, m);
    await fsp.mkdir(path.dirname(p), { recursive: true });
    await fsp.writeFile(p, content, { mode: 0o755 });
  }
  const file = path.join(dir, `${name}.tar.gz`);
  await tar.c({ gzip: true, file, cwd: src, portable: true, mtime: new Date(0) }, entries.map(([m]) => `${opts.prefix ?? ''}${m}`));
  return { urls: [pathToFileURL(file).href], sha256: sha256Of(await fsp.readFile(file)) };
}
