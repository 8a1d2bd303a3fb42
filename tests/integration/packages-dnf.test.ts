// Real dnf and rpm (Debian's dnf 4, rpm, createrepo-c; scripts/fixtures/rpm-repo.sh installs them)
// against a local repository of small RPMs built here with rpmbuild: stubs named like the rocky-9
// row's base packages, a pinned package in two versions, an extra with a dependency, and a stub of
// the versionlock plugin package. nodeup installs into a separate root with --installroot.
// Proves: one batched dnf install, rpm -q says installed, a second apply installs nothing (no dnf
// command at all), a pinned version is locked in the root's versionlock.list and real dnf then
// refuses to move it, a held rpmdb lock is waited for with its holder named, and with the root's
// repository out of reach spec.packages.repositories + onlyRepositories install from the site's.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeModel } from '../../src/model/node-model.ts';
import { wantedPackages } from '../../src/packages/component.ts';
import { captureLog, fixtureOsRelease, packagesModel, runPackages } from '../support/packages.ts';
import { RecordingHost, repoRoot, requireTool, sh } from './packages-support.ts';

const setup = 'scripts/fixtures/rpm-repo.sh';
let work = '';
let root = '';
let repo = '';
let rocky = '';
let hostLocklistBefore: string | undefined;

const rpmQ = async (pkg: string): Promise<string> => {
  const { stdout } = await sh('rpm', ['--root', root, '-q', '--qf', '%{VERSION}-%{RELEASE}', pkg]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
  return stdout.trim();
};
const model = (packages: Record<string, unknown> = {}): NodeModel => packagesModel(rocky, packages);

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the dnf integration test needs root');
  rocky = await fixtureOsRelease('rocky-9');
  work = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-dnf-it-'));
  root = path.join(work, 'root');
  repo = path.join(work, 'repo');
  const base = wantedPackages(model().distro, model().spec.packages).map((w) => `${w.name}-1.0-1`);
  // rpm-repo.sh installs dnf, rpm, createrepo-c and dnf-plugins-core when they are missing.
  await sh('bash', [path.join(repoRoot, setup), repo, ...base, 'python3-dnf-plugin-versionlock-4.3.0-1', 'nodeup-pin-1.0-1', 'nodeup-pin-2.0-1', 'nodeup-dep-1.0-1', 'nodeup-extra-1.0-1:nodeup-dep', 'nodeup-after-lock-1.0-1', 'nodeup-after-only-1.0-1'], {
    maxBuffer: 16 << 20,
  }).catch((err: unknown) => {
    throw new Error(`${setup} failed (it builds the RPMs and installs rpm/createrepo-c/dnf): ${String(err)}`);
  });
  for (const tool of ['dnf', 'rpm', 'createrepo_c']) await requireTool(tool, setup);
  await fsp.mkdir(path.join(root, 'etc/yum.repos.d'), { recursive: true });
  await fsp.mkdir(path.join(root, 'etc/dnf/plugins'), { recursive: true });
  await fsp.copyFile(path.join(repoRoot, 'tests/fixtures/roots/rocky-9/etc/os-release'), path.join(root, 'etc/os-release'));
  await fsp.writeFile(path.join(root, 'etc/dnf/dnf.conf'), '[main]\ngpgcheck=0\ninstallonly_limit=3\n');
  await fsp.writeFile(path.join(root, 'etc/yum.repos.d/nodeup-test.repo'), `[nodeup-test]\nname=nodeup test\nbaseurl=file://${repo}\ngpgcheck=0\nenabled=1\n`);
  hostLocklistBefore = await fsp.readFile('/etc/dnf/plugins/versionlock.list', 'utf8').catch(() => undefined);
}, 300_000);

