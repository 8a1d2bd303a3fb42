// spec.packages.repositories on the test host: the files each family gets, the options that make
// nodeup's commands read only them, the prune of a repository taken out of the spec, and the
// errors that name the field. The real apt side is in tests/integration/packages-apt.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import { createTestHost, type ScriptedCommand, type TestHost } from '../../tests/support/test-host.ts';
import { captureLog, fixtureOsRelease, packagesModel, runPackages } from '../../tests/support/packages.ts';
import { renderPlan } from '../engine/plan-printer.ts';
import { nodeConfig } from '../../tests/support/model.ts';
import { packagesComponent } from './component.ts';
import { renderAptSource, renderDnfRepo, repositoryProblems } from './repositories.ts';
import { RepositorySpec } from './schema.ts';

const key = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZtest\n-----END PGP PUBLIC KEY BLOCK-----';
const site = { name: 'site', url: 'http://10.0.0.5/debian', suites: ['bookworm', 'bookworm-updates'], components: ['main'], key };
const flat = { name: 'flat', url: 'http://10.0.0.5/flat', suites: ['./'], trusted: true };

let hosts: TestHost[] = [];
afterEach(async () => {
  for (const h of hosts) await h.dispose();
  hosts = [];
});

async function host(fixture: string, commands: readonly ScriptedCommand[] = []): Promise<TestHost> {
  const h = await createTestHost({ fixture, commands });
  hosts.push(h);
  return h;
}

describe('the files', () => {
  it('apt: deb822 with Signed-By the key nodeup writes, or Trusted: yes for an unsigned flat repository', () => {
    expect(renderAptSource(RepositorySpec.parse(site))).toBe(
      [
        '# Written by nodeup from spec.packages.repositories (site); nodeup replaces it on every run.',
        'Types: deb',
        'URIs: http://10.0.0.5/debian',
        'Suites: bookworm bookworm-updates',
        'Components: main',
        'Signed-By: /etc/apt/keyrings/nodeup-site.asc',
        '',
      ].join('\n'),
    );
    expect(renderAptSource(RepositorySpec.parse(flat))).toMatch(/\nSuites: \.\/\nTrusted: yes\n$/);
  });

  it('dnf: a .repo section nodeup-<name> with gpgcheck on the key, or off for an unsigned one', () => {
    const r = RepositorySpec.parse({ name: 'baseos', url: 'https://repo.internal/rocky/$releasever/BaseOS/$basearch/os/', key });
    expect(renderDnfRepo(r)).toBe(
      [
        '# Written by nodeup from spec.packages.repositories (baseos); nodeup replaces it on every run.',
        '[nodeup-baseos]',
        'name=nodeup baseos (spec.packages.repositories)',
        'baseurl=https://repo.internal/rocky/$releasever/BaseOS/$basearch/os/',
        'enabled=1',
        'gpgcheck=1',
        'gpgkey=file:///etc/pki/rpm-gpg/nodeup-baseos.asc',
        '',
      ].join('\n'),
    );
    expect(renderDnfRepo(RepositorySpec.parse({ name: 'x', url: 'file:///srv/repo', trusted: true }))).toContain('\ngpgcheck=0\n');
  });
});

