import { describe, expect, it } from 'vitest';
import { AgentError, exitCodeFor } from '../engine/errors.ts';
import { parseOsRelease } from '../engine/host/facts.ts';
import { detectDistro, distroKey, distros, logicalPackages } from './distros.ts';
import { fixtureOsRelease } from '../../tests/support/packages.ts';

describe('detectDistro', () => {
  it.each(distros.map((d) => d.id))('finds the %s row from its real os-release fixture', async (id) => {
    const os = parseOsRelease(await fixtureOsRelease(id));
    expect(detectDistro(os).id).toBe(id);
  });

  it.each([
    ['ID=ubuntu\nVERSION_ID="24.04"\n', 'ubuntu-24.04'],
    ['ID="rocky"\nVERSION_ID="9.6"\n', 'rocky-9'],
    ['ID="rhel"\nVERSION_ID="10.1"\n', 'rhel-10'],
    ['ID="amzn"\nVERSION_ID="2023"\n', 'amzn-2023'],
    ['ID=flatcar\nVERSION_ID=4230.2.0\n', 'flatcar'],
  ])('keys %j as %s', (text, key) => {
    expect(distroKey(parseOsRelease(text))).toBe(key);
  });

  it.each([
    ['ID=ubuntu\nVERSION_ID="23.04"\nPRETTY_NAME="Ubuntu 23.04"\n', /ubuntu 23.04 is not a supported release; supported ubuntu releases: 22.04, 24.04, 25.10, 26.04/],
    ['ID=linuxmint\nID_LIKE="ubuntu debian"\nVERSION_ID="22"\n', /like ubuntu, debian \(ID_LIKE\), but derivatives are not supported/],
    ['ID=arch\nBUILD_ID=rolling\n', /unsupported distro arch/],
    ['ID=centos\nVERSION_ID="7"\n', /supported centos releases: 9, 10/],
  ])('refuses %j with exit code 2 and the supported list', (text, why) => {
    let err: unknown;
    try {
      detectDistro(parseOsRelease(text));
    } catch (e: unknown) {
      err = e;
    }
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe('DISTRO_UNSUPPORTED');
    expect(exitCodeFor(err)).toBe(2);
    expect((err as AgentError).message).toMatch(why);
    expect((err as AgentError).message).toContain('Supported: Ubuntu 22.04 LTS, Ubuntu 24.04 LTS');
    expect((err as AgentError).message).toContain('Flatcar Container Linux');
  });

  it('refuses a root without os-release with exit code 2', () => {
    expect(() => detectDistro(undefined)).toThrow(/no \/etc\/os-release/);
  });
});

describe('the distro table', () => {
  it('has 20 rows: Ubuntu, Debian, the RHEL family, CentOS Stream, Amazon Linux 2023, Flatcar', () => {
    expect(distros.map((d) => d.id)).toEqual([
      'ubuntu-22.04', 'ubuntu-24.04', 'ubuntu-25.10', 'ubuntu-26.04', 'debian-11', 'debian-12', 'debian-13',
      'rhel-8', 'rhel-9', 'rhel-10', 'rocky-8', 'rocky-9', 'rocky-10', 'almalinux-8', 'almalinux-9', 'almalinux-10',
      'centos-9', 'centos-10', 'amzn-2023', 'flatcar',
    ]);
  });

  it.each(distros.filter((d) => d.packageManager !== 'none').map((d) => d.id))('%s maps the packages every node needs', (id) => {
    const d = distros.find((x) => x.id === id);
    for (const lp of ['iptables', 'mount', 'ca-certificates', 'kmod'] as const) expect(d?.packages[lp]).toMatch(/^[a-z]/);
    // AppArmor on the Debian family, SELinux policy on the RHEL family: one or the other.
    expect([d?.packages.apparmor, d?.packages['container-selinux']].filter(Boolean)).toHaveLength(1);
    expect(d?.packageManager).toBe(d?.family === 'deb' ? 'apt' : 'dnf');
  });

  it('uses iptables on EL8 and iptables-nft on EL9+, CentOS Stream and Amazon Linux 2023', () => {
    const ipt = Object.fromEntries(distros.map((d) => [d.id, d.packages.iptables]));
    expect([ipt['rhel-8'], ipt['rocky-8'], ipt['almalinux-8']]).toEqual(['iptables', 'iptables', 'iptables']);
    expect(new Set([ipt['rhel-9'], ipt['rhel-10'], ipt['rocky-10'], ipt['centos-9'], ipt['centos-10'], ipt['amzn-2023']])).toEqual(new Set(['iptables-nft']));
  });

  it('keeps none of the packages kOps dropped in 1.34 and 1.35', () => {
    const names = new Set(distros.flatMap((d) => Object.values(d.packages)));
    for (const dropped of ['conntrack', 'conntrack-tools', 'socat', 'ethtool', 'ebtables', 'pigz', 'bridge-utils', 'libltdl7', 'libtool-ltdl']) {
      expect(names.has(dropped)).toBe(false);
    }
    expect(logicalPackages).toHaveLength(6);
  });

  it('maps nothing on Flatcar', () => {
    const flatcar = distros.find((d) => d.id === 'flatcar');
    expect(Object.values(flatcar?.packages ?? {}).every((v) => v === null)).toBe(true);
  });
});
