// Staging a mirror's files: release assets at the path a node asks a mirror for, and the nodeup
// binaries beside them. Every file is verified against its pinned SHA-256 on the way in (through
// the host's verified download: retries, the next source on a wrong hash, progress in the log) and
// only then renamed into place, so the mirror never serves a partial or wrong file. A file already
// in place is re-hashed and kept when it matches, and a download that stopped resumes from the
// bytes kept in the staging area (.nodeup-staging): a run stopped half-way goes on where it
// stopped, and a second run downloads nothing.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { AgentError, errorMessage } from '../engine/errors.ts';
import { sha256File } from '../engine/host/local.ts';
import { NodeHost } from '../engine/host/node-host.ts';
import type { Logger } from '../engine/log.ts';
import type { MirrorAsset } from './plan.ts';

export interface StagedFile {
  readonly path: string;
  readonly sha256: string;
  readonly bytes: number;
  /** downloaded (and verified), linked (the same bytes as another path), present (already there, re-verified), failed (see error). */
  readonly status: 'downloaded' | 'linked' | 'present' | 'failed';
  readonly from?: string;
  readonly error?: string;
}

/** SHA-256 of a file, undefined when it cannot be read (missing: not staged yet). */
const digestOf = (file: string): Promise<string | undefined> => sha256File(file).catch(() => undefined);

/** The mirror's staging root: downloads land in its asset cache, then move into the layout. */
export const stagingDir = '.nodeup-staging';

/**
 * Stages `assets` under `dir`. `sources`: mirror-layout base URLs to fetch from instead of each
 * asset's upstream (another mirror, an artifact proxy). Never throws for one asset: its row says
 * failed, with why.
 */
export async function stageAssets(dir: string, assets: readonly MirrorAsset[], o: { sources: readonly string[]; log: Logger }): Promise<StagedFile[]> {
  const staging = path.join(dir, stagingDir);
  const host = new NodeHost({ root: staging, log: o.log });
  // One download per hash: two paths may hold the same bytes (an override used for both architectures).
  const groups = new Map<string, MirrorAsset[]>();
  for (const a of assets) groups.set(a.sha256, [...(groups.get(a.sha256) ?? []), a]);
  const rows = new Map<string, StagedFile>();
  await Promise.all(
    [...groups.values()].map(async (group) => {
      const missing: { a: MirrorAsset; had: boolean }[] = [];
      for (const a of group) {
        const target = path.join(dir, a.path);
        const have = await digestOf(target);
        if (have === a.sha256) rows.set(a.path, { path: a.path, sha256: a.sha256, bytes: (await fsp.stat(target)).size, status: 'present' });
        else {
          if (have !== undefined) o.log.warn({ path: a.path, expected: a.sha256, actual: have }, 'a staged file does not match its pinned hash: fetching it again');
          missing.push({ a, had: have !== undefined });
        }
      }
      const first = missing[0]?.a;
      if (!first) return;
      const urls = o.sources.length > 0 ? o.sources.map((s) => `${s.replace(/\/+$/, '')}/${first.path}`) : first.upstream;
      try {
        const cached = await host.fetchAsset({ name: first.path, urls, sha256: first.sha256 });
        for (const [i, { a }] of missing.entries()) {
          const target = path.join(dir, a.path);
          await fsp.mkdir(path.dirname(target), { recursive: true });
          await fsp.rm(target, { force: true });
          await fsp.link(cached, target);
          rows.set(a.path, { path: a.path, sha256: a.sha256, bytes: (await fsp.stat(target)).size, status: i === 0 ? 'downloaded' : 'linked', from: i === 0 ? urls.join(' | ') : first.path });
        }
      } catch (err: unknown) {
        for (const { a, had } of missing) {
          // A wrong file stays out of the layout: remove what was there.
          if (had) await fsp.rm(path.join(dir, a.path), { force: true });
          rows.set(a.path, { path: a.path, sha256: a.sha256, bytes: 0, status: 'failed', error: errorMessage(err) });
        }
      }
    }),
  );
  const out = assets.map((a) => rows.get(a.path) as StagedFile);
  // The staging area keeps the parts of downloads that stopped, for the next run to resume; when
  // every file is in place it has nothing left to keep.
  if (out.every((r) => r.status !== 'failed')) await fsp.rm(staging, { recursive: true, force: true });
  return out;
}

/**
 * Copies the nodeup binaries of a build (`nodeup-linux-<arch>` with `.sha256`, and `.xz` when
 * built) to `<dir>/nodeup/<version>/`, where `nodeup userdata --mirror <mirror>/nodeup/<version>`
 * points a booting machine. Each binary is checked against its .sha256 file first.
 */
export async function stageBinaries(dir: string, dist: string, version: string): Promise<StagedFile[]> {
  const out: StagedFile[] = [];
  const dest = path.join(dir, 'nodeup', version);
  for (const arch of ['amd64', 'arm64']) {
    const base = `nodeup-linux-${arch}`;
    const sumFile = path.join(dist, `${base}.sha256`);
    const sum = (await fsp.readFile(sumFile, 'utf8').catch(() => undefined))?.trim().split(/\s+/)[0];
    if (!sum) continue;
    const actual = await digestOf(path.join(dist, base));
    if (actual !== sum) {
      throw new AgentError('CHECKSUM_MISMATCH', `--binaries ${dist}: ${base} does not match ${base}.sha256 (${sum}): rebuild it`, { details: { file: path.join(dist, base) } });
    }
    await fsp.mkdir(dest, { recursive: true });
    for (const f of [base, `${base}.sha256`, `${base}.xz`, `${base}.xz.sha256`]) {
      const src = path.join(dist, f);
      const st = await fsp.stat(src).catch(() => undefined);
      if (!st) continue;
      const to = path.join(dest, f);
      // Hashed once each: the source's hash is what the copy must have and what the row records.
      const sha256 = f === base ? sum : await sha256File(src);
      const same = (await fsp.stat(to).catch(() => undefined))?.size === st.size && (await digestOf(to)) === sha256;
      if (!same) {
        await fsp.copyFile(src, `${to}.tmp`);
        if ((await sha256File(`${to}.tmp`)) !== sha256) throw new AgentError('CHECKSUM_MISMATCH', `copying ${src} to ${to} gave other bytes: check the disk`, { details: { file: to } });
        await fsp.rename(`${to}.tmp`, to);
      }
      out.push({ path: path.posix.join('nodeup', version, f), sha256, bytes: st.size, status: same ? 'present' : 'downloaded', from: src });
    }
  }
  if (out.length === 0) throw new AgentError('USAGE', `--binaries ${dist}: no nodeup-linux-<arch> with its .sha256 there (run npm run build)`, { details: { dir: dist } });
  return out;
}
