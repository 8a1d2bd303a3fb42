// The package task on the test host: scripted dpkg-query / apt-get / rpm / dnf answers, recorded
// command lines, virtual time for the lock wait and retries.
import { afterEach, describe, expect, it } from 'vitest';
import { AgentError } from '../engine/errors.ts';
import { createTestHost, type ScriptedCommand, type TestHost } from '../../tests/support/test-host.ts';
import { renderPlan } from '../engine/plan-printer.ts';
import { classifyApt, parseDpkgQuery } from './apt.ts';
import { classifyDnf, parseRpmQuery, parseVersionlock, renderVersionlock, rpmVersionMatches } from './dnf.ts';
import { captureLog, fixtureOsRelease, packagesModel, runPackages } from '../../tests/support/packages.ts';

const base = ['apparmor', 'ca-certificates', 'iptables', 'kmod', 'mount'];
const dpkgQuery = /^dpkg-query -W -f \S+ /;
const line = (name: string, abbrev = 'ii ', version = '1.0-1'): string => `${name}\t${abbrev}\t${version}\n`;
const installed = (names: readonly string[], extra = ''): string => names.map((n) => line(n)).join('') + extra;

let hosts: TestHost[] = [];
afterEach(async () => {
  for (const h of hosts) await h.dispose();
  hosts = [];
});

async function debHost(commands: ScriptedCommand[], freshLists = false): Promise<TestHost> {
  const host = await createTestHost({ fixture: 'debian-12', commands });
  hosts.push(host);
  if (freshLists) {
    await host.fs.mkdirp('/var/lib/apt/lists', 0o755);
    await host.fs.writeAtomic('/var/lib/apt/lists/mirror_dists_bookworm_main_binary-amd64_Packages', 'Package: x\n', { mode: 0o644 });
  }
  return host;
}

async function debian12(packages: Record<string, unknown> = {}) {
  return packagesModel(await fixtureOsRelease('debian-12'), packages);
}

