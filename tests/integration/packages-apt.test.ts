// Real apt in a Debian bookworm root (mmdebstrap minbase, built and cached by
// scripts/fixtures/debian-root.sh): nodeup's packages component installs the debian-12 base
// packages through chroot from a local repository served on 127.0.0.1 (the fixture's .debs plus
// small test packages built here with dpkg-deb). Proves: one batch, dpkg -s says installed, a second
// apply runs no apt command, pins installed and held, a held dpkg lock waited for, a mirror 503
// retried, index files left empty by a power cut started over; with the image's source out of
// reach, spec.packages.repositories + onlyRepositories install from the site's repository alone.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AptManager } from '../../src/packages/apt.ts';
import { defaultManagerOptions } from '../../src/packages/manager.ts';
import { captureLog, packagesModel, runPackages } from '../support/packages.ts';
import type { NodeModel } from '../../src/model/node-model.ts';
import { RecordingHost, repoRoot, requireTool, serveDir, sh, type RepoServer } from './packages-support.ts';

const fixture = path.join(process.env.NODEUP_CACHE ?? path.join(os.homedir(), '.cache/nodeup'), 'roots/debian-bookworm-minbase-1');
const setup = 'scripts/fixtures/debian-root.sh';

let work = '';
let root = '';
let repo = '';
let server: RepoServer;
const mounted: string[] = [];

async function buildDeb(name: string, version: string, preinst?: string): Promise<void> {
  const dir = path.join(work, `${name}-${version}`);
  await fsp.mkdir(path.join(dir, 'DEBIAN'), { recursive: true });
  await fsp.mkdir(path.join(dir, 'usr/share/nodeup-test'), { recursive: true });
  await fsp.writeFile(path.join(dir, 'usr/share/nodeup-test', name), `${version}\n`);
  await fsp.writeFile(
    path.join(dir, 'DEBIAN/control'),
    `Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: nodeup tests <tests@nodeup.invalid>\nDescription: nodeup integration test package\n`,
  );
  if (preinst) await fsp.writeFile(path.join(dir, 'DEBIAN/preinst'), preinst, { mode: 0o755 });
  await sh('dpkg-deb', ['--build', '--root-owner-group', dir, path.join(repo, `${name}_${version}_all.deb`)]);
}

async function indexRepo(): Promise<void> {
  const { stdout } = await sh('dpkg-scanpackages', ['--multiversion', '.'], { cwd: repo, maxBuffer: 64 << 20 });
  await fsp.writeFile(path.join(repo, 'Packages'), stdout);
  const { createHash } = await import('node:crypto');
  const sum = createHash('sha256').update(stdout).digest('hex');
  await fsp.writeFile(
    path.join(repo, 'Release'),
    `Origin: nodeup-test\nLabel: nodeup-test\nSuite: local\nCodename: local\nArchitectures: amd64 all\nDate: ${new Date().toUTCString()}\nSHA256:\n ${sum} ${Buffer.byteLength(stdout)} Packages\n`,
  );
}

async function dpkgStatus(pkg: string): Promise<{ status: string; version: string }> {
  const { stdout } = await sh('chroot', [root, 'dpkg-query', '-W', '-f', '${Status}|${Version}', pkg]).catch(() => ({ stdout: 'not-installed|' }));
  const [status = '', version = ''] = stdout.split('|');
  return { status, version };
}

let model: NodeModel;

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the apt integration test needs root (chroot, mount)');
  if (!existsSync(path.join(fixture, '.ok'))) throw new Error(`the Debian bookworm root is missing (${fixture}): run ${setup}`);
  await requireTool('dpkg-scanpackages', 'scripts/fixtures/apt-deps.sh (package dpkg-dev)');
  work = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-apt-it-'));
  root = path.join(work, 'root');
  repo = path.join(work, 'repo');
  await fsp.mkdir(root);
  await fsp.mkdir(repo);
  await sh('tar', ['-xf', path.join(fixture, 'root.tar'), '-C', root]);
  for (const f of await fsp.readdir(path.join(fixture, 'debs'))) await fsp.copyFile(path.join(fixture, 'debs', f), path.join(repo, f));
  await buildDeb('nodeup-pin-test', '1.0');
  await buildDeb('nodeup-pin-test', '2.0');
  await buildDeb('nodeup-after-lock', '1.0');
  await buildDeb('nodeup-after-503', '1.0');
  await buildDeb('nodeup-after-cut', '1.0');
  await buildDeb('nodeup-after-only', '1.0');
  await indexRepo();
  server = await serveDir(repo);
  await fsp.writeFile(path.join(root, 'etc/apt/sources.list'), `deb [trusted=yes] ${server.url} ./\n`);
  await sh('mount', ['-t', 'proc', 'proc', path.join(root, 'proc')]);
  mounted.push(path.join(root, 'proc'));
  await sh('mount', ['--bind', '/dev', path.join(root, 'dev')]);
  mounted.push(path.join(root, 'dev'));
  model = packagesModel(await fsp.readFile(path.join(root, 'etc/os-release'), 'utf8'), { extra: ['ethtool'] });
  expect(model.distro.id).toBe('debian-12');
}, 300_000);

