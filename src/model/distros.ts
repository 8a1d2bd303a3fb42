// The one table of distro differences. Builders read fields of `model.distro`; they never compare
// distro ids. `Record<LogicalPackage, ...>` makes the table complete by construction: a new logical
// package does not compile until every distro maps it.
import { AgentError } from '../engine/errors.ts';
import type { OsRelease } from '../engine/host/facts.ts';

/**
 * Host packages a Kubernetes 1.33-1.35 node needs besides what nodeup downloads itself (kubelet,
 * containerd, runc, CNI plugins and crictl come as verified release assets; kube-proxy runs from its
 * image, which carries its own iptables and nft). Each entry names who calls what, checked against
 * the sources of kubernetes v1.35.4, containerd v2.2.9 and CNI plugins v1.9.1.
 *
 * Considered and left out (kOps 1.34 dropped ebtables, ethtool and socat; 1.35 dropped libltdl,
 * pigz, bridge-utils and conntrack):
 * - conntrack: kube-proxy clears conntrack entries over netlink (and runs in its image anyway);
 *   kubeadm checks for it only before 1.32.
 * - socat, ethtool, ebtables: kubelet and containerd port-forward in Go; nothing calls them.
 * - pigz: containerd uses unpigz only when present, and falls back to Go's gzip.
 * - libltdl, bridge-utils: nothing links or calls them (the bridge CNI plugin uses netlink).
 * - nftables: kube-proxy in nftables mode calls `nft` inside its own image; the CNI plugins' nft
 *   backend is used only when iptables is absent. The node needs the kernel modules, not the CLI.
 * - libseccomp, libapparmor: upstream runc release binaries are static; containerd links neither.
 * - iproute2, e2fsprogs: kubelet calls neither (mkfs/fsck run in CSI driver containers).
 */
export type LogicalPackage =
  /**
   * iptables: the bridge CNI plugin's ipMasq and the portmap plugin default to the iptables backend
   * (plugins pkg/ip/ipmasq_linux.go: "Prefer iptables, unless only nftables is available"), and
   * kubelet creates its KUBE-IPTABLES-HINT / KUBE-KUBELET-CANARY chains with the iptables binary
   * (pkg/kubelet/kubelet_network_linux.go; best effort, for the benefit of other components).
   */
  | 'iptables'
  /**
   * mount: kubelet mounts every volume (secrets, configmaps, projected tokens: tmpfs) with
   * mount/umount (k8s.io/mount-utils, wrapped in `systemd-run --scope`), and attaches block volumes
   * with losetup (pkg/volume/util/volumepathhandler). Debian/Ubuntu ship them in `mount`, the RHEL
   * family in `util-linux`.
   */
  | 'mount'
  /** ca-certificates: the trust store containerd (image pulls) and nodeup (state store) use for TLS. */
  | 'ca-certificates'
  /**
   * kmod: `modprobe` for containerd.service's `ExecStartPre=-/sbin/modprobe overlay` and nodeup's
   * own kernel-module tasks (br_netfilter, nf_tables, nf_conntrack).
   */
  | 'kmod'
  /**
   * apparmor: containerd confines containers with its generated cri-containerd.apparmor.d profile
   * only when /sbin/apparmor_parser exists (containerd pkg/apparmor hostSupports, loaded with
   * `apparmor_parser -Kr`); without it, containers on AppArmor kernels (Ubuntu, Debian) run
   * unconfined. Not used on the RHEL family (SELinux).
   */
  | 'apparmor'
  /**
   * container-selinux: the container_t / container_file_t policy that containerd's
   * `enable_selinux` labels processes and snapshots with, on SELinux distros.
   */
  | 'container-selinux';

export const logicalPackages: readonly LogicalPackage[] = ['iptables', 'mount', 'ca-certificates', 'kmod', 'apparmor', 'container-selinux'];

export type Family = 'deb' | 'rpm' | 'none';
export type PackageManagerName = 'apt' | 'dnf' | 'none';

export interface Distro {
  /** "<id>-<major>[.<minor>]", e.g. "ubuntu-24.04", "rocky-9". */
  readonly id: string;
  readonly name: string;
  /** The release as the package manager knows it (dnf's $releasever): "9", "24.04", "2023". */
  readonly version: string;
  readonly family: Family;
  /** apt, dnf, or none (Flatcar: packages are skipped). */
  readonly packageManager: PackageManagerName;
  /** Logical package -> this distro's package name; null = not needed here. */
  readonly packages: Readonly<Record<LogicalPackage, string | null>>;
  /** The package that provides `dnf versionlock` (needed only when versions are pinned); null on apt. */
  readonly versionlockPackage: string | null;
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
  iptables: 'iptables', // iptables-nft is the default alternative since Debian 10 / Ubuntu 20.04
  mount: 'mount',
  'ca-certificates': 'ca-certificates',
  kmod: 'kmod',
  apparmor: 'apparmor',
  'container-selinux': null,
};
/** RHEL 9/10 and their rebuilds, CentOS Stream, Amazon Linux 2023: iptables is iptables-nft. */
const rpmPackages: Distro['packages'] = {
  iptables: 'iptables-nft',
  mount: 'util-linux',
  'ca-certificates': 'ca-certificates',
  kmod: 'kmod',
  apparmor: null,
  'container-selinux': 'container-selinux',
};
/** RHEL 8 and its rebuilds: the `iptables` package (nft backend); iptables-nft does not exist yet. */
const rpm8Packages: Distro['packages'] = { ...rpmPackages, iptables: 'iptables' };
/** Flatcar ships iptables, util-linux, kmod and ca-certificates in its read-only /usr. */
const noPackages: Distro['packages'] = {
  iptables: null,
  mount: null,
  'ca-certificates': null,
  kmod: null,
  apparmor: null,
  'container-selinux': null,
};