describe('apt: batching, no upgrades, list refresh', () => {
  it('installs every missing package in one apt-get install, after one apt-get update when there are no lists', async () => {
    const host = await debHost([
      { match: dpkgQuery, times: 1, stdout: line('mount') + line('iptables', 'un ', ''), exitCode: 1 },
      { match: 'apt-get update' },
      { match: /^apt-get install /, stdout: 'Setting up kmod (30+20221128-1) ...\n' },
      { match: dpkgQuery, stdout: installed(base) },
    ]);
    const { log, lines } = captureLog();
    const report = await runPackages(await debian12(), host, 'apply', log);
    expect(report.ok).toBe(true);
    expect(host.commandLog()).toEqual([
      'dpkg-query -W -f ${Package}\\t${db:Status-Abbrev}\\t${Version}\\n apparmor ca-certificates iptables kmod mount',
      'apt-get update',
      'apt-get install --yes --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold apparmor ca-certificates iptables kmod',
      'dpkg-query -W -f ${Package}\\t${db:Status-Abbrev}\\t${Version}\\n apparmor ca-certificates iptables kmod mount',
    ]);
    expect(report.results.filter((r) => r.status === 'changed').map((r) => r.key)).toEqual(['package:apparmor', 'package:ca-certificates', 'package:iptables', 'package:kmod']);
    expect(lines().some((l) => l.msg === 'package manager progress' && String(l.line).startsWith('Setting up kmod'))).toBe(true);
    // No policy-rc.d is left behind in the root.
    expect(await host.fs.stat('/usr/sbin/policy-rc.d')).toBeUndefined();
  });

  it('runs no apt command at all when everything is installed (installed packages are never upgraded)', async () => {
    const host = await debHost([{ match: dpkgQuery, stdout: installed(base) }]);
    const report = await runPackages(await debian12(), host, 'apply', captureLog().log);
    expect(report.changed).toBe(0);
    expect(host.commandLog()).toHaveLength(1);
    expect(host.commandLog()[0]).toMatch(/^dpkg-query /);
  });

  it('skips apt-get update when the lists are fresh, and refreshes once when apt cannot find a package', async () => {
    const host = await debHost(
      [
        { match: dpkgQuery, times: 1, stdout: installed(['apparmor', 'ca-certificates', 'iptables', 'mount']) },
        { match: /^apt-get install /, times: 1, exitCode: 100, stdout: 'E: Unable to locate package kmod\n' },
        { match: 'apt-get update' },
        { match: /^apt-get install /, times: 1 },
        { match: dpkgQuery, stdout: installed(base) },
      ],
      true,
    );
    const report = await runPackages(await debian12(), host, 'apply', captureLog().log);
    expect(report.ok).toBe(true);
    expect(host.commandLog().map((c) => c.split(' ').slice(0, 2).join(' '))).toEqual(['dpkg-query -W', 'apt-get install', 'apt-get update', 'apt-get install', 'dpkg-query -W']);
  });

  it('fails clearly when a package is missing even after the refresh and a start-over of the lists, and goes no further', async () => {
    const host = await debHost([
      { match: dpkgQuery, stdout: installed(['apparmor', 'ca-certificates', 'iptables', 'kmod', 'mount']) },
      { match: 'apt-get update' },
      { match: /^apt-get install /, exitCode: 100, stdout: "E: Package 'nosuchpkg' has no installation candidate\n" },
    ]);
    const report = await runPackages(await debian12({ extra: ['nosuchpkg'] }), host, 'apply', captureLog().log);
    expect(report.ok).toBe(false);
    const failed = report.results.find((r) => r.key === 'package:nosuchpkg');
    expect(failed?.status).toBe('failed');
    expect(JSON.stringify(failed?.error)).toContain('package nosuchpkg is not in the package lists');
    // No lists at first: update, install (missing), lists removed, update, install (missing): done.
    expect(host.commandLog().map((c) => c.split(' ').slice(0, 2).join(' '))).toEqual(['dpkg-query -W', 'apt-get update', 'apt-get install', 'apt-get update', 'apt-get install']);
  });

  it('starts the lists over when an update does not bring a package back (index files a power cut left empty)', async () => {
    const host = await debHost(
      [
        { match: dpkgQuery, times: 1, stdout: installed(['ca-certificates', 'iptables', 'kmod', 'mount']) },
        { match: /^apt-get install /, times: 2, exitCode: 100, stdout: 'E: Unable to locate package apparmor\n' },
        { match: 'apt-get update' },
        { match: /^apt-get install /, times: 1 },
        { match: dpkgQuery, stdout: installed(base) },
      ],
      true,
    );
    await host.fs.writeAtomic('/var/lib/apt/lists/mirror_dists_bookworm_InRelease', 'Origin: x\n', { mode: 0o644 });
    await host.fs.writeAtomic('/var/lib/apt/lists/mirror_dists_bookworm_main_binary-amd64_Packages', '', { mode: 0o644 });
    await host.fs.writeAtomic('/var/lib/apt/lists/lock', '', { mode: 0o640 });
    const { log, lines } = captureLog();
    const report = await runPackages(await debian12(), host, 'apply', log);
    expect(report.ok, JSON.stringify(report.results.filter((r) => r.error))).toBe(true);
    expect(host.commandLog().map((c) => c.split(' ').slice(0, 2).join(' '))).toEqual(['dpkg-query -W', 'apt-get install', 'apt-get update', 'apt-get install', 'apt-get update', 'apt-get install', 'dpkg-query -W']);
    expect(await host.fs.list('/var/lib/apt/lists')).toEqual(['lock']);
    expect(lines().some((l) => String(l.msg).includes('removing its package lists') && JSON.stringify(l.empty) === '["mirror_dists_bookworm_main_binary-amd64_Packages"]')).toBe(true);
  });

  it('installs a pinned version with name=version and holds it; a held pinned package is converged', async () => {
    const host = await debHost([
      { match: dpkgQuery, times: 1, stdout: installed(base) + line('containerd', 'ii ', '1.6.20~ds1-1+b1') },
      { match: 'apt-get update' },
      { match: /^apt-get install / },
      { match: 'apt-mark hold containerd' },
      { match: dpkgQuery, stdout: installed(base) + line('containerd', 'hi ', '1.6.20~ds1-1') },
    ]);
    const report = await runPackages(await debian12({ pin: { containerd: '1.6.20~ds1-1' } }), host, 'apply', captureLog().log);
    expect(report.ok).toBe(true);
    expect(host.commandLog()).toContain(
      'apt-get install --yes --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --allow-downgrades --allow-change-held-packages containerd=1.6.20~ds1-1',
    );
    expect(report.results.find((r) => r.key === 'package:containerd')?.changes.map((c) => c.field)).toEqual(['version', 'hold', 'runs', 'runs', 'runs']);

    const again = await debHost([{ match: dpkgQuery, stdout: installed(base) + line('containerd', 'hi ', '1.6.20~ds1-1') }]);
    const second = await runPackages(await debian12({ pin: { containerd: '1.6.20~ds1-1' } }), again, 'apply', captureLog().log);
    expect(second.changed).toBe(0);
    expect(again.commandLog()).toHaveLength(1);
  });
});

