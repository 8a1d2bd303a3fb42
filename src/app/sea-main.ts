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
import { readFileSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname } from 'node:path';
import * as sea from 'node:sea';
import * as vm from 'node:vm';
import { versionText } from './version.ts';

/**
 * Built-in modules only: the bundle carries everything else, as it did when it was the SEA main
 * itself. The optional native add-ons ssh2 tries in try/catch get Node's missing-module error.
 */
function builtinRequire(id: string): unknown {
  if (isBuiltin(id)) return process.getBuiltinModule(id);
  throw Object.assign(new Error(`Cannot find module '${id}' (the nodeup binary carries no modules beside its bundle)`), { code: 'MODULE_NOT_FOUND' });
}

/**
 * Runs the bundle: `script` is its text already wrapped by scripts/build.ts as a CommonJS function
 * (the same text in training and in the binary, as V8 checks the source against the cache). It is
 * ASCII (the build escapes the rest), read as latin1: a one-byte string, made once.
 */
function runBundle(script: string, cachedData: Uint8Array | undefined, onExit?: (compiled: vm.Script) => void): void {
  const compiled = new vm.Script(script, { filename: 'nodeup.cjs', cachedData });
  if (onExit) process.on('exit', () => onExit(compiled));
  const mod = { exports: {} };
  const wrapper = compiled.runInThisContext() as (...args: unknown[]) => void;
  wrapper(mod.exports, builtinRequire, mod, process.execPath, dirname(process.execPath));
}

function train(spec: string): void {
  delete process.env.NODEUP_SEA_TRAIN;
  const [script, cacheIn, cacheOut] = spec.split(':');
  if (!script || !cacheIn || !cacheOut) throw new Error(`NODEUP_SEA_TRAIN=${spec}: expected <wrapped bundle>:<cache in, or ->:<cache out>`);
  const cachedData = cacheIn === '-' ? undefined : readFileSync(cacheIn);
  runBundle(readFileSync(script, 'latin1'), cachedData, (compiled) => {
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
  const report = process.env.NODEUP_SEA_CACHE_REPORT === '1';
  runBundle(
    Buffer.from(sea.getRawAsset('nodeup.cjs')).toString('latin1'),
    cachedData,
    report ? (compiled) => process.stderr.write(`nodeup code cache: ${cachedData === undefined ? 'none' : compiled.cachedDataRejected ? 'rejected' : 'accepted'}\n`) : undefined,
  );
}

if (sea.isSea()) start();
else if (process.env.NODEUP_SEA_TRAIN) train(process.env.NODEUP_SEA_TRAIN);
else throw new Error('the SEA entry runs inside the nodeup binary, or with NODEUP_SEA_TRAIN (scripts/build.ts)');
