// Verified assets: `download` installs one file from the content-addressed cache; `archive`
// installs selected members of a cached tar archive. Every asset carries a SHA-256; the bytes are
// verified before anything reaches its final path, and nothing half-written is left behind.
import * as path from 'node:path/posix';
import type { AssetSource, Host } from '../host/host.ts';
import { fieldChange, octal, type Change, type Task, type TaskKey } from '../task.ts';
import { installedHash, recordInstall } from './install-record.ts';

function short(h: string | undefined): string {
  return h ? `sha256:${h.slice(0, 12)}` : 'missing';
}

export interface DownloadSpec {
  readonly asset: AssetSource;
  readonly path: string;
  readonly mode: number;
  readonly after?: readonly TaskKey[];
  readonly notify?: readonly TaskKey[];
}

interface InstalledFile {
  readonly sha256: string | undefined;
  readonly mode: number | undefined;
  readonly cached: boolean;
}

export class DownloadTask implements Task<InstalledFile> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[];
  readonly notify: readonly TaskKey[];
  readonly path: string;
  readonly spec: DownloadSpec;
  constructor(spec: DownloadSpec) {
    this.spec = spec;
    this.key = `download:${spec.path}`;
    this.path = spec.path;
    this.after = spec.after ?? [];
    this.notify = spec.notify ?? [];
  }
  async observe(host: Host): Promise<InstalledFile | undefined> {
    const st = await host.fs.stat(this.spec.path);
    const cached = (await host.cachedAsset(this.spec.asset.sha256)) !== undefined;
    if (!st) return { sha256: undefined, mode: undefined, cached };
    return { sha256: await installedHash(host, this.spec.path), mode: st.mode, cached };
  }
  diff(actual: InstalledFile | undefined): readonly Change[] {
    const want = this.spec.asset.sha256;
    if (!actual || actual.sha256 !== want) {
      const how = actual?.cached ? 'from cache' : `download ${this.spec.asset.name}`;
      return [fieldChange('content', actual?.sha256 ? short(actual.sha256) : undefined, `${short(want)} (${how})`)];
    }
    if (actual.mode !== this.spec.mode) return [fieldChange('mode', octal(actual.mode ?? 0), octal(this.spec.mode))];
    return [];
  }
  async apply(host: Host, changes: readonly Change[]): Promise<void> {
    if (changes.some((c) => c.field === 'content')) {
      const cached = await host.fetchAsset(this.spec.asset);
      await host.fs.mkdirp(path.dirname(this.spec.path), 0o755);
      await host.fs.installFile(cached, this.spec.path, { mode: this.spec.mode });
      await recordInstall(host, this.spec.path, this.spec.asset.sha256);
    } else {
      await host.fs.chmod(this.spec.path, this.spec.mode);
    }
  }
}

export interface ArchiveMember {
  /** Path inside the archive, e.g. "bin/containerd". */
  readonly member: string;
  readonly path: string;
  readonly mode: number;
}

export interface ArchiveSpec {
  /** Stable identity for the key, e.g. "containerd". */
  readonly name: string;
  readonly asset: AssetSource;
  readonly members: readonly ArchiveMember[];
  readonly after?: readonly TaskKey[];
  readonly notify?: readonly TaskKey[];
}

interface ArchiveActual {
  readonly installed: ReadonlyMap<string, string | undefined>; // node path -> sha256
  readonly modes: ReadonlyMap<string, number | undefined>;
  readonly recorded: ReadonlyMap<string, string | undefined>; // node path -> archive sha256 it came from
}

const recordFile = (name: string): string => `/var/lib/nodeup/archives/${name}.json`;

/**
 * Installs members of an archive. The archive's own SHA-256 is verified; the installed members are
 * tied to it by a record, so a new archive version re-installs every member and drift of one file
 * (changed bytes) is found by its stat cache.
 */
export class ArchiveTask implements Task<ArchiveActual> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[];
  readonly notify: readonly TaskKey[];
  readonly ownedPaths: readonly string[];
  readonly spec: ArchiveSpec;
  constructor(spec: ArchiveSpec) {
    this.spec = spec;
    this.key = `archive:${spec.name}`;
    this.ownedPaths = spec.members.map((m) => m.path);
    this.after = spec.after ?? [];
    this.notify = spec.notify ?? [];
  }
  async observe(host: Host): Promise<ArchiveActual> {
    const raw = await host.fs.read(recordFile(this.spec.name));
    let rec: Record<string, { archive: string; sha256: string }> = {};
    if (raw) {
      try {
        rec = JSON.parse(raw.toString('utf8')) as typeof rec;
      } catch {
        rec = {};
      }
    }
    const installed = new Map<string, string | undefined>();
    const modes = new Map<string, number | undefined>();
    const recorded = new Map<string, string | undefined>();
    for (const m of this.spec.members) {
      const st = await host.fs.stat(m.path);
      modes.set(m.path, st?.mode);
      const r = rec[m.path];
      const sha = st ? await installedHash(host, m.path) : undefined;
      installed.set(m.path, sha);
      recorded.set(m.path, r && r.sha256 === sha ? r.archive : undefined);
    }
    return { installed, modes, recorded };
  }
  diff(actual: ArchiveActual | undefined): readonly Change[] {
    const out: Change[] = [];
    for (const m of this.spec.members) {
      const from = actual?.recorded.get(m.path);
      if (from !== this.spec.asset.sha256) {
        out.push(fieldChange(m.path, actual?.installed.get(m.path) ? short(actual.installed.get(m.path)) : undefined, `${m.member} from ${this.spec.asset.name}`));
      } else if (actual?.modes.get(m.path) !== m.mode) {
        out.push(fieldChange(`${m.path} mode`, octal(actual?.modes.get(m.path) ?? 0), octal(m.mode)));
      }
    }
    return out;
  }
  async apply(host: Host, changes: readonly Change[]): Promise<void> {
    const cached = await host.fetchAsset(this.spec.asset);
    const wanted = this.spec.members.filter((m) => changes.some((c) => c.field === m.path || c.field === `${m.path} mode`));
    const extracted = await host.extractMembers(cached, wanted.map((m) => m.member));
    try {
      const raw = await host.fs.read(recordFile(this.spec.name));
      const rec = raw ? (JSON.parse(raw.toString('utf8')) as Record<string, { archive: string; sha256: string }>) : {};
      for (const m of wanted) {
        const src = extracted.get(m.member.replace(/^\.\//, '')) as string;
        await host.fs.mkdirp(path.dirname(m.path), 0o755);
        await host.fs.installFile(src, m.path, { mode: m.mode });
        const sha = (await host.hashFile(m.path)) as string;
        await recordInstall(host, m.path, sha);
        rec[m.path] = { archive: this.spec.asset.sha256, sha256: sha };
      }
      await host.fs.mkdirp('/var/lib/nodeup/archives', 0o755);
      await host.fs.writeAtomic(recordFile(this.spec.name), JSON.stringify(rec, null, 2) + '\n', { mode: 0o644 });
    } finally {
      await host.cleanupExtract(extracted);
    }
  }
}
