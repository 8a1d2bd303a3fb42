// The `image` task kind: one image in containerd's k8s.io namespace (where kubelet's CRI looks).
// - archive source: the archive is a verified asset (SHA-256 checked before anything is imported),
//   imported with `ctr -n k8s.io images import` (zstd archives are decompressed through `zstd -dc`);
//   a record ties the image to the archive it came from, so the same archive is never imported
//   twice and a new archive (or a re-tagged image) is imported again.
// - pull source: pulled through the CRI (`crictl pull`), so containerd's registry mirrors apply.
// On an offline root (bake into a mounted image) an archive is only put into the asset cache under
// the root; the first boot imports it from there, with no network.
import { createHash } from 'node:crypto';
import type { AssetSource, Host } from '../engine/host/host.ts';
import { AgentError, NotReadyError } from '../engine/errors.ts';
import type { Change, Task, TaskKey } from '../engine/task.ts';

export const imageRecordDir = '/var/lib/nodeup/images';

export type ImageSource = { readonly kind: 'archive'; readonly asset: AssetSource } | { readonly kind: 'pull' };

export interface ImageTaskSpec {
  /** The image reference as containerd names it, e.g. registry.k8s.io/pause:3.10.1. */
  readonly name: string;
  readonly source: ImageSource;
  /** ctr and crictl binaries, and containerd's socket, as this machine sees them. */
  readonly ctr: string;
  readonly crictl: string;
  readonly address: string;
  /** Whether containerd can run here (false on an offline root: archives are only cached). */
  readonly live: boolean;
  /** Node path of the import records. */
  readonly recordDir?: string;
  readonly after?: readonly TaskKey[];
}

interface ImportRecord {
  readonly name: string;
  readonly archive: string;
  readonly digest: string;
}

interface ImageActual {
  /** The digest containerd lists for the name (undefined: absent, or not live). */
  readonly digest: string | undefined;
  readonly record: ImportRecord | undefined;
  readonly cached: boolean;
}

const short = (h: string): string => h.replace(/^sha256:/, '').slice(0, 12);

/** Parses `ctr images ls` output: REF TYPE DIGEST SIZE PLATFORMS LABELS. Pure. */
export function parseCtrImages(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length >= 3 && cols[2]?.startsWith('sha256:')) out.set(cols[0] as string, cols[2]);
  }
  return out;
}

const notUpRe = /connection refused|no such file or directory|connect: |context deadline exceeded|failed to dial|transport: error/i;

/** Lists the k8s.io namespace; a containerd that is not answering yet is NotReady (retried). */
export async function listImages(host: Host, ctr: string, address: string): Promise<Map<string, string>> {
  try {
    const res = await host.run(ctr, ['--address', address, '--namespace', 'k8s.io', 'images', 'ls'], { timeoutMs: 60_000 });
    return parseCtrImages(res.stdout);
  } catch (err: unknown) {
    const raw = err instanceof AgentError ? err.details.stderrTail : undefined;
    const tail = typeof raw === 'string' ? raw : '';
    if (notUpRe.test(tail)) throw new NotReadyError('containerd is not answering yet', { address, reason: tail });
    throw err;
  }
}

