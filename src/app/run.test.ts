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
import { createLogger, silentLogger } from '../engine/log.ts';
import { nodeFilesComponent } from './node-files.ts';
import { capiSentinel, readySentinel, receiptPath } from './receipt.ts';
import { controlPlaneVersions, runNode } from './run.ts';
import { lastGoodConfigPath } from './last-good.ts';
import { FileStore } from '../statestore/file-store.ts';
import { packagesComponent } from '../packages/component.ts';
import { prereqsComponent } from '../node-prereqs/component.ts';

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
    // A run that fails before its graph still publishes its receipt (issue 19, honest receipts).
    const published = JSON.parse(await fsp.readFile(path.join(storeDir, 'nodes/node-a/status.json'), 'utf8')) as { result: string; error?: { code: string } };
    expect(published).toMatchObject({ result: 'failed', error: { code: 'CONFIG_HASH_MISMATCH' } });
  });

  it('an unsupported distro and an invalid config publish a failed receipt too; a converged --only run writes no sentinel', async () => {
    const facts = testFacts({ osRelease: { id: 'gentoo', idLike: [], versionId: '2.15', prettyName: 'Gentoo Linux' } });
    await runNode({ mode: 'apply', host, log: silentLogger, bootConfig: boot, facts, components: only });
    const read = async (): Promise<{ result: string; error?: { code: string } }> => JSON.parse(await fsp.readFile(path.join(storeDir, 'nodes/node-a/status.json'), 'utf8')) as { result: string; error?: { code: string } };
    expect(await read()).toMatchObject({ result: 'failed', error: { code: 'DISTRO_UNSUPPORTED' } });

    const ok = await runNode({ mode: 'apply', host, log: silentLogger, bootConfig: boot, facts: testFacts(), components: only, only: ['node-files'] });
    expect(ok.receipt?.result).toBe('converged');
    expect(await read()).toMatchObject({ result: 'converged' });
    for (const s of [readySentinel, capiSentinel]) await expect(fsp.stat(path.join(host.root, s)), `${s} after an --only run`).rejects.toThrow();
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

  it('apply writes the run metrics where metricsFile says (mode 0644); plan writes none', async () => {
    const file = '/var/lib/metrics/nodeup.prom';
    await runNode({ mode: 'plan', host, log: silentLogger, bootConfig: boot, facts: testFacts(), components: only, metricsFile: file });
    await expect(fsp.stat(path.join(host.root, file))).rejects.toThrow();
    await runNode({ mode: 'apply', host, log: silentLogger, bootConfig: boot, facts: testFacts(), components: only, metricsFile: file });
    const text = await fsp.readFile(path.join(host.root, file), 'utf8');
    expect(text).toContain('nodeup_last_run_success{mode="apply"} 1\n');
    expect(text).toContain('nodeup_last_run_tasks{mode="apply",status="changed"} 2\n');
    expect((await fsp.stat(path.join(host.root, file))).mode & 0o777).toBe(0o644);
  });

  it('the receipt carries the version the node last converged to, through failed and --only runs', async () => {
    const first = await runNode({ mode: 'apply', host, log: silentLogger, bootConfig: boot, facts: testFacts(), components: only });
    const version = first.model?.versions.kubernetes;
    expect(version).toMatch(/^v1\.\d+\.\d+$/);
    expect(first.receipt?.convergedKubernetesVersion).toBe(version);
    const facts = testFacts({ osRelease: { id: 'gentoo', idLike: [], versionId: '2.15', prettyName: 'Gentoo Linux' } });
    const failed = await runNode({ mode: 'apply', host, log: silentLogger, bootConfig: boot, facts, components: only });
    expect(failed.receipt?.result).toBe('failed');
    expect(failed.receipt?.convergedKubernetesVersion, 'kept through a failed run').toBe(version);
    const part = await runNode({ mode: 'apply', host, log: silentLogger, bootConfig: boot, facts: testFacts(), components: only, only: ['node-files'] });
    expect(part.receipt?.convergedKubernetesVersion, 'kept through an --only run').toBe(version);
  });

  it('rollback: a config that fails leaves the last good one on the node, and rollback converges back to it without the store', async () => {
    const none = await runNode({ mode: 'apply', rollback: true, host, log: silentLogger, bootConfig: boot, facts: testFacts(), components: only });
    expect((none.error as Error).message).toMatch(/^nothing to roll back to: \/var\/lib\/nodeup\/last-good holds no config/);
    expect(none.receipt, 'nothing to roll back to: no receipt written').toBeUndefined();
    await expect(fsp.stat(path.join(host.root, receiptPath))).rejects.toThrow();

    const good = await runNode({ mode: 'apply', host, log: silentLogger, bootConfig: boot, facts: testFacts(), components: only });
    expect(good.receipt?.result).toBe('converged');
    expect((await fsp.stat(path.join(host.root, lastGoodConfigPath))).mode & 0o777).toBe(0o600);
    // A new config whose file cannot be written (its parent is a file): the apply fails.
    const store = new FileStore(pathToFileURL(storeDir).href);
    const broken = exampleNodeConfig('nodes', 'worker').replace('  files:\n', '  files:\n    - path: /etc/nodeup/extra.conf/sub.conf\n      content: "y\\n"\n');
    const bootB = await publishNodeConfig(store, broken, 'test');
    const failed = await runNode({ mode: 'apply', host, log: silentLogger, bootConfig: bootB, facts: testFacts(), components: only });
    expect(failed.receipt?.result).toBe('failed');

    const back = await runNode({ mode: 'apply', rollback: true, host, log: silentLogger, bootConfig: bootB, facts: testFacts(), components: only });
    expect(back.error).toBeUndefined();
    expect(back.receipt).toMatchObject({ result: 'converged', configHash: boot.nodeConfigHash, rolledBackTo: boot.nodeConfigHash });
    expect(await fsp.readFile(path.join(host.root, 'etc/nodeup/extra.conf'), 'utf8')).toBe('x=1\n');
  });

  it('--rollback-on-failure: a config that fails is rolled back at once to the last good one; the receipt says from what and why', async () => {
    const store = new FileStore(pathToFileURL(storeDir).href);
    const broken = exampleNodeConfig('nodes', 'worker').replace('  files:\n', '  files:\n    - path: /etc/nodeup/extra.conf/sub.conf\n      content: "y\\n"\n');
    const facts = testFacts({ osRelease: { id: 'gentoo', idLike: [], versionId: '2.15', prettyName: 'Gentoo Linux' } });
    // No last good config yet: the failure stands as it is.
    const bootA = boot; // its config writes /etc/nodeup/extra.conf
    const alone = await runNode({ mode: 'apply', rollbackOnFailure: true, host, log: silentLogger, bootConfig: bootA, facts, components: only });
    expect(alone.autoRollback).toBeUndefined();
    expect(alone.receipt).toMatchObject({ result: 'failed', configHash: bootA.nodeConfigHash });

    expect((await runNode({ mode: 'apply', host, log: silentLogger, bootConfig: bootA, facts: testFacts(), components: only })).receipt?.result).toBe('converged');
    // A new config whose file cannot be written (its parent is a file now).
    const bootB = await publishNodeConfig(store, broken, 'test');
    const r = await runNode({ mode: 'apply', rollbackOnFailure: true, host, log: silentLogger, bootConfig: bootB, facts: testFacts(), components: only });
    expect(r.error).toBeUndefined();
    expect(r.autoRollback?.from).toBe(bootB.nodeConfigHash);
    expect(r.autoRollback?.reason).toMatch(/^tasks failed: file:\/etc\/nodeup\/extra\.conf\/sub\.conf: /);
    expect(r.receipt).toMatchObject({ result: 'converged', configHash: bootA.nodeConfigHash, rolledBackTo: bootA.nodeConfigHash, rolledBackFrom: bootB.nodeConfigHash });
    expect(r.receipt?.rollbackReason).toBe(r.autoRollback?.reason);
    // The receipt on the node is the rollback's: the failed run's is not what the node says last.
    const kept = JSON.parse(await fsp.readFile(path.join(host.root, receiptPath), 'utf8')) as { rolledBackFrom?: string };
    expect(kept.rolledBackFrom).toBe(bootB.nodeConfigHash);

    // A run that fails on the last good config itself (the boot config pins A, the store now holds
    // B) has nothing to roll back to: the node runs A already.
    const same = await runNode({ mode: 'apply', rollbackOnFailure: true, host, log: silentLogger, bootConfig: bootA, facts, components: only });
    expect(same.autoRollback).toBeUndefined();
    expect((same.error as AgentError).code).toBe('CONFIG_HASH_MISMATCH');
  });

  it('a control plane that converges records its version in the store; a worker newer than the oldest one is refused before anything changes (exit 2)', async () => {
    const store = new FileStore(pathToFileURL(storeDir).href);
    const cpBoot = await publishNodeConfig(store, exampleNodeConfig('control-plane', 'control-plane'), 'test');
    const cp = await runNode({ mode: 'apply', host, log: silentLogger, bootConfig: { ...cpBoot, nodeName: 'cp-1' }, facts: testFacts(), components: only });
    expect(cp.receipt?.result, JSON.stringify(cp.error ?? '')).toBe('converged');
    const rec = JSON.parse((await store.read('cluster/control-planes/cp-1.json'))!.toString('utf8')) as { node: string; kubernetesVersion: string };
    expect(rec).toMatchObject({ node: 'cp-1', kubernetesVersion: cp.model?.versions.kubernetes });
    expect(await controlPlaneVersions(store, silentLogger)).toEqual([{ node: 'cp-1', version: cp.model?.versions.kubernetes }]);

    // Another control plane still on the previous minor: the worker's v1.35 kubelet must wait.
    await store.write('cluster/control-planes/cp-2.json', JSON.stringify({ node: 'cp-2', kubernetesVersion: 'v1.34.4' }));
    // The check belongs to the prereqs component (its preflight runs when the component does).
    const withChecks = [nodeFilesComponent, prereqsComponent];
    const w = await runNode({ mode: 'apply', host, log: silentLogger, bootConfig: boot, facts: testFacts(), components: withChecks });
    expect((w.error as AgentError).code).toBe('PREFLIGHT_FAILED');
    expect((w.error as Error).message).toMatch(/VersionSkew.*newer than the API server of cp-2 \(v1\.34\.4\)/);
    expect(exitCodeFor(w.error)).toBe(2);
    await expect(fsp.stat(path.join(host.root, 'etc/nodeup/extra.conf'))).rejects.toThrow();
    // Once cp-2 is upgraded the worker goes ahead.
    await store.write('cluster/control-planes/cp-2.json', JSON.stringify({ node: 'cp-2', kubernetesVersion: cp.model?.versions.kubernetes }));
    const after = await runNode({ mode: 'apply', host, log: silentLogger, bootConfig: boot, facts: testFacts(), components: withChecks });
    expect(after.preflight?.find((p) => p.name === 'VersionSkew')?.ok).toBe(true);
    expect(await fsp.readFile(path.join(host.root, 'etc/nodeup/extra.conf'), 'utf8')).toBe('x=1\n');
  });

  describe('a worker that boots before its control plane wrote the join material', () => {
    // A component that only records what the model held: the kubelet's name, so the run waits.
    const seen: { ca?: string; token?: string }[] = [];
    const kubeletLike: Component = {
      name: 'kubelet',
      enabled: () => true,
      build: (model) => void seen.push({ ...(model.secrets.clusterCaCert ? { ca: model.secrets.clusterCaCert } : {}), ...(model.secrets.bootstrapToken ? { token: model.secrets.bootstrapToken } : {}) }),
    };
    const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    beforeEach(() => void seen.splice(0));

    it('apply waits, polling the store, until a control plane writes the CA and the token, then runs with them', async () => {
      const lines: string[] = [];
      const log = createLogger({ format: 'json', stream: { write: (l: string) => void lines.push(l) } });
      const store = new FileStore(pathToFileURL(storeDir).href);
      const t0 = host.now();
      const sleep = host.sleep.bind(host);
      let sleeps = 0;
      host.sleep = async (ms: number) => {
        sleeps += 1;
        if (sleeps === 3) await store.write('pki/ca.crt', ca);
        if (sleeps === 5) await store.write('secrets/bootstrap-token', 'abcdef.0123456789abcdef\n', { secret: true });
        await sleep(ms);
      };
      const r = await runNode({ mode: 'apply', host, log, bootConfig: boot, facts: testFacts(), components: [kubeletLike], joinTimeoutMs: 600_000 });
      expect(r.error).toBeUndefined();
      expect(seen.at(-1)).toEqual({ ca, token: 'abcdef.0123456789abcdef' });
      expect(sleeps).toBe(5);
      // 2 + 4 + 8 + 15 + 15 s of polling, on the host's clock
      expect(host.now() - t0).toBeGreaterThanOrEqual(44_000);
      const msgs = lines.map((l) => JSON.parse(l) as { msg: string; missing?: string[] });
      expect(msgs.find((m) => m.msg === 'waiting for a control plane to write the join material to the state store')?.missing).toEqual(['pki/ca.crt', 'secrets/bootstrap-token']);
      expect(msgs.some((m) => m.msg === 'join material found in the state store')).toBe(true);
      expect(lines.join('\n')).not.toContain('0123456789abcdef');
    });

    it('gives up at --join-timeout and lets the preflight say what is missing; plan and runs without the kubelet never wait', async () => {
      const t0 = host.now();
      const r = await runNode({ mode: 'apply', host, log: silentLogger, bootConfig: boot, facts: testFacts(), components: [kubeletLike], joinTimeoutMs: 60_000 });
      expect(r.error).toBeUndefined();
      expect(seen.at(-1)).toEqual({});
      expect(host.now() - t0).toBeGreaterThanOrEqual(60_000);
      expect(host.now() - t0).toBeLessThan(120_000);

      const t1 = host.now();
      await runNode({ mode: 'plan', host, log: silentLogger, bootConfig: boot, facts: testFacts(), components: [kubeletLike], joinTimeoutMs: 60_000 });
      await runNode({ mode: 'apply', host, log: silentLogger, bootConfig: boot, facts: testFacts(), components: [kubeletLike, nodeFilesComponent], only: ['node-files'], joinTimeoutMs: 60_000 });
      expect(host.now() - t1, 'plan and a node-files run do not wait').toBeLessThan(1000);
    });
  });
});