function deb(id: string, version: string, name: string, resolved: boolean): Distro {
  return {
    id,
    name,
    version,
    family: 'deb',
    packageManager: 'apt',
    packages: debPackages,
    versionlockPackage: null,
    unitDir: '/etc/systemd/system',
    binDir: '/usr/local/bin',
    resolvConf: resolved ? '/run/systemd/resolve/resolv.conf' : '/etc/resolv.conf',
    selinux: false,
  };
}

function rpm(id: string, version: string, name: string, packages: Distro['packages'] = rpmPackages): Distro {
  return {
    id,
    name,
    version,
    family: 'rpm',
    packageManager: 'dnf',
    packages,
    versionlockPackage: 'python3-dnf-plugin-versionlock',
    unitDir: '/etc/systemd/system',
    binDir: '/usr/local/bin',
    resolvConf: '/etc/resolv.conf',
    selinux: true,
  };
}

export const distros: readonly Distro[] = [
  deb('ubuntu-22.04', '22.04', 'Ubuntu 22.04 LTS', true),
  deb('ubuntu-24.04', '24.04', 'Ubuntu 24.04 LTS', true),
  deb('ubuntu-25.10', '25.10', 'Ubuntu 25.10', true),
  deb('ubuntu-26.04', '26.04', 'Ubuntu 26.04 LTS', true),
  deb('debian-11', '11', 'Debian 11 (bullseye)', false),
  deb('debian-12', '12', 'Debian 12 (bookworm)', false),
  deb('debian-13', '13', 'Debian 13 (trixie)', false),
  rpm('rhel-8', '8', 'Red Hat Enterprise Linux 8', rpm8Packages),
  rpm('rhel-9', '9', 'Red Hat Enterprise Linux 9'),
  rpm('rhel-10', '10', 'Red Hat Enterprise Linux 10'),
  rpm('rocky-8', '8', 'Rocky Linux 8', rpm8Packages),
  rpm('rocky-9', '9', 'Rocky Linux 9'),
  rpm('rocky-10', '10', 'Rocky Linux 10'),
  rpm('almalinux-8', '8', 'AlmaLinux 8', rpm8Packages),
  rpm('almalinux-9', '9', 'AlmaLinux 9'),
  rpm('almalinux-10', '10', 'AlmaLinux 10'),
  rpm('centos-9', '9', 'CentOS Stream 9'),
  rpm('centos-10', '10', 'CentOS Stream 10'),
  rpm('amzn-2023', '2023', 'Amazon Linux 2023'),
  {
    id: 'flatcar',
    name: 'Flatcar Container Linux',
    version: '',
    family: 'none',
    packageManager: 'none',
    packages: noPackages,
    versionlockPackage: null,
    unitDir: '/etc/systemd/system',
    binDir: '/opt/bin',
    resolvConf: '/run/systemd/resolve/resolv.conf',
    selinux: false,
  },
];

/** The table key for an os-release: Ubuntu keeps major.minor, the others the major only. Pure. */
export function distroKey(os: OsRelease): string {
  if (os.id === 'flatcar') return 'flatcar';
  if (os.id === 'ubuntu') return `ubuntu-${os.versionId}`;
  return `${os.id}-${os.versionId.split('.')[0] ?? ''}`;
}

export function supportedList(): string {
  return distros.map((d) => d.name).join(', ');
}

/** The distro ids a derivative names in ID_LIKE that we support (a hint for the error). Pure. */
function likeHint(os: OsRelease): string {
  const families = new Set(distros.map((d) => d.id.replace(/-[^-]*$/, '')));
  const like = os.idLike.filter((l) => families.has(l));
  return like.length > 0 ? ` It says it is like ${like.join(', ')} (ID_LIKE), but derivatives are not supported: their package names and versions differ.` : '';
}

/** Finds the table row for /etc/os-release (ID, VERSION_ID; ID_LIKE only explains refusals). Pure. */
export function detectDistro(os: OsRelease | undefined): Distro {
  if (!os) {
    throw new AgentError('DISTRO_UNSUPPORTED', `no /etc/os-release (or /usr/lib/os-release) under the root: cannot tell the distro. Supported: ${supportedList()}`, {
      details: { supported: distros.map((d) => d.id) },
    });
  }
  const key = distroKey(os);
  const found = distros.find((d) => d.id === key);
  if (found) return found;
  const sameId = distros.filter((d) => d.id.startsWith(`${os.id}-`)).map((d) => d.version);
  const why =
    sameId.length > 0
      ? ` ${os.id} ${os.versionId || '(no VERSION_ID)'} is not a supported release; supported ${os.id} releases: ${sameId.join(', ')}.`
      : likeHint(os);
  throw new AgentError(
    'DISTRO_UNSUPPORTED',
    `unsupported distro ${os.prettyName || key} (${key}).${why} Supported: ${supportedList()}`,
    { details: { detected: key, id: os.id, idLike: os.idLike, versionId: os.versionId, supported: distros.map((d) => d.id) } },
  );
}