describe('apt: locks, interrupted dpkg, mirror failures', () => {
  it('waits while unattended-upgrades holds the dpkg lock, saying who holds it, then installs', async () => {
    const locked = 'E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)\nE: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?\n';
    const host = await debHost(
      [
        { match: dpkgQuery, times: 1, stdout: installed(['apparmor', 'ca-certificates', 'iptables', 'mount']) },
        { match: /^apt-get install /, times: 3, exitCode: 100, stderr: locked },
        { match: /^apt-get install /, times: 1 },
        { match: dpkgQuery, stdout: installed(base) },
      ],
      true,
    );
    const { log, lines } = captureLog();
    const report = await runPackages(await debian12(), host, 'apply', log);
    expect(report.ok).toBe(true);
    const waits = lines().filter((l) => l.msg === 'package manager lock held by another process, waiting');
    expect(waits).toHaveLength(3);
    expect(waits[0]).toMatchObject({ lock: '/var/lib/dpkg/lock-frontend', holderPid: '4242', holder: 'unattended-upgr' });
    expect(host.virtualTime).toBe(1000 + 2000 + 4000);
  });

  it('gives up after the lock timeout with a LOCKED error naming the holder', async () => {
    const host = await debHost(
      [
        { match: dpkgQuery, stdout: installed(['apparmor', 'ca-certificates', 'iptables', 'mount']) },
        { match: /^apt-get install /, exitCode: 100, stderr: 'E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 77 (apt-get)\n' },
      ],
      true,
    );
    const report = await runPackages(await debian12({ lockTimeoutSeconds: 30 }), host, 'apply', captureLog().log);
    const r = report.results.find((x) => x.key === 'package:kmod');
    expect(r?.status).toBe('failed');
    expect(r?.error?.code).toBe('LOCKED');
    expect(r?.error?.message).toMatch(/\/var\/lib\/dpkg\/lock-frontend is still held by process 77 \(apt-get\) after 3\ds/);
    expect(host.virtualTime).toBeGreaterThanOrEqual(30_000);
    expect(host.virtualTime).toBeLessThan(45_000);
  });

  it('runs dpkg --configure -a when dpkg was interrupted, then installs', async () => {
    const host = await debHost(
      [
        { match: dpkgQuery, times: 1, stdout: installed(['apparmor', 'ca-certificates', 'iptables', 'mount']) },
        { match: /^apt-get install /, times: 1, exitCode: 100, stderr: "E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem. \n" },
        { match: 'dpkg --configure -a --force-confdef --force-confold' },
        { match: /^apt-get install /, times: 1 },
        { match: dpkgQuery, stdout: installed(base) },
      ],
      true,
    );
    const report = await runPackages(await debian12(), host, 'apply', captureLog().log);
    expect(report.ok).toBe(true);
    expect(host.commandLog().filter((c) => c.startsWith('dpkg --configure'))).toHaveLength(1);
  });

  it('repairs a half-configured package it finds, with dpkg --configure -a first', async () => {
    const host = await debHost([
      { match: dpkgQuery, times: 1, stdout: installed(['apparmor', 'ca-certificates', 'kmod', 'mount']) + line('iptables', 'iF ') },
      { match: 'dpkg --configure -a --force-confdef --force-confold' },
      { match: dpkgQuery, stdout: installed(base) },
    ]);
    const report = await runPackages(await debian12(), host, 'apply', captureLog().log);
    expect(report.ok).toBe(true);
    expect(report.results.find((r) => r.key === 'package:iptables')?.changes[0]).toEqual({ field: 'repair', from: 'half-configured', to: 'configured' });
    expect(host.commandLog().some((c) => c.startsWith('apt-get'))).toBe(false);
  });

  it('retries transient mirror failures with backoff, then fails after the attempts', async () => {
    const fail503 = 'Err:1 http://mirror/debian bookworm/main amd64 kmod amd64 30+20221128-1\n  503  Service Unavailable\nE: Failed to fetch http://mirror/debian/pool/main/k/kmod/kmod_30+20221128-1_amd64.deb  503  Service Unavailable\n';
    const host = await debHost(
      [
        { match: dpkgQuery, times: 1, stdout: installed(['apparmor', 'ca-certificates', 'iptables', 'mount']) },
        { match: /^apt-get install /, times: 2, exitCode: 100, stderr: fail503 },
        { match: /^apt-get install /, times: 1 },
        { match: dpkgQuery, stdout: installed(base) },
      ],
      true,
    );
    const { log, lines } = captureLog();
    const report = await runPackages(await debian12(), host, 'apply', log, { retryBaseMs: 100 });
    expect(report.ok).toBe(true);
    expect(lines().filter((l) => l.msg === 'transient package mirror failure, retrying').map((l) => l.waitMs)).toEqual([100, 200]);

    const down = await debHost(
      [
        { match: dpkgQuery, stdout: installed(['apparmor', 'ca-certificates', 'iptables', 'mount']) },
        { match: /^apt-get install /, exitCode: 100, stderr: fail503 },
      ],
      true,
    );
    const failed = await runPackages(await debian12({ attempts: 3 }), down, 'apply', captureLog().log, { retryBaseMs: 100 });
    expect(failed.ok).toBe(false);
    expect(down.commandLog().filter((c) => c.startsWith('apt-get install'))).toHaveLength(3);
  });

  it('plans the exact commands, on the first changing package, and changes nothing', async () => {
    const host = await debHost([{ match: dpkgQuery, stdout: installed(['ca-certificates', 'mount']) }]);
    const report = await runPackages(await debian12({ extra: ['jq'] }), host, 'plan', captureLog().log);
    expect(renderPlan(report)).toBe(
      [
        '+ package:apparmor',
        '    install: repository version',
        '    runs: apt-get update  # no package lists',
        '    runs: apt-get install --yes --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold apparmor iptables jq kmod',
        '+ package:iptables',
        '    install: repository version',
        '+ package:jq',
        '    install: repository version',
        '+ package:kmod',
        '    install: repository version',
        '7 tasks: 4 would change, 3 unchanged, 0 failed, 0 blocked',
        '',
      ].join('\n'),
    );
    expect(host.commandLog()).toHaveLength(1);
  });
});

