// Shared by the kubelet golden tests: small fake release assets (file:// URLs with their real
// SHA-256), and a listing of what a run wrote into a test root.
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestHost } from '../support/test-host.ts';
import { fakeFile } from '../support/fake-assets.ts';

export interface FakeAssets {
  readonly dir: string;
  /** spec.assets.overrides for kubelet and kubectl. */
  readonly overrides: Record<string, { version: string; urls: string[]; sha256: string }>;
  dispose(): Promise<void>;
}

export async function fakeKubeAssets(version: string): Promise<FakeAssets> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-assets-'));
  const overrides: FakeAssets['overrides'] = {};
  for (const name of ['kubelet', 'kubectl']) {
    const a = await fakeFile(dir, `${name}-${version}`, `#!/bin/sh\n# fake ${name} ${version}\necho ${name} ${version}\n`);
    overrides[name] = { version: version.replace(/^v/, ''), ...a };
  }
  return { dir, overrides, dispose: () => fsp.rm(dir, { recursive: true, force: true }) };
}

/** Paths a run wrote that are not rendered text: caches, install records, binaries, the fixture. */
export function isRenderedFile(rel: string): boolean {
  return !(
    rel.startsWith('var/cache/') ||
    rel.startsWith('var/lib/nodeup/') ||
    rel.startsWith('usr/') ||
    rel.startsWith('opt/') ||
    rel === 'etc/os-release' ||
    rel.startsWith('etc/systemd/system/multi-user.target.wants/')
  );
}

/** `<mode> <path>` for every file and symlink under the root (symlinks with their target). */
export async function treeListing(host: TestHost): Promise<string> {
  const lines: string[] = [];
  for (const rel of await host.tree()) {
    const full = path.join(host.root, rel);
    const st = await fsp.lstat(full);
    if (st.isSymbolicLink()) lines.push(`link /${rel} -> ${await fsp.readlink(full)}`);
    else lines.push(`${(st.mode & 0o7777).toString(8).padStart(4, '0')} /${rel}`);
  }
  return lines.join('\n') + '\n';
}

/** mtime of every regular file under the root, by relative path. */
export async function mtimes(host: TestHost): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const rel of await host.tree()) {
    const st = await fsp.lstat(path.join(host.root, rel));
    if (st.isFile()) out.set(rel, st.mtimeMs);
  }
  return out;
}
