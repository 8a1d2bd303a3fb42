// Pure renderer for /etc/containerd/config.toml, in the schema the installed containerd reads:
// version 2 for containerd 1.6/1.7 (plugin "io.containerd.grpc.v1.cri", sandbox_image) and
// version 3 for containerd 2.x ("io.containerd.cri.v1.images" / "io.containerd.cri.v1.runtime",
// pinned_images.sandbox). Both: systemd cgroups for runc, registry config_path (hosts.toml per
// mirror), conf.d drop-ins via `imports`, an optional nvidia runtime, user additions last.
import { managedHeader } from '../engine/tasks/file.ts';
import { setPath, writeToml, type TomlTable } from './toml.ts';
import type { TomlAddition } from './schema.ts';
import { versionAtLeast } from '../engine/version.ts';

export interface ContainerdConfigInput {
  /** The installed containerd's version, e.g. "2.1.4" or "1.7.28": picks the schema. */
  readonly version: string;
  readonly root: string;
  readonly state: string;
  /** The gRPC socket path. */
  readonly address: string;
  readonly sandboxImage: string;
  readonly logLevel: string;
  /** Glob of drop-in files, e.g. /etc/containerd/conf.d/*.toml. */
  readonly imports: readonly string[];
  readonly certsDir: string;
  readonly cniBinDir: string;
  readonly cniConfDir: string;
  /** cni.conf_template: containerd renders <cniConfDir>/10-containerd-net.conflist from it with the node's pod CIDR. */
  readonly cniConfTemplate?: string;
  /** runc's path when it is not on containerd's PATH (release installs); undefined: containerd's default. */
  readonly runcBinary?: string;
  readonly selinux: boolean;
  readonly nvidia?: { readonly binaryName: string; readonly makeDefault: boolean };
  readonly additions: Readonly<Record<string, TomlAddition>>;
}

export type ConfigSchema = 2 | 3;

/** The config schema version a containerd version reads. Pure. */
export function configSchemaFor(version: string): ConfigSchema {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1] ?? NaN);
  if (!Number.isFinite(major)) throw new Error(`containerd version ${version} is not a version`);
  return major >= 2 ? 3 : 2;
}

/** containerd 2.0 has cni.bin_dir; 2.1 added bin_dirs and deprecated bin_dir. Pure. */
function hasBinDirs(version: string): boolean {
  return versionAtLeast(version, 2, 1);
}

/** The same key in both schemas: plugins."io.containerd.grpc.v1.cri".cni / "io.containerd.cri.v1.runtime".cni. */
function template(i: ContainerdConfigInput): TomlTable {
  return i.cniConfTemplate === undefined ? {} : { conf_template: i.cniConfTemplate };
}

function runtimes(i: ContainerdConfigInput): TomlTable {
  const runcOptions: TomlTable = { SystemdCgroup: true };
  if (i.runcBinary) runcOptions.BinaryName = i.runcBinary;
  const out: TomlTable = { runc: { runtime_type: 'io.containerd.runc.v2', options: runcOptions } };
  if (i.nvidia) {
    out.nvidia = {
      runtime_type: 'io.containerd.runc.v2',
      privileged_without_host_devices: false,
      options: { BinaryName: i.nvidia.binaryName, SystemdCgroup: true },
    };
  }
  return out;
}

export function renderContainerdConfig(i: ContainerdConfigInput): string {
  const schema = configSchemaFor(i.version);
  const defaultRuntime = i.nvidia?.makeDefault ? 'nvidia' : 'runc';
  let doc: TomlTable = {
    version: schema,
    root: i.root,
    state: i.state,
    imports: [...i.imports],
    grpc: { address: i.address },
    debug: { level: i.logLevel },
  };
  if (schema === 2) {
    doc.plugins = {
      'io.containerd.grpc.v1.cri': {
        sandbox_image: i.sandboxImage,
        enable_selinux: i.selinux,
        cni: { bin_dir: i.cniBinDir, conf_dir: i.cniConfDir, ...template(i) },
        containerd: { default_runtime_name: defaultRuntime, runtimes: runtimes(i) },
        registry: { config_path: i.certsDir },
        image_pull_with_sync_fs: true,
      },
    };
  } else {
    doc.plugins = {
      'io.containerd.cri.v1.images': {
        pinned_images: { sandbox: i.sandboxImage },
        registry: { config_path: i.certsDir },
        // Unpacked layers are synced before a pull returns. Without it, a power cut within about
        // a minute of a pull left the pause binary empty in its snapshot (the power-cut VM
        // scenario, cut 75 s in), and every pod sandbox died at start until the image was removed.
        image_pull_with_sync_fs: true,
      },
      'io.containerd.cri.v1.runtime': {
        enable_selinux: i.selinux,
        cni: hasBinDirs(i.version) ? { bin_dirs: [i.cniBinDir], conf_dir: i.cniConfDir, ...template(i) } : { bin_dir: i.cniBinDir, conf_dir: i.cniConfDir, ...template(i) },
        containerd: { default_runtime_name: defaultRuntime, runtimes: runtimes(i) },
      },
    };
  }
  for (const key of Object.keys(i.additions).sort()) doc = setPath(doc, key, i.additions[key] as TomlAddition);
  return `# ${managedHeader}\n# containerd ${i.version}: config schema version ${schema}. Add settings with drop-ins in ${i.imports.join(', ')}.\n` + writeToml(doc);
}