describe('dnf', () => {
  const rpmQuery = /^rpm --root \S+ -q --qf /;
  const rpmLine = (name: string, evr = '0\t1.0\t1'): string => `${name}\t${evr}\tx86_64\n`;
  const rocky = ['ca-certificates', 'container-selinux', 'iptables-nft', 'kmod', 'util-linux'];

  it('installs the missing packages in one dnf install into the root, then nothing on the next run', async () => {
    const host = await createTestHost({
      fixture: 'rocky-9',
      commands: [
        { match: rpmQuery, times: 1, exitCode: 2, stdout: rpmLine('util-linux') + rpmLine('ca-certificates') + 'package kmod is not installed\n' },
        { match: /^dnf --installroot=\S+ --releasever=9 install /, stdout: 'Installing       : kmod-28-10.el9.x86_64\nComplete!\n' },
        { match: rpmQuery, stdout: rocky.map((n) => rpmLine(n)).join('') },
      ],
    });
    hosts.push(host);
    const model = packagesModel(await fixtureOsRelease('rocky-9'));
    const report = await runPackages(model, host, 'apply', captureLog().log);
    expect(report.ok).toBe(true);
    const dnf = host.commandLog().filter((c) => c.startsWith('dnf '));
    expect(dnf).toEqual([
      `dnf --installroot=${host.root} --releasever=9 install --assumeyes --setopt=install_weak_deps=False --setopt=exit_on_lock=True container-selinux iptables-nft kmod`,
    ]);
    host.clearLog();
    const second = await runPackages(model, host, 'apply', captureLog().log);
    expect(second.changed).toBe(0);
    expect(host.commandLog().every((c) => c.startsWith('rpm '))).toBe(true);
  });

  it('installs a pinned version, adds the versionlock plugin, and locks it in versionlock.list', async () => {
    const host = await createTestHost({
      fixture: 'rocky-9',
      commands: [
        { match: rpmQuery, times: 1, stdout: rocky.map((n) => rpmLine(n)).join('') + rpmLine('containerd.io', '0\t1.7.27\t3.1.el9') },
        { match: /^dnf .* install .*containerd\.io-1\.7\.28-1\.el9 python3-dnf-plugin-versionlock$/ },
        { match: rpmQuery, stdout: rocky.map((n) => rpmLine(n)).join('') + rpmLine('containerd.io', '0\t1.7.28\t1.el9') + rpmLine('python3-dnf-plugin-versionlock', '0\t4.3.0\t16.el9') },
      ],
    });
    hosts.push(host);
    await host.fs.mkdirp('/etc/dnf/plugins', 0o755);
    await host.fs.writeAtomic('/etc/dnf/plugins/versionlock.list', '# user lock\nkernel-0:5.14.0-427.el9.*\ncontainerd.io-0:1.6.0-1.el9.*\n', { mode: 0o644 });
    const model = packagesModel(await fixtureOsRelease('rocky-9'), { pin: { 'containerd.io': '1.7.28-1.el9' } });
    const report = await runPackages(model, host, 'apply', captureLog().log);
    expect(report.ok).toBe(true);
    const list = (await host.fs.read('/etc/dnf/plugins/versionlock.list'))?.toString();
    expect(list).toBe('# user lock\nkernel-0:5.14.0-427.el9.*\n# nodeup: pinned by spec.packages.pin\ncontainerd.io-0:1.7.28-1.el9.*\n');
  });

  it('waits while another process holds the rpmdb lock, naming it', async () => {
    const host = await createTestHost({
      fixture: 'rocky-9',
      commands: [
        { match: rpmQuery, times: 1, stdout: rocky.filter((n) => n !== 'kmod').map((n) => rpmLine(n)).join('') },
        { match: /^dnf /, times: 2, exitCode: 200, stdout: 'Running transaction check\nRPMDB already locked by 4711\n  The application with PID 4711 is: dnf-automatic\n' },
        { match: /^dnf /, times: 1 },
        { match: rpmQuery, stdout: rocky.map((n) => rpmLine(n)).join('') },
      ],
    });
    hosts.push(host);
    const { log, lines } = captureLog();
    const report = await runPackages(packagesModel(await fixtureOsRelease('rocky-9')), host, 'apply', log);
    expect(report.ok).toBe(true);
    expect(lines().filter((l) => l.msg === 'package manager lock held by another process, waiting')[0]).toMatchObject({ holderPid: '4711', holder: 'dnf-automatic' });
  });
});