afterAll(async () => {
  for (const m of mounted.reverse()) await sh('umount', ['-l', m]).catch(() => undefined);
  await server?.close();
  if (work && mounted.length === 0) await fsp.rm(work, { recursive: true, force: true });
  else if (work) {
    // Only remove the tree once nothing is mounted inside it.
    const { stdout } = await sh('sh', ['-c', `grep -c ' ${work}' /proc/mounts || true`]);
    if (stdout.trim() === '0') await fsp.rm(work, { recursive: true, force: true });
  }
});

describe('packages on a real Debian bookworm root with real apt', () => {
  it('the fixture root lacks the base packages, and its repository serves them', async () => {
    for (const p of ['iptables', 'kmod', 'apparmor', 'ca-certificates', 'ethtool']) expect((await dpkgStatus(p)).status).not.toBe('install ok installed');
    // The fixture's .deb set must still cover the table's debian-12 row.
    const want = Object.values(model.distro.packages).filter((p): p is string => p !== null);
    const debs = await fsp.readdir(path.join(fixture, 'debs'));
    for (const p of want.filter((n) => n !== 'mount')) expect(debs.some((d) => d.startsWith(`${p}_`)), `${p} in ${setup}'s PACKAGES`).toBe(true);
  });

  it('cold apply: one apt-get update and one batched apt-get install; dpkg -s says installed', async () => {
    const host = new RecordingHost({ root });
    const { log } = captureLog('info');
    const report = await runPackages(model, host, 'apply', log);
    expect(report.ok, JSON.stringify(report.results.filter((r) => r.error))).toBe(true);
    expect(report.changed).toBe(5); // apparmor, ca-certificates, ethtool, iptables, kmod (mount is in minbase)
    expect(host.calls.filter((c) => c.startsWith('apt-get update'))).toHaveLength(1);
    const installs = host.calls.filter((c) => c.startsWith('apt-get install'));
    expect(installs).toEqual([
      'apt-get install --yes --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold apparmor ca-certificates ethtool iptables kmod',
    ]);
    for (const p of ['apparmor', 'ca-certificates', 'ethtool', 'iptables', 'kmod', 'mount']) expect((await dpkgStatus(p)).status).toBe('install ok installed');
    expect(existsSync(path.join(root, 'usr/sbin/policy-rc.d'))).toBe(false);
    expect(server.requests.some((r) => r.endsWith('.deb'))).toBe(true);
  });

  it('second apply runs no apt command at all', async () => {
    const host = new RecordingHost({ root });
    const requestsBefore = server.requests.length;
    const report = await runPackages(model, host, 'apply', captureLog('info').log);
    expect(report.ok).toBe(true);
    expect(report.changed).toBe(0);
    expect(host.calls).toHaveLength(1);
    expect(host.calls[0]).toMatch(/^dpkg-query -W /);
    expect(server.requests.length).toBe(requestsBefore);
  });

  it('a pinned version is installed and held; moving the pin moves the package; a converged pin runs nothing', async () => {
    const pinned = (v: string): NodeModel => packagesModel(`ID=debian\nVERSION_ID="12"\n`, { extra: ['ethtool'], pin: { 'nodeup-pin-test': v } });
    const first = new RecordingHost({ root });
    expect((await runPackages(pinned('1.0'), first, 'apply', captureLog().log)).ok).toBe(true);
    expect(await dpkgStatus('nodeup-pin-test')).toEqual({ status: 'hold ok installed', version: '1.0' });
    expect(first.calls).toContain('apt-mark hold nodeup-pin-test');
    // Lists are fresh from the cold apply: no second update in this run.
    expect(first.calls.some((c) => c.startsWith('apt-get update'))).toBe(false);
    // A plain upgrade leaves the held package alone.
    const { stdout } = await sh('chroot', [root, 'apt-get', 'upgrade', '--simulate'], { env: { ...process.env, LC_ALL: 'C' } });
    expect(stdout).toMatch(/kept back:\s+nodeup-pin-test|^(?![\s\S]*Inst nodeup-pin-test)/m);

    const moved = new RecordingHost({ root });
    expect((await runPackages(pinned('2.0'), moved, 'apply', captureLog().log)).ok).toBe(true);
    expect(await dpkgStatus('nodeup-pin-test')).toEqual({ status: 'hold ok installed', version: '2.0' });
    expect(moved.calls.filter((c) => c.startsWith('apt-get install'))[0]).toMatch(/--allow-downgrades --allow-change-held-packages nodeup-pin-test=2\.0$/);

    const again = new RecordingHost({ root });
    const r = await runPackages(pinned('2.0'), again, 'apply', captureLog().log);
    expect(r.changed).toBe(0);
    expect(again.calls.every((c) => c.startsWith('dpkg-query'))).toBe(true);
  });

  it('waits while another dpkg holds the lock, logs the holder, then installs', async () => {
    // A real dpkg run whose preinst sleeps holds /var/lib/dpkg/lock-frontend and lock for ~6 s.
    await buildDeb('nodeup-lock-holder', '1.0', '#!/bin/sh\ntouch /tmp/nodeup-holder-started\nsleep 6\n');
    await fsp.copyFile(path.join(repo, 'nodeup-lock-holder_1.0_all.deb'), path.join(root, 'tmp/holder.deb'));
    const holder = spawn('chroot', [root, 'dpkg', '-i', '/tmp/holder.deb'], { stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => holder.on('exit', (code) => r(code)));
    for (let i = 0; i < 100 && !existsSync(path.join(root, 'tmp/nodeup-holder-started')); i++) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(path.join(root, 'tmp/nodeup-holder-started'))).toBe(true);

    const host = new RecordingHost({ root });
    const { log, lines } = captureLog('info');
    const started = Date.now();
    const m = packagesModel(`ID=debian\nVERSION_ID="12"\n`, { extra: ['ethtool', 'nodeup-after-lock'], pin: { 'nodeup-pin-test': '2.0' } });
    const report = await runPackages(m, host, 'apply', log);
    const waited = Date.now() - started;
    expect(await exited).toBe(0);
    expect(report.ok, JSON.stringify(report.results.filter((r) => r.error))).toBe(true);
    const waits = lines().filter((l) => l.msg === 'package manager lock held by another process, waiting');
    expect(waits.length).toBeGreaterThan(0);
    expect(waits[0]).toMatchObject({ lock: '/var/lib/dpkg/lock-frontend', holder: 'dpkg' });
    expect(Number(waits[0]?.holderPid)).toBe(holder.pid);
    expect(waited).toBeGreaterThan(2_000);
    expect((await dpkgStatus('nodeup-after-lock')).status).toBe('install ok installed');
    expect((await dpkgStatus('nodeup-lock-holder')).status).toBe('install ok installed');
  });

  it('retries a mirror answering 503, with backoff, and installs', async () => {
    // The root's apt retries each download 3 times itself (Acquire::Retries from the fixture): 5
    // failures outlast one apt-get install, so nodeup's own retry has to bring it home.
    server.failNext(5);
    const host = new RecordingHost({ root });
    const { log, lines } = captureLog('info');
    const m = packagesModel(`ID=debian\nVERSION_ID="12"\n`, { extra: ['ethtool', 'nodeup-after-503'] });
    const report = await runPackages(m, host, 'apply', log, { retryBaseMs: 200 });
    expect(report.ok, JSON.stringify(report.results.filter((r) => r.error))).toBe(true);
    const retries = lines().filter((l) => l.msg === 'transient package mirror failure, retrying');
    expect(retries.length).toBeGreaterThan(0);
    expect(String(retries[0]?.reason)).toMatch(/503|Failed to fetch/);
    expect((await dpkgStatus('nodeup-after-503')).status).toBe('install ok installed');
  });

  it('index files a power cut left empty: apt-get update alone keeps them so, nodeup starts the lists over and installs', async () => {
    const lists = path.join(root, 'var/lib/apt/lists');
    const indexes = (await fsp.readdir(lists)).filter((n) => n.endsWith('_Packages'));
    expect(indexes.length).toBeGreaterThan(0);
    for (const n of indexes) await fsp.truncate(path.join(lists, n), 0);
    // The premise, on the real apt: the Release file is unchanged, so an update fetches no index again.
    await sh('chroot', [root, 'apt-get', 'update']);
    for (const n of indexes) expect((await fsp.stat(path.join(lists, n))).size, `${n} after a plain apt-get update`).toBe(0);
    const host = new RecordingHost({ root });
    const { log, lines } = captureLog('info');
    const m = packagesModel(`ID=debian\nVERSION_ID="12"\n`, { extra: ['ethtool', 'nodeup-after-cut'] });
    const report = await runPackages(m, host, 'apply', log);
    expect(report.ok, JSON.stringify(report.results.filter((r) => r.error))).toBe(true);
    expect(lines().find((l) => String(l.msg).includes('removing its package lists'))?.empty).toEqual(indexes);
    expect(host.calls.filter((c) => c.startsWith('apt-get update'))).toHaveLength(2);
    expect((await dpkgStatus('nodeup-after-cut')).status).toBe('install ok installed');
    for (const n of indexes) expect((await fsp.stat(path.join(lists, n))).size).toBeGreaterThan(0);
  });

  it('the adapter sees fresh lists after the update (no refresh needed)', async () => {
    const snap = await new AptManager(defaultManagerOptions).snapshot(new RecordingHost({ root }), ['iptables']);
    expect(snap.listsStale).toBeUndefined();
    expect(snap.installed.get('iptables')?.healthy).toBe(true);
    expect(repoRoot).toBeTruthy();
  });

  it('air-gapped: with the image source out of reach the install fails; spec.packages.repositories with onlyRepositories installs from the site repository alone', async () => {
    const sourcesList = path.join(root, 'etc/apt/sources.list');
    const before = await fsp.readFile(sourcesList, 'utf8');
    // The image's own source: nothing answers there (as the distro's mirror from an air-gapped site).
    await fsp.writeFile(sourcesList, 'deb [trusted=yes] http://127.0.0.1:9/debian bookworm main\n');
    try {
      const want = { extra: ['ethtool', 'nodeup-after-only'] };
      const cut = await runPackages(packagesModel(`ID=debian\nVERSION_ID="12"\n`, want), new RecordingHost({ root }), 'apply', captureLog('info').log, { attempts: 1 });
      expect(cut.ok, 'the image source alone cannot serve it').toBe(false);
      expect((await dpkgStatus('nodeup-after-only')).status).not.toBe('install ok installed');

      const site = { repositories: [{ name: 'site', url: server.url, suites: ['./'], trusted: true }], onlyRepositories: true };
      const host = new RecordingHost({ root });
      const requests = server.requests.length;
      const report = await runPackages(packagesModel(`ID=debian\nVERSION_ID="12"\n`, { ...want, ...site }), host, 'apply', captureLog('info').log, { attempts: 1 });
      expect(report.ok, JSON.stringify(report.results.filter((r) => r.error))).toBe(true);
      expect((await dpkgStatus('nodeup-after-only')).status).toBe('install ok installed');
      const only = '-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/etc/apt/nodeup-sources.d';
      expect(host.calls.filter((c) => c.startsWith('apt-get'))).toEqual([`apt-get update ${only}`, expect.stringMatching(new RegExp(`^apt-get install .* ${only.replaceAll('.', '\\.')} nodeup-after-only$`))]);
      expect(server.requests.slice(requests).some((r) => r.endsWith('nodeup-after-only_1.0_all.deb'))).toBe(true);
      expect(await fsp.readFile(path.join(root, 'etc/apt/sources.list.d/nodeup-site.sources'), 'utf8')).toContain(`URIs: ${server.url}\nSuites: ./\nTrusted: yes\n`);
      expect(await fsp.readlink(path.join(root, 'etc/apt/nodeup-sources.d/nodeup-site.sources'))).toBe('/etc/apt/sources.list.d/nodeup-site.sources');
      // A second run changes nothing and runs no apt command.
      const again = new RecordingHost({ root });
      const second = await runPackages(packagesModel(`ID=debian\nVERSION_ID="12"\n`, { ...want, ...site }), again, 'apply', captureLog('info').log, { attempts: 1 });
      expect(second.changed).toBe(0);
      expect(again.calls.filter((c) => c.startsWith('apt-get'))).toEqual([]);
    } finally {
      await fsp.writeFile(sourcesList, before);
      await fsp.rm(path.join(root, 'etc/apt/sources.list.d/nodeup-site.sources'), { force: true });
      await fsp.rm(path.join(root, 'etc/apt/nodeup-sources.d'), { recursive: true, force: true });
    }
  });
});
