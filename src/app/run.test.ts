// The engine end to end on a temp root with a file:// state store: plan, apply, apply again.
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Component } from '../model/component.ts';
import { configHash, type BootConfig } from '../model/config.ts';
import { exitCodeFor, AgentError } from '../engine/errors.ts';
import { exampleNodeConfig, publishNodeConfig } from './example.ts';
import { createTestHost, testFacts, type TestHost } from '../../tests/support/test-host.ts';
import { silentLogger } from '../engine/log.ts';
import { nodeFilesComponent } from './node-files.ts';
import { capiSentinel, readySentinel, receiptPath } from './receipt.ts';
import { runNode } from './run.ts';
import { FileStore } from '../statestore/file-store.ts';
import { packagesComponent } from '../packages/component.ts';

const only: readonly Component[] = [nodeFilesComponent];

let host: TestHost;
let storeDir: string;
let boot: BootConfig;

beforeEach(async () => {
  host = await createTestHost({ fixture: 'debian-12', unmatched: 'succeed' });
  storeDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-store-'));
  const store = new FileStore(pathToFileURL(storeDir).href);
  const raw = exampleNodeConfig('nodes', 'worker').replace(
    '  files:\n',
    '  files:\n    - path: /etc/nodeup/extra.conf\n      content: "x=1\\n"\n      mode: "0600"\n',
  );
  boot = await publishNodeConfig(store, raw, 'test');
});
afterEach(async () => {
  await host.dispose();
  await fsp.rm(storeDir, { recursive: true, force: true });
});

async function mtimes(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const f of await host.tree()) out[f] = (await fsp.lstat(path.join(host.root, f))).mtimeMs;
  return out;
}

describe('runNode', () => {
  it('plan changes nothing; apply converges; a second apply reports 0 changes and writes nothing', async () => {
    const before = await host.tree();
    const plan = await runNode({ mode: 'plan', host, log: silentLogger, bootConfig: boot, facts: testFacts(), components: only });
    expect(plan.error).toBeUndefined();
    expect(plan.report?.changed).toBe(2);
    expect(await host.tree()).toEqual(before);

    const first = await runNode({ mode: 'apply', host, log: silentLogger, bootConfig: boot, facts: testFacts(), components: only });
    expect(first.error).toBeUndefined();
    expect(first.report?.changed).toBe(2);
    expect(first.receipt?.result).toBe('converged');
    expect(await fsp.readFile(path.join(host.root, 'etc/nodeup/extra.conf'), 'utf8')).toBe('x=1\n');
    expect((await fsp.stat(path.join(host.root, 'etc/nodeup/extra.conf'))).mode & 0o777).toBe(0o600);
    for (const s of [readySentinel, capiSentinel, receiptPath]) await expect(fsp.stat(path.join(host.root, s))).resolves.toBeTruthy();
    // the receipt also reaches the state store
    const published = JSON.parse(await fsp.readFile(path.join(storeDir, 'nodes/node-a/status.json'), 'utf8')) as { result: string };
    expect(published.result).toBe('converged');

    const t1 = await mtimes();
    await new Promise((r) => setTimeout(r, 20));
    const second = await runNode({ mode: 'apply', host, log: silentLogger, bootConfig: boot, facts: testFacts(), components: only });
    expect(second.report?.changed).toBe(0);
    const t2 = await mtimes();
    const touched = Object.keys(t2).filter((f) => t2[f] !== t1[f]);
    expect(touched).toEqual([receiptPath.slice(1)]);
  });

  it('a node config whose hash differs from the boot config is refused (exit 2), nothing applied', async () => {
    const bad = { ...boot, nodeConfigHash: configHash('something else') };
    const r = await runNode({ mode: 'apply', host, log: silentLogger, bootConfig: bad, facts: testFacts(), components: only });
    expect((r.error as AgentError).code).toBe('CONFIG_HASH_MISMATCH');
    expect(exitCodeFor(r.error)).toBe(2);
    expect(r.receipt?.result).toBe('failed');
    await expect(fsp.stat(path.join(host.root, 'etc/nodeup/extra.conf'))).rejects.toThrow();
    await expect(fsp.stat(path.join(host.root, readySentinel))).rejects.toThrow();
  });

  it('an unknown distro stops the run with exit 2 and the supported list', async () => {
    const facts = testFacts({ osRelease: { id: 'gentoo', idLike: [], versionId: '2.15', prettyName: 'Gentoo Linux' } });
    const r = await runNode({ mode: 'apply', host, log: silentLogger, bootConfig: boot, facts, components: only });
    expect((r.error as AgentError).code).toBe('DISTRO_UNSUPPORTED');
    expect((r.error as Error).message).toMatch(/unsupported distro Gentoo Linux \(gentoo-2\)\. Supported: Ubuntu 22\.04 LTS, .*Debian 12 \(bookworm\).*Rocky Linux 9.*Flatcar/);
    expect(exitCodeFor(r.error)).toBe(2);
  });

  it('a state store without the group config fails with a clear error', async () => {
    const gone = { ...boot, stateStore: pathToFileURL(path.join(storeDir, 'missing')).href };
    const r = await runNode({ mode: 'apply', host, log: silentLogger, bootConfig: gone, facts: testFacts(), components: only });
    expect((r.error as AgentError).code).toBe('STATE_STORE');
    expect((r.error as Error).message).toMatch(/has no igconfig\/nodes\/node\.yaml: was the instance group nodes published\?/);
    expect(exitCodeFor(r.error)).toBe(1);
  });

  it('on Flatcar the plan says packages are skipped', async () => {
    const facts = testFacts({ osRelease: { id: 'flatcar', idLike: [], versionId: '4230.2.3', prettyName: 'Flatcar Container Linux by Kinvolk 4230.2.3' } });
    const r = await runNode({ mode: 'plan', host, log: silentLogger, bootConfig: boot, facts, components: [packagesComponent, nodeFilesComponent] });
    expect(r.error).toBeUndefined();
    expect(r.notes).toEqual(['packages: Flatcar Container Linux has no package manager: packages are skipped']);
    expect(r.report?.results.some((t) => t.key.startsWith('package:'))).toBe(false);
  });

  it('--only with an unknown component is a usage error', async () => {
    const r = await runNode({ mode: 'plan', host, log: silentLogger, bootConfig: boot, facts: testFacts(), components: only, only: ['kubelett'] });
    expect((r.error as Error).message).toBe('unknown component kubelett; components: node-files');
  });
});
