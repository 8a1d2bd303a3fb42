// The one table of distro differences. Builders read fields of `model.distro`; they never compare
// distro ids. `Record<LogicalPackage, ...>` makes the table complete by construction: a new logical
// package does not compile until every distro maps it.
import { AgentError } from '../agent/errors.ts';
import type { OsRelease } from '../agent/host/facts.ts';

/**
 * Host packages a Kubernetes 1.33-1.35 node needs besides what nodeup downloads itself (kubelet,
 * containerd, runc and CNI plugins come as verified release assets). Each entry says who calls it.
 */
export type LogicalPackage =
  /** iptables: the CNI bridge plugin's ipMasq and the portmap plugin call the host's iptables binary. */
  | 'iptables'
  /** util-linux: mount/umount (kubelet volume mounts) and nsenter. */
  | 'util-linux'
  /** ca-certificates: TLS trust for containerd image pulls and state-store HTTPS. */
  | 'ca-certificates'
  /** container-selinux: SELinux policy for container processes on SELinux-enforcing distros. */
  | 'container-selinux';

export type Family = 'deb' | 'rpm' | 'none';

export interface Distro {
  /** "<id>-<major>[.<minor>]", e.g. "ubuntu-24.04", "rocky-9". */
  readonly id: string;
  readonly name: string;
  readonly family: Family;
  /** apt, dnf, or none (Flatcar: packages are skipped and the plan says so). */
  readonly packageManager: 'apt' | 'dnf' | 'none';
  readonly packages: Readonly<Record<LogicalPackage, string | null>>;
  /** Where nodeup writes its own unit files. */
  readonly unitDir: string;
  /** Where binaries nodeup installs go (/usr/bin is read-only on Flatcar). */
  readonly binDir: string;
  /** kubelet's resolvConf: systemd-resolved distros need the real upstream file. */
  readonly resolvConf: string;
  /** Whether SELinux is enabled by default (containerd enable_selinux). */
  readonly selinux: boolean;
}

const debPackages: Distro['packages'] = {
  iptables: 'iptables',
  'util-linux': 'util-linux',
  'ca-certificates': 'ca-certificates',
  'container-selinux': null,
};
const rpmPackages: Distro['packages'] = {
  iptables: 'iptables-nft',
  'util-linux': 'util-linux',
  'ca-certificates': 'ca-certificates',
  'container-selinux': 'container-selinux',
};
const noPackages: Distro['packages'] = {
  iptables: null,
  'util-linux': null,
  'ca-certificates': null,
  'container-selinux': null,
};

function deb(id: string, name: string, resolved: boolean): Distro {
  return {
    id,
    name,
    family: 'deb',
    packageManager: 'apt',
    packages: debPackages,
    unitDir: '/etc/systemd/system',
    binDir: '/usr/local/bin',
    resolvConf: resolved ? '/run/systemd/resolve/resolv.conf' : '/etc/resolv.conf',
    selinux: false,
  };
}

function rpm(id: string, name: string, packages: Distro['packages'] = rpmPackages): Distro {
  return {
    id,
    name,
    family: 'rpm',
    packageManager: 'dnf',
    packages,
    unitDir: '/etc/systemd/system',
    binDir: '/usr/local/bin',
    resolvConf: '/etc/resolv.conf',
    selinux: true,
  };
}

export const distros: readonly Distro[] = [
  deb('ubuntu-22.04', 'Ubuntu 22.04 LTS', true),
  deb('ubuntu-24.04', 'Ubuntu 24.04 LTS', true),
  deb('ubuntu-25.10', 'Ubuntu 25.10', true),
  deb('ubuntu-26.04', 'Ubuntu 26.04 LTS', true),
  deb('debian-11', 'Debian 11 (bullseye)', false),
  deb('debian-12', 'Debian 12 (bookworm)', false),
  deb('debian-13', 'Debian 13 (trixie)', false),
  rpm('rhel-8', 'Red Hat Enterprise Linux 8'),
  rpm('rhel-9', 'Red Hat Enterprise Linux 9'),
  rpm('rhel-10', 'Red Hat Enterprise Linux 10'),
  rpm('rocky-8', 'Rocky Linux 8'),
  rpm('rocky-9', 'Rocky Linux 9'),
  rpm('rocky-10', 'Rocky Linux 10'),
  rpm('almalinux-8', 'AlmaLinux 8'),
  rpm('almalinux-9', 'AlmaLinux 9'),
  rpm('almalinux-10', 'AlmaLinux 10'),
  rpm('centos-9', 'CentOS Stream 9'),
  rpm('centos-10', 'CentOS Stream 10'),
  rpm('amzn-2023', 'Amazon Linux 2023'),
  {
    id: 'flatcar',
    name: 'Flatcar Container Linux',
    family: 'none',
    packageManager: 'none',
    packages: noPackages,
    unitDir: '/etc/systemd/system',
    binDir: '/opt/bin',
    resolvConf: '/run/systemd/resolve/resolv.conf',
    selinux: false,
  },
];

/** The table key for an os-release: Ubuntu keeps major.minor, RHEL-likes the major only. Pure. */
export function distroKey(os: OsRelease): string {
  if (os.id === 'flatcar') return 'flatcar';
  if (os.id === 'ubuntu' || os.id === 'amzn') return `${os.id}-${os.versionId}`;
  return `${os.id}-${os.versionId.split('.')[0] ?? ''}`;
}

export function supportedList(): string {
  return distros.map((d) => d.name).join(', ');
}

export function detectDistro(os: OsRelease | undefined): Distro {
  if (!os) {
    throw new AgentError('DISTRO_UNSUPPORTED', `no /etc/os-release: cannot tell the distro. Supported: ${supportedList()}`, {
      details: { supported: distros.map((d) => d.id) },
    });
  }
  const key = distroKey(os);
  const found = distros.find((d) => d.id === key);
  if (!found) {
    throw new AgentError(
      'DISTRO_UNSUPPORTED',
      `unsupported distro ${os.prettyName || key} (${key}). Supported: ${supportedList()}`,
      { details: { detected: key, supported: distros.map((d) => d.id) } },
    );
  }
  return found;
}
