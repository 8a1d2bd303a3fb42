// The bundle step of scripts/build.ts: one CJS file that runs on plain Node with the build identity
// baked in. (The packaged binaries are checked by scripts/build-smoke.sh after `npm run build`.)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bundle, bundleVendor, embeddedNodeVersion, trainCodeCache, vendorChunks, vendorFile, wrapBundle } from './build.ts';

describe('scripts/build.ts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nodeup-bundle-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('embeds the Node version scripts/node-env.sh installs', () => {
    const env = readFileSync(join(import.meta.dirname, 'node-env.sh'), 'utf8');
    expect(embeddedNodeVersion()).toMatch(/^24\.\d+\.\d+$/);
    expect(env).toContain(`NODEUP_NODE_VERSION:-${embeddedNodeVersion()}`);
  });

  it('bundles main.ts into one CJS file that reports the baked-in version and commit', async () => {
    const out = await bundle({ version: '9.8.7-test', commit: 'abc123def456' }, join(dir, 'nodeup.cjs'));
    const text = readFileSync(out, 'utf8');
    expect(text.startsWith('"use strict";')).toBe(true);
    expect(text).not.toMatch(/createTestHost/);
    // Run from an empty directory, so nothing can be resolved from node_modules at run time.
    const json = JSON.parse(execFileSync(process.execPath, [out, 'version', '--json'], { cwd: dir, encoding: 'utf8' })) as Record<string, string>;
    expect(json).toMatchObject({ version: '9.8.7-test', commit: 'abc123def456', node: process.version });
    expect(execFileSync(process.execPath, [out, '--help'], { cwd: dir, encoding: 'utf8' })).toMatch(/^Commands:$/m);
  }, 120_000);

  it('makes the bundle ASCII, so the binary reads it as one one-byte string', async () => {
    const text = readFileSync(await bundle({ version: '9.8.7-test', commit: 'abc123def456' }, join(dir, 'nodeup.cjs')), 'utf8');
    expect(text.match(/[^\x00-\x7f]/g) ?? []).toEqual([]);
    expect(text).toContain('\\u00b0'); // the one a dependency's regular expression carries
  }, 120_000);

  it("trains a code cache the binary's entry takes, and refuses a cache of another text", async () => {
    const cjs = await bundle({ version: '9.8.7-test', commit: 'abc123def456' }, join(dir, 'train/nodeup.cjs'));
    const entry = await bundle({ version: '9.8.7-test', commit: 'abc123def456' }, join(dir, 'train/sea-main.cjs'), 'src/app/sea-main.ts');
    const script = wrapBundle(cjs, join(dir, 'train/nodeup-wrapped.cjs'));
    mkdirSync(join(dir, 'stage'));
    // The test runs on the very Node the binary embeds (scripts/node-env.sh), as the build trains.
    const cache = trainCodeCache('amd64', { file: process.execPath, args: [] }, script, entry, join(dir, 'stage'));
    const size = readFileSync(cache).length;
    expect(size).toBeGreaterThan(500_000); // functions compiled by the runs, not the top level alone
    const run = (spec: string): string =>
      execFileSync(process.execPath, [entry, '--help'], { cwd: dir, encoding: 'utf8', env: { PATH: '/usr/bin:/bin', NODEUP_SEA_TRAIN: spec } });
    expect(run(`${script}:${cache}:${join(dir, 'again')}`)).toMatch(/^Commands:$/m);
    expect(readFileSync(join(dir, 'again')).length).toBeGreaterThanOrEqual(size * 0.9);
    // A cache of another text: V8 rejects it, and training says so rather than carry on.
    const other = wrapBundle(await bundle({ version: '9.8.7-other', commit: 'abc123def456' }, join(dir, 'train/other.cjs')), join(dir, 'train/other-wrapped.cjs'));
    expect(() => run(`${other}:${cache}:${join(dir, 'never')}`)).toThrow(/V8 rejected the cache/);
  }, 180_000);

  it("leaves the vendor chunks out of the bundle; the binary's entry runs each at its first require, once", async () => {
    const id = { version: '9.8.7-test', commit: 'abc123def456' };
    const main = readFileSync(await bundle(id, join(dir, 'vendor/nodeup.cjs')), 'utf8');
    for (const v of vendorChunks) expect(main, v).toContain(`require("${v}")`);
    expect(main).not.toContain('undici/lib'); // undici's own modules are not in it
    const entry = await bundle(id, join(dir, 'vendor/sea-main.cjs'), 'src/app/sea-main.ts');
    // A stand-in for the bundle that requires undici twice and something that is not there.
    writeFileSync(join(dir, 'vendor/probe.cjs'), [
      'const a = require("undici"), b = require("undici");',
      'let missing = "loaded";',
      'try { require("left-pad"); } catch (e) { missing = e.code; }',
      'process.stdout.write(JSON.stringify({ request: typeof a.request, same: a === b, missing }));',
    ].join('\n'));
    const script = wrapBundle(join(dir, 'vendor/probe.cjs'), join(dir, 'vendor/probe-wrapped.cjs'));
    mkdirSync(`${script}.vendor`);
    wrapBundle(await bundleVendor(id, 'undici', join(dir, 'vendor/undici.cjs')), join(`${script}.vendor`, vendorFile('undici')));
    const out = execFileSync(process.execPath, [entry], { cwd: dir, encoding: 'utf8', env: { PATH: '/usr/bin:/bin', NODEUP_SEA_TRAIN: `${script}:-:${join(dir, 'vendor/cache')}` } });
    expect(JSON.parse(out)).toEqual({ request: 'function', same: true, missing: 'MODULE_NOT_FOUND' });
    expect(vendorFile('@aws-sdk/client-ec2')).toBe('@aws-sdk+client-ec2.cjs');
  }, 180_000);
});