describe('parsers', () => {
  it('reads dpkg-query status: installed, held, half-configured, absent', () => {
    const m = parseDpkgQuery(line('a') + line('b', 'hi ', '2.0') + line('c', 'iF ') + line('d', 'un ', '') + line('e', 'rc ', '1.0'));
    expect([...m.keys()]).toEqual(['a', 'b', 'c']);
    expect(m.get('b')).toEqual({ name: 'b', version: '2.0', held: true, healthy: true });
    expect(m.get('c')?.healthy).toBe(false);
  });

  it.each([
    ['E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 12 (apt)', 'lock'],
    ['E: Could not get lock /var/lib/apt/lists/lock - open (11: Resource temporarily unavailable)', 'lock'],
    ['dpkg: error: dpkg frontend lock was locked by another process with pid 99', 'lock'],
    ["E: dpkg was interrupted, you must manually run 'sudo dpkg --configure -a' to correct the problem.", 'interrupted'],
    ['W: Failed to fetch http://m/dists/bookworm/InRelease  Temporary failure resolving \'m\'', 'transient'],
    ['E: Failed to fetch http://m/pool/x_1.0_amd64.deb  404  Not Found [IP: 1.2.3.4 80]', 'unavailable'],
    ["E: Version '9.9' for 'jq' was not found", 'unavailable'],
    ['E: Sub-process /usr/bin/dpkg returned an error code (1)', 'failed'],
  ])('classifies apt output %j as %s', (stderr, kind) => {
    expect(classifyApt({ exitCode: 100, stdout: '', stderr }).kind).toBe(kind);
  });

  it('reads an apt-get update that exits 0 but failed to fetch as transient', () => {
    expect(classifyApt({ exitCode: 0, stdout: 'W: Some index files failed to download. They have been ignored, or old ones used instead.\n', stderr: '' }).kind).toBe('transient');
  });

  it.each([
    ['Error: Unable to find a match: nosuch', 'unavailable'],
    ['No match for argument: nosuch\nError: Unable to find a match: nosuch', 'unavailable'],
    ["Curl error (6): Couldn't resolve host name for http://m/repodata/repomd.xml", 'transient'],
    ["Error: Failed to download metadata for repo 'baseos': Cannot download repomd.xml", 'transient'],
    ['Error: Transaction test error:\n  file /x conflicts', 'failed'],
  ])('classifies dnf output %j as %s', (stdout, kind) => {
    expect(classifyDnf({ exitCode: 1, stdout, stderr: '' }).kind).toBe(kind);
  });

  it('reads rpm -q output and versionlock.list', () => {
    const m = parseRpmQuery('a\t0\t1.0\t1.el9\tx86_64\npackage b is not installed\nc\t2\t3.1\t4\tnoarch\n', 'c-2:3.1-4.*\n!a-0:1.0-1.el9.*\n');
    expect(m.get('a')).toEqual({ name: 'a', version: '0:1.0-1.el9', held: false, healthy: true });
    expect(m.get('c')?.held).toBe(true);
    expect(m.has('b')).toBe(false);
    expect(parseVersionlock('# c\nfoo-bar-0:1.2-3.el9.*\n')).toEqual(new Map([['foo-bar', '0:1.2-3.el9']]));
  });

  it.each([
    ['0:1.7.28-1.el9', '1.7.28-1.el9', true],
    ['0:1.7.28-1.el9', '0:1.7.28-1.el9', true],
    ['0:1.7.28-1.el9', '1.7.28', true],
    ['0:1.7.28-1.el9', '1.7.27', false],
    ['1:2.0-1', '2.0-1', true],
    ['1:2.0-1', '0:2.0-1', false],
  ])('rpm version %s matches pin %s: %s', (installedVersion, pin, ok) => {
    expect(rpmVersionMatches(installedVersion, pin)).toBe(ok);
  });

  it('keeps user lines of versionlock.list and replaces only the pinned packages', () => {
    expect(renderVersionlock('x-0:1-1.*\n# nodeup: pinned by spec.packages.pin\ny-0:1-1.*\n', new Map([['y', '0:2-1']]))).toBe('x-0:1-1.*\n# nodeup: pinned by spec.packages.pin\ny-0:2-1.*\n');
  });
});

describe('Flatcar', () => {
  it('builds no package tasks and fails preflight only when packages are asked for', async () => {
    const { packagesComponent } = await import('./component.ts');
    const flatcar = await fixtureOsRelease('flatcar');
    const plain = packagesModel(flatcar);
    expect(packagesComponent.enabled(plain)).toBe(false);
    expect(packagesComponent.preflight?.(plain).map((c) => c.check(plain))).toEqual([undefined, undefined]);
    const asking = packagesModel(flatcar, { extra: ['jq'] });
    expect(packagesComponent.preflight?.(asking)[0]?.check(asking)).toMatch(/Flatcar Container Linux has no package manager: spec.packages \(jq\)/);
  });
});

it('AgentError is what failures carry', () => {
  expect(new AgentError('LOCKED', 'x').code).toBe('LOCKED');
});