describe('on a node', () => {
  it('apt: writes the source and key before the packages, refreshes the lists for them, and with onlyRepositories reads nothing else', async () => {
    const h = await host('debian-12', [
      { match: /^dpkg-query -W /, times: 1, stdout: '', exitCode: 1 },
      { match: /^apt-get update /, times: 1 },
      { match: /^apt-get install /, times: 1 },
      { match: /^dpkg-query -W /, stdout: ['apparmor', 'ca-certificates', 'iptables', 'kmod', 'mount'].map((n) => `${n}\tii \t1.0\n`).join('') },
    ]);
    // Fresh lists from before: the new source makes them stale.
    await h.fs.mkdirp('/var/lib/apt/lists', 0o755);
    await h.fs.writeAtomic('/var/lib/apt/lists/old_Packages', 'Package: x\n', { mode: 0o644 });
    await h.fs.mkdirp('/etc/apt/sources.list.d', 0o755);
    const written = '# Written by nodeup from spec.packages.repositories (gone); nodeup replaces it on every run.\nTypes: deb\n';
    await h.fs.writeAtomic('/etc/apt/sources.list.d/nodeup-gone.sources', written, { mode: 0o644 });
    await h.fs.mkdirp('/etc/apt/keyrings', 0o755);
    await h.fs.writeAtomic('/etc/apt/keyrings/nodeup-gone.asc', key, { mode: 0o644 });
    // Named like nodeup's, written by the operator: not nodeup's to remove.
    await h.fs.writeAtomic('/etc/apt/sources.list.d/nodeup-mine.sources', 'Types: deb\n', { mode: 0o644 });
    await h.fs.writeAtomic('/etc/apt/sources.list.d/debian.sources', 'Types: deb\n', { mode: 0o644 });
    const model = packagesModel(await fixtureOsRelease('debian-12'), { repositories: [site, flat], onlyRepositories: true });
    const report = await runPackages(model, h, 'apply', captureLog().log);
    expect(report.ok, JSON.stringify(report.results.filter((r) => r.error))).toBe(true);
    expect((await h.fs.read('/etc/apt/sources.list.d/nodeup-site.sources'))?.toString()).toContain('Signed-By: /etc/apt/keyrings/nodeup-site.asc\n');
    expect((await h.fs.read('/etc/apt/keyrings/nodeup-site.asc'))?.toString()).toBe(`${key}\n`);
    expect((await h.fs.stat('/etc/apt/keyrings/nodeup-site.asc'))?.mode).toBe(0o644);
    expect(await h.fs.readlink('/etc/apt/nodeup-sources.d/nodeup-flat.sources')).toBe('/etc/apt/sources.list.d/nodeup-flat.sources');
    // The repository taken out of the spec is gone; the image's own source is not nodeup's.
    expect(await h.fs.stat('/etc/apt/sources.list.d/nodeup-gone.sources')).toBeUndefined();
    expect(await h.fs.stat('/etc/apt/keyrings/nodeup-gone.asc')).toBeUndefined();
    expect(await h.fs.stat('/etc/apt/sources.list.d/nodeup-mine.sources')).toBeDefined();
    expect(await h.fs.stat('/etc/apt/sources.list.d/debian.sources')).toBeDefined();
    const only = '-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/etc/apt/nodeup-sources.d';
    const apt = h.commandLog().filter((c) => c.startsWith('apt-get'));
    expect(apt).toEqual([`apt-get update ${only}`, `apt-get install --yes --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold ${only} apparmor ca-certificates iptables kmod mount`]);
    expect(report.results.filter((r) => r.status === 'changed').map((r) => r.key).filter((k) => !k.startsWith('package:')).sort()).toEqual([
      'file:/etc/apt/keyrings/nodeup-site.asc',
      'file:/etc/apt/sources.list.d/nodeup-flat.sources',
      'file:/etc/apt/sources.list.d/nodeup-site.sources',
      'prune:package-repositories',
      'symlink:/etc/apt/nodeup-sources.d/nodeup-flat.sources',
      'symlink:/etc/apt/nodeup-sources.d/nodeup-site.sources',
    ]);
  });

  it('a plan shows the files and the prune, and a converged node changes nothing', async () => {
    const h = await host('debian-12', [{ match: /^dpkg-query -W /, stdout: ['apparmor', 'ca-certificates', 'iptables', 'kmod', 'mount'].map((n) => `${n}\tii \t1.0\n`).join('') }]);
    const model = packagesModel(await fixtureOsRelease('debian-12'), { repositories: [flat] });
    const plan = renderPlan(await runPackages(model, h, 'plan', captureLog().log));
    expect(plan).toContain('+ file:/etc/apt/sources.list.d/nodeup-flat.sources');
    expect(plan).not.toContain('nodeup-sources.d'); // no links without onlyRepositories
    expect((await runPackages(model, h, 'apply', captureLog().log)).changed).toBe(1);
    await h.fs.writeAtomic('/etc/apt/sources.list.d/nodeup-old.sources', '# Written by nodeup from spec.packages.repositories (old); nodeup replaces it on every run.\n', { mode: 0o644 });
    const again = await runPackages(model, h, 'plan', captureLog().log);
    expect(renderPlan(again)).toContain('remove: /etc/apt/sources.list.d/nodeup-old.sources -> absent (no longer in spec.packages.repositories)');
    await runPackages(model, h, 'apply', captureLog().log);
    expect((await runPackages(model, h, 'apply', captureLog().log)).changed).toBe(0);
    // A repository that drops its key (now trusted) loses the key file; another tool's key stays.
    const keyed = packagesModel(await fixtureOsRelease('debian-12'), { repositories: [{ ...flat, trusted: false, key }] });
    await runPackages(keyed, h, 'apply', captureLog().log);
    await h.fs.writeAtomic('/etc/apt/keyrings/docker.asc', key, { mode: 0o644 });
    expect(await h.fs.stat('/etc/apt/keyrings/nodeup-flat.asc')).toBeDefined();
    await runPackages(model, h, 'apply', captureLog().log);
    expect(await h.fs.stat('/etc/apt/keyrings/nodeup-flat.asc')).toBeUndefined();
    expect(await h.fs.stat('/etc/apt/keyrings/docker.asc')).toBeDefined();
  });

  it('dnf: the .repo file and key, and --disablerepo/--enablerepo with onlyRepositories', async () => {
    const h = await host('rocky-9', [
      { match: /^rpm /, times: 1, stdout: '', exitCode: 5 },
      { match: /^dnf /, times: 1 },
      { match: /^rpm /, stdout: ['ca-certificates', 'container-selinux', 'iptables-nft', 'kmod', 'util-linux'].map((n) => `${n}\t0\t1.0\t1\tx86_64\n`).join('') },
    ]);
    const model = packagesModel(await fixtureOsRelease('rocky-9'), { repositories: [{ name: 'baseos', url: 'https://repo.internal/baseos/', key }], onlyRepositories: true });
    const report = await runPackages(model, h, 'apply', captureLog().log);
    expect(report.ok, JSON.stringify(report.results.filter((r) => r.error))).toBe(true);
    expect((await h.fs.read('/etc/yum.repos.d/nodeup-baseos.repo'))?.toString()).toContain('[nodeup-baseos]\n');
    expect((await h.fs.read('/etc/pki/rpm-gpg/nodeup-baseos.asc'))?.toString()).toBe(`${key}\n`);
    expect(h.commandLog().find((c) => c.startsWith('dnf '))).toMatch(/ install --assumeyes --disablerepo=\* --enablerepo=nodeup-\* --setopt=/);
  });
});