afterAll(async () => {
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

describe('packages on a separate root with real dnf', () => {
  it('cold apply: one batched dnf install into the root; rpm -q says installed', async () => {
    const host = new RecordingHost({ root });
    const report = await runPackages(model({ extra: ['nodeup-extra'] }), host, 'apply', captureLog('info').log);
    expect(report.ok, JSON.stringify(report.results.filter((r) => r.error))).toBe(true);
    const dnf = host.calls.filter((c) => c.startsWith('dnf '));
    expect(dnf).toEqual([
      'dnf --installroot=<root> --releasever=9 install --assumeyes --setopt=install_weak_deps=False --setopt=exit_on_lock=True ca-certificates container-selinux iptables-nft kmod nodeup-extra util-linux',
    ]);
    for (const p of ['ca-certificates', 'container-selinux', 'iptables-nft', 'kmod', 'util-linux', 'nodeup-extra', 'nodeup-dep']) expect(await rpmQ(p)).toBe('1.0-1');
  });

  it('second apply installs nothing and runs no dnf command', async () => {
    const host = new RecordingHost({ root });
    const report = await runPackages(model({ extra: ['nodeup-extra'] }), host, 'apply', captureLog('info').log);
    expect(report.changed).toBe(0);
    expect(host.calls).toHaveLength(1);
    expect(host.calls[0]).toMatch(/^rpm --root <root> -q /);
  });

  it('a pinned version is installed and locked; real dnf then refuses to move it', async () => {
    const pinned = model({ extra: ['nodeup-extra'], pin: { 'nodeup-pin': '1.0-1' } });
    const host = new RecordingHost({ root });
    const report = await runPackages(pinned, host, 'apply', captureLog('info').log);
    expect(report.ok, JSON.stringify(report.results.filter((r) => r.error))).toBe(true);
    expect(host.calls.filter((c) => c.startsWith('dnf '))[0]).toMatch(/ nodeup-pin-1\.0-1 python3-dnf-plugin-versionlock$/);
    expect(await rpmQ('nodeup-pin')).toBe('1.0-1');
    const list = await fsp.readFile(path.join(root, 'etc/dnf/plugins/versionlock.list'), 'utf8');
    expect(list).toContain('nodeup-pin-0:1.0-1.*');
    // The lock went into the root, not into this machine's dnf config.
    expect(await fsp.readFile('/etc/dnf/plugins/versionlock.list', 'utf8').catch(() => undefined)).toBe(hostLocklistBefore);

    // Real dnf with the versionlock plugin reading the root's list: an upgrade finds nothing to do.
    await fsp.writeFile(path.join(root, 'etc/dnf/plugins/versionlock.conf'), `[main]\nenabled = 1\nlocklist = ${path.join(root, 'etc/dnf/plugins/versionlock.list')}\n`);
    const res = await sh('dnf', [`--installroot=${root}`, '--releasever=9', `--setopt=pluginconfpath=${path.join(root, 'etc/dnf/plugins')}`, '-y', 'upgrade', 'nodeup-pin'], { env: { ...process.env, LC_ALL: 'C' } }).catch(
      (e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
    );
    expect(`${res.stdout}${res.stderr}`).toMatch(/Nothing to do|filtered out by exclude/);
    expect(await rpmQ('nodeup-pin')).toBe('1.0-1');

    const again = new RecordingHost({ root });
    const second = await runPackages(pinned, again, 'apply', captureLog().log);
    expect(second.changed).toBe(0);
    expect(again.calls.every((c) => c.startsWith('rpm '))).toBe(true);
  });

  it('waits while another process holds the rpmdb lock, names it, then installs', async () => {
    const holder = spawn('sleep', ['5'], { stdio: 'ignore' });
    const exited = new Promise<void>((r) => holder.on('exit', () => r()));
    await fsp.writeFile(path.join(root, 'var/lib/dnf/rpmdb_lock.pid'), String(holder.pid));
    const host = new RecordingHost({ root });
    const { log, lines } = captureLog('info');
    const started = Date.now();
    const report = await runPackages(model({ extra: ['nodeup-extra', 'nodeup-after-lock'], pin: { 'nodeup-pin': '1.0-1' } }), host, 'apply', log);
    await exited;
    expect(report.ok, JSON.stringify(report.results.filter((r) => r.error))).toBe(true);
    const waits = lines().filter((l) => l.msg === 'package manager lock held by another process, waiting');
    expect(waits.length).toBeGreaterThan(0);
    expect(waits[0]).toMatchObject({ holderPid: String(holder.pid), holder: 'sleep' });
    expect(Date.now() - started).toBeGreaterThan(2_000);
    expect(await rpmQ('nodeup-after-lock')).toBe('1.0-1');
    expect(existsSync(path.join(root, 'var/lib/dnf'))).toBe(true);
  });

  it('air-gapped: with the root repository out of reach the install fails; spec.packages.repositories with onlyRepositories installs from the site repository alone', async () => {
    const repos = path.join(root, 'etc/yum.repos.d');
    // The image's own repository: nothing answers there (the distro's mirror seen from an air-gapped site).
    await fsp.rename(path.join(repos, 'nodeup-test.repo'), path.join(work, 'nodeup-test.repo'));
    await fsp.writeFile(path.join(repos, 'image.repo'), '[image]\nname=image\nbaseurl=http://127.0.0.1:9/rocky/\ngpgcheck=0\nenabled=1\n');
    try {
      const want = { extra: ['nodeup-extra', 'nodeup-after-only'], pin: { 'nodeup-pin': '1.0-1' } };
      const cut = await runPackages(model(want), new RecordingHost({ root }), 'apply', captureLog('info').log, { attempts: 1 });
      expect(cut.ok, 'the image repository alone cannot serve it').toBe(false);
      expect(await rpmQ('nodeup-after-only')).not.toBe('1.0-1');

      const site = { repositories: [{ name: 'site', url: `file://${repo}`, trusted: true }], onlyRepositories: true };
      const host = new RecordingHost({ root });
      const report = await runPackages(model({ ...want, ...site }), host, 'apply', captureLog('info').log, { attempts: 1 });
      expect(report.ok, JSON.stringify(report.results.filter((r) => r.error))).toBe(true);
      expect(await rpmQ('nodeup-after-only')).toBe('1.0-1');
      expect(host.calls.filter((c) => c.startsWith('dnf '))).toEqual([
        'dnf --installroot=<root> --releasever=9 install --assumeyes --disablerepo=* --enablerepo=nodeup-* --setopt=install_weak_deps=False --setopt=exit_on_lock=True nodeup-after-only',
      ]);
      expect(await fsp.readFile(path.join(repos, 'nodeup-site.repo'), 'utf8')).toContain(`[nodeup-site]\nname=nodeup site (spec.packages.repositories)\nbaseurl=file://${repo}\nenabled=1\ngpgcheck=0\n`);
      const again = new RecordingHost({ root });
      expect((await runPackages(model({ ...want, ...site }), again, 'apply', captureLog().log)).changed).toBe(0);
      expect(again.calls.filter((c) => c.startsWith('dnf '))).toEqual([]);
    } finally {
      await fsp.rm(path.join(repos, 'image.repo'), { force: true });
      await fsp.rm(path.join(repos, 'nodeup-site.repo'), { force: true });
      await fsp.rename(path.join(work, 'nodeup-test.repo'), path.join(repos, 'nodeup-test.repo'));
    }
  });
});
