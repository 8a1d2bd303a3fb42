// The single binary's entry (its SEA "main", bundled apart by scripts/build.ts). `nodeup version`
// is answered here, from version.ts alone; every other command runs the main bundle, carried as the
// SEA asset `nodeup.cjs`, through vm.Script with V8's code cache from the asset `nodeup.cache`.
//
// Why not SEA's own `useCodeCache`: that cache comes from compiling the bundle without running it,
// so it holds the top-level code only, and every function a command calls is still compiled at its
// first call, at every start. The cache here is taken by scripts/build.ts after training runs of the
// main commands: `createCachedData()` after a run holds every function the run compiled.
//
// Training (not in a SEA): scripts/build.ts runs this entry with the very Node binary the SEA
// embeds (V8 takes a cache only from the same V8 build and flags) and
// NODEUP_SEA_TRAIN=<wrapped bundle>:<cache in, or ->:<cache out>; the cache is written as the process
// exits, so each training run adds to the one before. NODEUP_SEA_CACHE_REPORT=1 makes the binary say
// on stderr whether V8 took its cache (the build checks that it did).
//
// Vendor chunks: dependencies no start-up path runs (downloads' undici and tar, the aws provider's EC2
// client, ssh2) are assets of their own, `vendor:<name>`, run here at their first require (from
// `<wrapped bundle>.vendor/` in training). NODEUP_SEA_VENDOR_CHECK=1 loads each and says so.
import { readFileSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join } from 'node:path';
import * as sea from 'node:sea';
import * as vm from 'node:vm';
import { vendorChunks, vendorFile } from './vendor-chunks.ts';
import { versionText } from './version.ts';

/**
 * The bundle's require: built-in modules, and the vendor chunks, each run once at its first require
 * (text from `vendorText`). Anything else gets Node's missing-module error, as the optional native
 * add-ons ssh2 tries in try/catch expect.
 */
function bundleRequire(vendorText: (id: string) => string): (id: string) => unknown {
  const loaded = new Map<string, { exports: unknown }>();
  const req = (id: string): unknown => {
    if (isBuiltin(id)) return process.getBuiltinModule(id);
    if (vendorChunks.includes(id)) {
      let mod = loaded.get(id);
      if (!mod) {
        mod = { exports: {} };
        loaded.set(id, mod);
        const wrapper = new vm.Script(vendorText(id), { filename: vendorFile(id) }).runInThisContext() as (...args: unknown[]) => void;
        wrapper(mod.exports, req, mod, process.execPath, dirname(process.execPath));
      }
      return mod.exports;
    }
    throw Object.assign(new Error(`Cannot find module '${id}' (the nodeup binary carries no modules beside its bundle)`), { code: 'MODULE_NOT_FOUND' });
  };
  return req;
}

/**
 * Runs the bundle: `script` is its text already wrapped by scripts/build.ts as a CommonJS function
 * (the same text in training and in the binary, as V8 checks the source against the cache). It is
 * ASCII (the build escapes the rest), read as latin1: a one-byte string, made once.
 */
function runBundle(script: string, cachedData: Uint8Array | undefined, require: (id: string) => unknown, onExit?: (compiled: vm.Script) => void): void {
  const compiled = new vm.Script(script, { filename: 'nodeup.cjs', cachedData });
  if (onExit) process.on('exit', () => onExit(compiled));
  const mod = { exports: {} };
  const wrapper = compiled.runInThisContext() as (...args: unknown[]) => void;
  wrapper(mod.exports, require, mod, process.execPath, dirname(process.execPath));
}

function train(spec: string): void {
  delete process.env.NODEUP_SEA_TRAIN;
  const [script, cacheIn, cacheOut] = spec.split(':');
  if (!script || !cacheIn || !cacheOut) throw new Error(`NODEUP_SEA_TRAIN=${spec}: expected <wrapped bundle>:<cache in, or ->:<cache out>`);
  const cachedData = cacheIn === '-' ? undefined : readFileSync(cacheIn);
  runBundle(readFileSync(script, 'latin1'), cachedData, bundleRequire((id) => readFileSync(join(`${script}.vendor`, vendorFile(id)), 'latin1')), (compiled) => {
    if (cachedData && compiled.cachedDataRejected) {
      process.stderr.write(`nodeup training: V8 rejected the cache ${cacheIn}\n`);
      process.exitCode = 70;
      return;
    }
    writeFileSync(cacheOut, compiled.createCachedData());
  });
}

function start(): void {
  const args = process.argv.slice(2);
  if (args.length <= 2 && (args[0] === 'version' || args[0] === '--version') && (args[1] === undefined || args[1] === '--json')) {
    process.stdout.write(versionText(args[1] === '--json'));
    return;
  }
  let cachedData: Uint8Array | undefined;
  try {
    cachedData = new Uint8Array(sea.getRawAsset('nodeup.cache'));
  } catch {
    cachedData = undefined; // built with --no-code-cache
  }
  const require = bundleRequire((id) => Buffer.from(sea.getRawAsset(`vendor:${id}`)).toString('latin1'));
  if (process.env.NODEUP_SEA_VENDOR_CHECK === '1') {
    for (const id of vendorChunks) process.stderr.write(`nodeup vendor ${id}: ${Object.keys(require(id) as object).length} exports\n`);
    return;
  }
  const report = process.env.NODEUP_SEA_CACHE_REPORT === '1';
  runBundle(
    Buffer.from(sea.getRawAsset('nodeup.cjs')).toString('latin1'),
    cachedData,
    require,
    report ? (compiled) => process.stderr.write(`nodeup code cache: ${cachedData === undefined ? 'none' : compiled.cachedDataRejected ? 'rejected' : 'accepted'}\n`) : undefined,
  );
}

if (sea.isSea()) start();
else if (process.env.NODEUP_SEA_TRAIN) train(process.env.NODEUP_SEA_TRAIN);
else throw new Error('the SEA entry runs inside the nodeup binary, or with NODEUP_SEA_TRAIN (scripts/build.ts)');
