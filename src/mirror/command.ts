// Layer: application. May import every layer below (components, model, engine) and other app folders.
// src/mirror owns `nodeup mirror` (issue 20): staging everything the nodes of some NodeConfigs
// fetch into a mirror an air-gapped cluster can use: release assets for each architecture and the
// nodeup binaries in a directory any web server (or file://) serves, in the layout nodes read
// (plan.ts, stage.ts); container images into a registry or an OCI image layout (images.ts, with
// skopeo); the packages nodeup installs, listed per distro. It prints and writes a manifest of what
// it staged, with sizes and hashes. With --s3 the staged directory also goes up to a bucket (s3.ts).
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { stringList, type Command, type CommandContext } from '../app/cli.ts';
import { nodeupVersion } from '../app/version.ts';
import { AgentError } from '../engine/errors.ts';
import type { Arch } from '../engine/host/facts.ts';
import { readLocalFile } from '../engine/host/local.ts';
import { NodeHost } from '../engine/host/node-host.ts';
import { checkNodeConfig, configInvalid } from '../model/config.ts';
import { parseImageSource, stageImages, type ImageDestination, type StagedImage } from './images.ts';
import { mirrorPlan, type MirrorPlan } from './plan.ts';
import { uploadMirror, type UploadedFile } from './s3.ts';
import { stageAssets, stageBinaries, type StagedFile } from './stage.ts';

export const manifestFile = 'mirror-manifest.json';