export class ImageTask implements Task<ImageActual> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[];
  readonly spec: ImageTaskSpec;
  private readonly recordPath: string;
  constructor(spec: ImageTaskSpec) {
    this.spec = spec;
    this.key = `image:${spec.name}`;
    this.after = spec.after ?? [];
    this.recordPath = `${spec.recordDir ?? imageRecordDir}/${createHash('sha256').update(spec.name).digest('hex').slice(0, 24)}.json`;
  }

  async observe(host: Host): Promise<ImageActual> {
    const src = this.spec.source;
    const cached = src.kind === 'archive' ? (await host.cachedAsset(src.asset.sha256)) !== undefined : false;
    if (!this.spec.live) return { digest: undefined, record: undefined, cached };
    const digest = (await listImages(host, this.spec.ctr, this.spec.address)).get(this.spec.name);
    let record: ImportRecord | undefined;
    const raw = await host.fs.read(this.recordPath);
    if (raw) {
      try {
        record = JSON.parse(raw.toString('utf8')) as ImportRecord;
      } catch {
        record = undefined; // a damaged record only means importing again
      }
    }
    return { digest, record, cached };
  }

  diff(actual: ImageActual | undefined): readonly Change[] {
    const src = this.spec.source;
    if (src.kind === 'pull') {
      if (!this.spec.live || actual?.digest !== undefined) return [];
      return [{ field: 'image', to: 'pull through the CRI' }];
    }
    const how = actual?.cached ? 'from cache' : `download ${src.asset.name}`;
    if (!this.spec.live) {
      return actual?.cached ? [] : [{ field: 'archive', to: `sha256:${short(src.asset.sha256)} (${how}; imported at first boot)` }];
    }
    const rec = actual?.record;
    const converged = actual?.digest !== undefined && rec !== undefined && rec.name === this.spec.name && rec.archive === src.asset.sha256 && rec.digest === actual.digest;
    if (converged) return [];
    const to = `import archive sha256:${short(src.asset.sha256)} (${how})`;
    return [actual?.digest ? { field: 'image', from: `sha256:${short(actual.digest)}`, to } : { field: 'image', to }];
  }

  async apply(host: Host): Promise<void> {
    const src = this.spec.source;
    if (src.kind === 'pull') {
      await host.run(this.spec.crictl, ['--runtime-endpoint', `unix://${this.spec.address}`, '--image-endpoint', `unix://${this.spec.address}`, 'pull', this.spec.name], {
        timeoutMs: 30 * 60_000,
      });
      return;
    }
    // Verified first: a wrong hash fails here (CHECKSUM_MISMATCH) and nothing reaches containerd.
    const archive = await host.fetchAsset(src.asset);
    if (!this.spec.live) return;
    const before = await listImages(host, this.spec.ctr, this.spec.address);
    const importArgs = ['--address', this.spec.address, '--namespace', 'k8s.io', 'images', 'import'];
    const magic = (await host.run('od', ['-An', '-tx1', '-N4', archive])).stdout.replace(/\s+/g, '');
    if (magic === '28b52ffd') {
      // zstd: decompressed on the way in (containerd 1.x's import reads plain tar only).
      await host.run('bash', ['-o', 'pipefail', '-c', 'zstd -dcq -- "$1" | "$2" "${@:3}" -', 'nodeup-import', archive, this.spec.ctr, ...importArgs], {
        timeoutMs: 30 * 60_000,
      });
    } else if (magic.startsWith('1f8b')) {
      throw new AgentError('CONFIG_INVALID', `image archive for ${this.spec.name} is gzip-compressed: use a plain or zstd-compressed tar`, {
        details: { image: this.spec.name, asset: src.asset.name },
      });
    } else {
      await host.run(this.spec.ctr, [...importArgs, archive], { timeoutMs: 30 * 60_000 });
    }
    const after = await listImages(host, this.spec.ctr, this.spec.address);
    const digest = after.get(this.spec.name);
    if (!digest) {
      const named = [...after.keys()].filter((k) => before.get(k) !== after.get(k)).sort();
      throw new AgentError(
        'TASK_FAILED',
        `image archive ${src.asset.name} does not name ${this.spec.name}: it imported ${named.length > 0 ? named.join(', ') : 'no new name'}; set spec.images.archives[].name to the name the archive carries`,
        { details: { image: this.spec.name, imported: named } },
      );
    }
    const dir = this.recordPath.slice(0, this.recordPath.lastIndexOf('/'));
    await host.fs.mkdirp(dir, 0o755);
    const rec: ImportRecord = { name: this.spec.name, archive: src.asset.sha256, digest };
    await host.fs.writeAtomic(this.recordPath, JSON.stringify(rec) + '\n', { mode: 0o644 });
  }
}
