// Staging a mirror's container images with skopeo (packaged by Debian, Ubuntu and the RHEL
// family; it speaks every registry's auth, copies whole multi-arch indexes, skips blobs the
// destination already has, and keeps digests, so a node's pinned or tag pull resolves to the same
// bytes). Into a registry: `<registry>/<repository>:<tag>`, the repository path kept, which is what
// a node asks when containerd's hosts.toml sends `registry.k8s.io` (or any registry) to the mirror
// (spec.containerd.registryMirrors). Into an OCI image layout: one directory holding every image,
// named by its full reference, to carry into an air gap and push there.
import type { Logger } from '../engine/log.ts';
import { AgentError } from '../engine/errors.ts';
import type { Host } from '../engine/host/host.ts';

export type ImageDestination = { readonly kind: 'registry'; readonly registry: string; readonly insecure: boolean } | { readonly kind: 'oci'; readonly dir: string };

export interface ImageSource {
  /** `registry.k8s.io=127.0.0.1:5000`: read that registry's images from another one (plain HTTP allowed). */
  readonly from: string;
  readonly to: string;
}

export interface StagedImage {
  readonly image: string;
  readonly destination: string;
  readonly status: 'copied' | 'failed';
  readonly seconds: number;
  readonly error?: string;
}

/** `registry.k8s.io/kube-proxy:v1.35.4` -> registry `registry.k8s.io`, rest `kube-proxy:v1.35.4` (docker.io for a bare name). Pure. */
export function splitImage(ref: string): { registry: string; rest: string } {
  const slash = ref.indexOf('/');
  const head = slash < 0 ? '' : ref.slice(0, slash);
  if (slash < 0 || !(head.includes('.') || head.includes(':') || head === 'localhost')) {
    return { registry: 'docker.io', rest: slash < 0 ? `library/${ref}` : ref };
  }
  return { registry: head, rest: ref.slice(slash + 1) };
}

/** Parses `--image-source FROM=TO`. Pure. */
export function parseImageSource(text: string): ImageSource {
  const [from, to, more] = text.split('=');
  if (!from || !to || more !== undefined) throw new AgentError('USAGE', `--image-source takes REGISTRY=HOST[:PORT], got '${text}'`, { details: { flag: '--image-source' } });
  return { from, to };
}

/** skopeo's arguments to copy one image (every platform of an index), or the reason it cannot. Pure. */
export function skopeoCopyArgs(ref: string, dest: ImageDestination, sources: readonly ImageSource[]): string[] {
  const { registry, rest } = splitImage(ref);
  const via = sources.find((s) => s.from === registry);
  const src = `docker://${via ? via.to : registry}/${rest}`;
  const to = dest.kind === 'registry' ? `docker://${dest.registry.replace(/\/+$/, '')}/${rest}` : `oci:${dest.dir}:${ref}`;
  return [
    'copy',
    '--multi-arch=all',
    '--preserve-digests',
    '--retry-times=3',
    ...(via ? ['--src-tls-verify=false'] : []),
    ...(dest.kind === 'registry' && dest.insecure ? ['--dest-tls-verify=false'] : []),
    src,
    to,
  ];
}

export async function stageImages(host: Host, images: readonly string[], dest: ImageDestination, o: { sources: readonly ImageSource[]; log: Logger }): Promise<StagedImage[]> {
  const out: StagedImage[] = [];
  let n = 0;
  for (const image of images) {
    n += 1;
    const args = skopeoCopyArgs(image, dest, o.sources);
    const destination = args[args.length - 1] as string;
    o.log.info({ image, destination, progress: `${n}/${images.length}` }, 'copying image');
    const t0 = host.now();
    const res = await host.run('skopeo', args, { okExitCodes: [0, 1] }).catch((err: unknown) => {
      if ((err as { code?: string }).code === 'ENOENT' || /ENOENT|not found/.test(String(err))) {
        throw new AgentError('USAGE', 'nodeup mirror copies images with skopeo, which is not installed: apt-get install skopeo (or dnf install skopeo)', { cause: err });
      }
      throw err;
    });
    const seconds = Math.round((host.now() - t0) / 100) / 10;
    if (res.exitCode === 0) out.push({ image, destination, status: 'copied', seconds });
    else out.push({ image, destination, status: 'failed', seconds, error: (res.stderr || res.stdout).trim().split('\n').slice(-3).join(' ') });
  }
  return out;
}
