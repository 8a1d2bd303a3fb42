// The bundle step of scripts/build.ts: one CJS file that runs on plain Node with the build identity
// baked in. (The packaged binaries are checked by scripts/build-smoke.sh after `npm run build`.)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bundle, embeddedNodeVersion } from './build.ts';

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
});