const str = (ctx: CommandContext, name: string): string | undefined => {
  const v = ctx.values[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
};

function archsOf(ctx: CommandContext): Arch[] {
  const list = stringList(ctx.values.arch);
  const archs = list.length > 0 ? list : ['amd64', 'arm64'];
  for (const a of archs) if (a !== 'amd64' && a !== 'arm64') throw new AgentError('USAGE', `--arch takes amd64 and/or arm64, got '${a}'`, { details: { flag: '--arch' } });
  return [...new Set(archs)] as Arch[];
}

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

function renderPlan(plan: MirrorPlan): string {
  const lines = [`assets (${plan.assets.length}):`, ...plan.assets.map((a) => `  ${a.path}  sha256:${a.sha256.slice(0, 12)}`)];
  lines.push(`images (${plan.images.length}):`, ...plan.images.map((i) => `  ${i}`));
  lines.push('packages (from the distro\'s repositories: point apt or dnf at a local copy, or bake an image):');
  for (const [distro, names] of Object.entries(plan.packages)) lines.push(`  ${distro}: ${names.join(' ')}`);
  for (const n of plan.notes) lines.push(`note: ${n}`);
  return lines.join('\n') + '\n';
}

function renderResult(files: readonly StagedFile[], images: readonly StagedImage[]): string {
  const lines: string[] = [];
  for (const f of files) lines.push(`${f.status.padEnd(10)} ${mb(f.bytes).padStart(9)}  ${f.sha256.slice(0, 12)}  ${f.path}${f.error ? `  -- ${f.error}` : ''}`);
  for (const i of images) lines.push(`${i.status.padEnd(10)} ${`${i.seconds}s`.padStart(9)}  image  ${i.image} -> ${i.destination}${i.error ? `  -- ${i.error}` : ''}`);
  const count = (s: string): number => files.filter((f) => f.status === s).length;
  const bytes = files.reduce((n, f) => n + f.bytes, 0);
  const fetched = files.filter((f) => f.status === 'downloaded').reduce((n, f) => n + f.bytes, 0);
  lines.push(
    `files: ${files.length} (${mb(bytes)}): ${count('downloaded')} downloaded (${mb(fetched)}), ${count('linked')} linked (the same bytes as another path), ${count('present')} already there, ${count('failed')} failed; ` +
      `images: ${images.length}: ${images.filter((i) => i.status === 'copied').length} copied, ${images.filter((i) => i.status === 'failed').length} failed`,
  );
  return lines.join('\n') + '\n';
}

export const mirrorCommand: Command = {
  name: 'mirror',
  summary: 'stage what the nodes of some NodeConfigs fetch (assets per architecture, nodeup binaries, images) into a mirror for an air-gapped cluster',
  usage:
    'nodeup mirror --node-config FILE [--node-config FILE...] (--dir DIR | --list) [--arch amd64,arm64] [--source URL...] [--binaries DIST_DIR] ' +
    '[--registry HOST[:PORT] [--insecure-registry] | --oci-layout DIR | --no-images] [--image-source REGISTRY=HOST[:PORT]...] [--image REF...] ' +
    '[--s3 s3://BUCKET/PREFIX [--s3-endpoint URL] [--s3-region R] [--s3-path-style]]\n' +
    '  --dir: files land at <dir>/<asset>/<version>/linux-<arch>/<file> (what spec.assets.mirrors reads) and <dir>/nodeup/<version>/ (for nodeup userdata --mirror); ' +
    'a manifest at <dir>/' + manifestFile + '. Re-running resumes: files already there are re-hashed and kept.\n' +
    '  --s3: also upload the staged files and the manifest to a bucket, same layout (credentials: the AWS SDK\'s default chain); objects already there with the same SHA-256 are skipped.\n' +
    '  --image: another image to copy (your workloads\' images), beside those the configs name.\n' +
    '  --source: fetch assets from these mirror-layout URLs instead of the official sites; --image-source: read a registry\'s images from another one (plain HTTP).',
  options: {
    'node-config': { type: 'string', multiple: true },
    dir: { type: 'string' },
    list: { type: 'boolean' },
    arch: { type: 'string', multiple: true },
    source: { type: 'string', multiple: true },
    binaries: { type: 'string' },
    registry: { type: 'string' },
    'insecure-registry': { type: 'boolean' },
    'oci-layout': { type: 'string' },
    'no-images': { type: 'boolean' },
    'image-source': { type: 'string', multiple: true },
    image: { type: 'string', multiple: true },
    s3: { type: 'string' },
    's3-endpoint': { type: 'string' },
    's3-region': { type: 'string' },
    's3-path-style': { type: 'boolean' },
  },
  async run(ctx) {
    const files = stringList(ctx.values['node-config']);
    if (files.length === 0) throw new AgentError('USAGE', 'nodeup mirror needs --node-config FILE (one per instance group whose nodes will use the mirror)', { details: { flag: '--node-config' } });
    const configs = [];
    for (const file of files) {
      const raw = await readLocalFile(file, 'node config');
      const res = checkNodeConfig(raw, file);
      if (res.config === undefined || res.problems.length > 0) throw configInvalid(file, res.problems);
      configs.push({ config: res.config, raw });
    }
    const extra = stringList(ctx.values.image);
    for (const ref of extra) if (!/^[a-z0-9.-]+(:\d+)?\/[a-z0-9._/-]+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$/.test(ref)) throw new AgentError('USAGE', `--image ${ref}: expected REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST] (for example registry.k8s.io/pause:3.10.1)`, { details: { flag: '--image' } });
    const planned = mirrorPlan(configs, archsOf(ctx));
    const plan = { ...planned, images: [...new Set([...planned.images, ...extra])].sort() };
    if (ctx.values.list) {
      ctx.out(renderPlan(plan));
      return 0;
    }
    const dir = str(ctx, 'dir');
    if (!dir) throw new AgentError('USAGE', 'nodeup mirror needs --dir DIR (where the mirror\'s files go), or --list', { details: { flag: '--dir' } });
    const registry = str(ctx, 'registry');
    const oci = str(ctx, 'oci-layout');
    const noImages = ctx.values['no-images'] === true;
    if ([registry, oci, noImages ? 'x' : undefined].filter(Boolean).length !== 1) {
      throw new AgentError('USAGE', 'say where the images go: --registry HOST[:PORT], --oci-layout DIR, or --no-images', { details: { flag: '--registry' } });
    }
    const s3 = str(ctx, 's3');
    if (s3 !== undefined && !s3.startsWith('s3://')) throw new AgentError('USAGE', `--s3 takes s3://BUCKET/PREFIX, got '${s3}'`, { details: { flag: '--s3' } });
    await fsp.mkdir(dir, { recursive: true });
    const t0 = Date.now();
    ctx.log.info({ dir, assets: plan.assets.length, images: noImages ? 0 : plan.images.length }, 'staging the mirror');
    const staged = await stageAssets(dir, plan.assets, { sources: stringList(ctx.values.source), log: ctx.log });
    const bins = str(ctx, 'binaries');
    if (bins) staged.push(...(await stageBinaries(dir, bins, nodeupVersion)));
    let images: StagedImage[] = [];
    if (!noImages) {
      const dest: ImageDestination = registry ? { kind: 'registry', registry, insecure: ctx.values['insecure-registry'] === true } : { kind: 'oci', dir: oci as string };
      if (dest.kind === 'oci') await fsp.mkdir(dest.dir, { recursive: true });
      images = await stageImages(new NodeHost({ root: '/', log: ctx.log }), plan.images, dest, { sources: stringList(ctx.values['image-source']).map(parseImageSource), log: ctx.log });
    }
    const manifest = {
      nodeupVersion,
      stagedAt: new Date().toISOString(),
      seconds: Math.round((Date.now() - t0) / 100) / 10,
      files: staged,
      images,
      packages: plan.packages,
      notes: plan.notes,
    };
    const file = path.join(dir, manifestFile);
    await fsp.writeFile(`${file}.tmp`, JSON.stringify(manifest, null, 2) + '\n', { mode: 0o644 });
    await fsp.rename(`${file}.tmp`, file);
    ctx.out(renderResult(staged, images));
    let uploads: UploadedFile[] = [];
    if (s3 !== undefined) {
      const { S3Store } = await import('../statestore/s3-store.ts'); // the AWS SDK loads only here
      const endpoint = str(ctx, 's3-endpoint');
      const store = new S3Store(s3, { s3: { ...(endpoint ? { endpoint } : {}), region: str(ctx, 's3-region') ?? process.env.AWS_REGION ?? 'us-east-1', forcePathStyle: ctx.values['s3-path-style'] === true }, log: ctx.log });
      try {
        uploads = await uploadMirror(dir, staged, store, ctx.log);
        // The manifest last, and only when every file is up: a bucket's manifest lists what it holds.
        if (uploads.every((u) => u.status !== 'failed')) {
          const body = await fsp.readFile(file);
          const sha256 = createHash('sha256').update(body).digest('hex');
          uploads.push(...(await uploadMirror(dir, [{ path: manifestFile, sha256, bytes: body.length, status: 'downloaded' }], store, ctx.log)));
        }
      } finally {
        store.close();
      }
      for (const u of uploads) if (u.status === 'failed') ctx.out(`failed upload ${u.path}  -- ${u.error ?? ''}\n`);
      const n = (st: string): number => uploads.filter((u) => u.status === st).length;
      const sent = uploads.filter((u) => u.status === 'uploaded').reduce((a, u) => a + u.bytes, 0);
      ctx.out(`s3: ${s3}: ${n('uploaded')} uploaded (${mb(sent)}), ${n('present')} already there, ${n('failed')} failed\n`);
    }
    for (const n of plan.notes) ctx.out(`note: ${n}\n`);
    const failed = staged.filter((f) => f.status === 'failed').length + images.filter((i) => i.status === 'failed').length + uploads.filter((u) => u.status === 'failed').length;
    ctx.out(
      failed > 0
        ? `nodeup mirror: ${failed} failed (see above); run it again to retry them: what is there is kept\n`
        : `mirror ready in ${manifest.seconds}s: serve ${s3 !== undefined ? `${s3} (its HTTPS URL)` : dir} and set spec.assets.mirrors to its URL` +
            (registry ? `, spec.containerd.registryMirrors to http${ctx.values['insecure-registry'] ? '' : 's'}://${registry} for ${[...new Set(plan.images.map((i) => i.split('/')[0]))].join(', ')}` : '') +
            (bins ? `; nodeup userdata --mirror <its URL>/nodeup/${nodeupVersion}` : '') +
            '\n',
    );
    return failed > 0 ? 1 : 0;
  },
};
