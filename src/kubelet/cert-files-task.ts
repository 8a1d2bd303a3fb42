// The key pairs kubelet writes itself under /var/lib/kubelet/pki are whole, or gone.
// kubelet writes its self-signed serving pair (kubelet.crt/kubelet.key) and its rotated pairs
// (kubelet-client-current.pem, kubelet-server-current.pem: a symlink to a dated combined PEM)
// without syncing them. A power cut soon after can leave such a file empty or cut short, and kubelet
// then fails at every start ("missing content for serving cert"): it only makes a new pair when none
// exists. This task removes a pair that is unreadable, so kubelet makes (serving) or requests
// (rotated, TLS bootstrap) a new one at its next start. A valid pair, even an expired one, is
// kubelet's business and never touched; so is a lone kubelet.crt or kubelet.key (kubelet rewrites both).
import * as path from 'node:path/posix';
import type { Host } from '../engine/host/host.ts';
import type { ApplyContext, Change, Task, TaskKey } from '../engine/task.ts';
import { keyMatchesCert } from '../engine/pki/x509.ts';

export interface CertFilesSpec {
  /** kubelet's --cert-dir. */
  readonly dir: string;
  readonly after?: readonly TaskKey[];
  /** Restarted when a pair was removed, so kubelet writes the new one now rather than at its next crash. */
  readonly notify?: readonly TaskKey[];
}

/** A file found unreadable, and the files removed with it. */
export interface BrokenPair {
  readonly name: string;
  readonly reason: string;
  readonly remove: readonly string[];
}

const blockRe = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

/** The first certificate and the first private key of a PEM text. Pure. */
export function pemParts(text: string): { readonly cert?: string; readonly key?: string } {
  let cert: string | undefined;
  let key: string | undefined;
  for (const m of text.matchAll(blockRe)) {
    if (m[1] === 'CERTIFICATE') cert ??= m[0];
    else if (m[1]?.endsWith('PRIVATE KEY')) key ??= m[0];
  }
  return { ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key }) };
}

/** Why a certificate and key do not make a usable pair, or undefined when they do. Pure. */
export function pairProblem(certText: string, keyText: string): string | undefined {
  if (certText.trim() === '') return 'certificate file empty';
  if (keyText.trim() === '') return 'key file empty';
  const { cert } = pemParts(certText);
  const { key } = pemParts(keyText);
  if (cert === undefined) return 'no PEM certificate';
  if (key === undefined) return 'no PEM private key';
  if (!keyMatchesCert(key, cert)) return 'the key does not belong to the certificate (or does not parse)';
  return undefined;
}

export class KubeletCertFilesTask implements Task<readonly BrokenPair[]> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[];
  readonly notify: readonly TaskKey[];
  private readonly spec: CertFilesSpec;
  // No `path`: the task owns no path of its own, only judges files kubelet writes.
  constructor(spec: CertFilesSpec) {
    this.spec = spec;
    this.key = `cert-files:${spec.dir}`;
    this.after = spec.after ?? [];
    this.notify = spec.notify ?? [];
  }

  async observe(host: Host): Promise<readonly BrokenPair[] | undefined> {
    const broken: BrokenPair[] = [];
    const serving = await this.servingPair(host);
    if (serving) broken.push(serving);
    for (const use of ['client', 'server']) {
      const rotated = await this.rotatedPair(host, `kubelet-${use}-current.pem`);
      if (rotated) broken.push(rotated);
    }
    return broken;
  }

  diff(actual: readonly BrokenPair[] | undefined): readonly Change[] {
    return (actual ?? []).map((b) => ({ field: b.name, from: b.reason, to: `removed (kubelet writes a new one): ${b.remove.join(', ')}` }));
  }

  async apply(host: Host, changes: readonly Change[], ctx: ApplyContext): Promise<void> {
    const broken = (await this.observe(host)) ?? [];
    for (const b of broken.filter((x) => changes.some((c) => c.field === x.name))) {
      ctx.log.warn({ file: path.join(this.spec.dir, b.name), reason: b.reason, removed: b.remove }, 'removing an unreadable kubelet key pair');
      for (const name of b.remove) await host.fs.remove(path.join(this.spec.dir, name));
    }
  }

  /** kubelet.crt + kubelet.key: judged only when both exist. */
  private async servingPair(host: Host): Promise<BrokenPair | undefined> {
    const cert = await host.fs.read(path.join(this.spec.dir, 'kubelet.crt'));
    const key = await host.fs.read(path.join(this.spec.dir, 'kubelet.key'));
    if (cert === undefined || key === undefined) return undefined;
    const reason = pairProblem(cert.toString('utf8'), key.toString('utf8'));
    return reason === undefined ? undefined : { name: 'kubelet.crt', reason, remove: ['kubelet.crt', 'kubelet.key'] };
  }

  /** kubelet-<use>-current.pem: a link to a combined PEM in the same directory (or the file itself). */
  private async rotatedPair(host: Host, name: string): Promise<BrokenPair | undefined> {
    const full = path.join(this.spec.dir, name);
    const stat = await host.fs.stat(full);
    if (!stat) return undefined;
    const remove = [name];
    if (stat.kind === 'symlink') {
      const target = await host.fs.readlink(full);
      const resolved = target === undefined ? undefined : path.resolve(this.spec.dir, target);
      // Only a dated file of kubelet's own, beside the link, goes with it.
      if (resolved !== undefined && path.dirname(resolved) === this.spec.dir && path.basename(resolved).startsWith(name.replace('current.pem', ''))) {
        remove.push(path.basename(resolved));
      }
    } else if (stat.kind !== 'file') {
      return undefined;
    }
    const data = await host.fs.read(full);
    if (data === undefined) return { name, reason: 'the link points at a missing file', remove };
    const text = data.toString('utf8');
    const reason = text.trim() === '' ? 'empty file' : pairProblem(text, text);
    return reason === undefined ? undefined : { name, reason, remove };
  }
}