describe('errors that name the field', () => {
  const errorsOf = (packages: Record<string, unknown>): string => {
    try {
      nodeConfig('worker', { apiServerEndpoint: 'https://10.0.0.1:6443', packages }, 'nodes.yaml');
      return '';
    } catch (err: unknown) {
      return (err as Error).message;
    }
  };

  it('a repository needs a key or trusted: true, a unique name, and onlyRepositories needs one', () => {
    expect(errorsOf({ repositories: [{ name: 'a', url: 'http://x/', suites: ['./'] }] })).toMatch(/spec\.packages\.repositories\.0\.key.*needs its signing key \(key: the armored public key\), or trusted: true/s);
    expect(errorsOf({ repositories: [flat, flat] })).toMatch(/repositories\.1\.name.*named twice/s);
    expect(errorsOf({ repositories: [{ ...flat, key }] })).toMatch(/trusted: true would skip its signature check/);
    expect(errorsOf({ onlyRepositories: true })).toMatch(/onlyRepositories needs at least one entry/);
    expect(errorsOf({ repositories: [{ ...flat, url: 'ftp://x/' }] })).toMatch(/repositories\.0\.url.*http:\/\/, https:\/\/ or file:\/\//s);
    expect(errorsOf({ repositories: [{ ...site, key: 'not a key' }] })).toMatch(/ASCII-armored OpenPGP public key/);
    expect(errorsOf({ repositories: [flat] })).toBe('');
  });

  it('what a distro family cannot use is a preflight failure naming the entry', async () => {
    const deb = packagesModel(await fixtureOsRelease('debian-12'), { repositories: [{ name: 'a', url: 'http://x/', trusted: true }, { name: 'b', url: 'http://x/', suites: ['bookworm'], trusted: true }, { name: 'c', url: 'http://x/', suites: ['./'], components: ['main'], trusted: true }] });
    expect(repositoryProblems(deb.distro, deb.spec.packages)).toEqual([
      'spec.packages.repositories[0] (a).suites: an apt repository needs its suites, for example [bookworm] (or ["./"] for a flat repository)',
      'spec.packages.repositories[1] (b).components: an apt repository with suites needs its components, for example [main]',
      'spec.packages.repositories[2] (c).components: a flat repository (suite ./) has no components: remove them',
    ]);
    const rocky = packagesModel(await fixtureOsRelease('rocky-9'), { repositories: [site] });
    const check = packagesComponent.preflight?.(rocky).find((c) => c.name === 'packages-repositories');
    expect(check?.check(rocky)).toMatch(/^spec\.packages\.repositories\[0\] \(site\): suites and components are apt's; Rocky Linux 9.* uses dnf/);
    const flatcar = packagesModel(await fixtureOsRelease('flatcar'), { repositories: [flat] });
    expect(repositoryProblems(flatcar.distro, flatcar.spec.packages)[0]).toMatch(/has no package manager; remove them/);
  });
});
