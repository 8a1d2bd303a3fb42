// What a mirror must hold for a set of NodeConfigs (issue 20): every release asset their nodes
// download, for every architecture asked for, at the path a node asks a mirror for
// (`<name>/<version>/linux-<arch>/<file>`, model/assets/versions.ts); the container images their
// manifests and add-ons name; and the packages they install, per distro. Read from the same task
// graph `nodeup apply` walks (a node model per config and architecture, as `nodeup validate` derives
// one without a node), so the mirror cannot miss an asset a new component adds. Pure but for the
// component registry.
import type { Arch } from '../engine/host/facts.ts';
import type { AssetSource } from '../engine/host/host.ts';
import type { AnyTask } from '../engine/task.ts';
import { bootConfigFor, type NodeConfig } from '../model/config.ts';
import { distros } from '../model/distros.ts';
import { deriveNodeModel, type NodeModel } from '../model/node-model.ts';
import { components } from '../app/components.ts';
import { buildGraph } from '../app/run.ts';
import { roleImages } from '../images/component.ts';
import { wantedPackages } from '../packages/component.ts';
import { compareText } from '../engine/text-order.ts';

/** A stand-in mirror base: the URL an asset gets under it is its path on a real mirror. */
const marker = 'http://nodeup-mirror.invalid';

export interface MirrorAsset {
  /** Path under the mirror's root, e.g. `kubelet/1.35.4/linux-amd64/kubelet`. */
  readonly path: string;
  readonly sha256: string;
  /** Where the asset comes from when no --source is given: the official site or the override's URLs. */
  readonly upstream: readonly string[];
  readonly name: string;
  readonly arch: Arch;
}

export interface MirrorPlan {
  readonly assets: readonly MirrorAsset[];
  /** Image references as the nodes name them (sorted, once each). */
  readonly images: readonly string[];
  /** Per distro (`debian-12`): the packages nodeup installs there. */
  readonly packages: Readonly<Record<string, readonly string[]>>;
  /** What the mirror cannot hold, and why (an image archive with its own URLs). */
  readonly notes: readonly string[];
}

/** A node model of `config` on `arch`, as a live node would derive it (pull tasks included). */
export function mirrorModel(config: NodeConfig, raw: string, arch: Arch): NodeModel {
  return deriveNodeModel({
    boot: bootConfigFor(config, raw, 'file:///mirror', [marker]),
    // The node's address picks nothing to fetch: a nodeAddress that names the nodes' own network
    // (a CIDR, an interface) is left out, since the machine staging the mirror is not on it.
    config: { ...config, spec: { ...config.spec, assets: { ...config.spec.assets, mirrors: [] }, networking: { ...config.spec.networking, nodeAddress: {} } } },
    facts: {
      osRelease: { id: 'debian', idLike: [], versionId: '12', prettyName: 'Debian GNU/Linux 12' },
      arch,
      hostname: 'mirror',
      ipv4: ['192.0.2.10'],
      interfaces: { eth0: ['192.0.2.10'] },
      defaultRouteInterface: 'eth0',
      cgroupVersion: 2,
      memoryBytes: 8 * 1024 ** 3,
      cpus: 4,
      kernel: 'mirror',
      swapBytes: 0,
    },
    secrets: { bootstrapToken: 'abcdef.0123456789abcdef', clusterCaCert: '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n' },
    live: true,
  });
}

/** The asset a task downloads (download, archive, image archive), if any. */
function assetOf(task: AnyTask): AssetSource | undefined {
  const spec = (task as { spec?: { asset?: AssetSource; source?: { kind?: string; asset?: AssetSource } } }).spec;
  return spec?.asset ?? (spec?.source?.kind === 'archive' ? spec.source.asset : undefined);
}

export function mirrorPlan(configs: readonly { config: NodeConfig; raw: string }[], archs: readonly Arch[]): MirrorPlan {
  const assets = new Map<string, MirrorAsset>();
  const images = new Set<string>();
  const packages = new Map<string, Set<string>>();
  const notes = new Set<string>();
  for (const { config, raw } of configs) {
    for (const arch of archs) {
      const model = mirrorModel(config, raw, arch);
      const graph = buildGraph(model, components).finish();
      for (const task of graph.tasks.values()) {
        const a = assetOf(task);
        if (!a) continue;
        const first = a.urls[0] ?? '';
        if (!first.startsWith(`${marker}/`)) {
          notes.add(`${a.name}: fetched from its own URLs (${a.urls.join(', ')}), not from a mirror: serve it there`);
          continue;
        }
        const path = first.slice(marker.length + 1);
        assets.set(path, { path, sha256: a.sha256, upstream: a.urls.slice(1), name: a.name, arch });
      }
      for (const ref of [...roleImages(model), ...model.spec.images.prePull]) images.add(ref);
    }
    for (const d of distros) {
      if (d.packageManager === 'none') continue;
      const key = `${d.id} (${d.packageManager})`;
      const set = packages.get(key) ?? new Set<string>();
      for (const p of wantedPackages(d, config.spec.packages)) set.add(p.name);
      packages.set(key, set);
    }
  }
  return {
    assets: [...assets.values()].sort((a, b) => compareText(a.path, b.path)),
    images: [...images].sort(),
    packages: Object.fromEntries([...packages].map(([k, v]) => [k, [...v].sort()])),
    notes: [...notes].sort(),
  };
}
