// Layer: component. Imports src/engine and src/model only, never another component's folder.
// containerd: the container runtime of every node (both roles).
// Owns on disk: containerd, containerd-shim-runc-v2, ctr, runc and crictl in the distro's binDir
// (release source), /opt/cni/bin/* (CNI plugins), /etc/containerd/{config.toml,conf.d/,certs.d/},
// /etc/crictl.yaml, with `networking.cni: bridge` either /etc/containerd/nodeup-bridge.conflist.tmpl
// (per-node pod subnets: containerd writes /etc/cni/net.d/10-containerd-net.conflist from it with the
// pod CIDR kubelet sends) or /etc/cni/net.d/10-nodeup-bridge.conflist (`bridge.podSubnet: cluster`),
// and the unit containerd.service (nodeup's own, in the distro's unitDir).
// Runs after: the `package:` task of the distro's containerd when `source: distro`. Others order
// after `unit:containerd.service` (see keys.ts).
// A changed config.toml or drop-in restarts containerd; hosts.toml changes do not (containerd
// reads certs.d on every pull).
import type { Component, PreflightCheck } from '../model/component.ts';
import { AgentError } from '../engine/errors.ts';
import { versionAtLeast } from '../engine/version.ts';
import type { GraphBuilder } from '../engine/graph.ts';
import { modelAsset, type NodeModel } from '../model/node-model.ts';
import { nodeRoutesOn } from '../model/config.ts';
import type { TaskKey } from '../engine/task.ts';
import { ArchiveTask, DownloadTask } from '../engine/tasks/download.ts';
import { DirTask, FileTask, managedHeader } from '../engine/tasks/file.ts';
import { UnitTask } from '../engine/tasks/unit.ts';
import {
  bridgeConflistPath,
  bridgeNetworkName,
  bridgeTemplatePath,
  cniBinDir,
  cniConfDir,
  cniPluginsKey,
  containerdBinDir,
  containerdCertsDir,
  containerdConfigKey,
  containerdConfigPath,
  containerdDropInDir,
  containerdEndpoint,
  containerdRoot,
  containerdSocket,
  containerdState,
  containerdUnitKey,
  crictlConfigPath,
  generatedConflistPath,
  hostsDirName,
  sandboxImage,
} from '../model/paths/containerd.ts';
import { renderBridgeConflist, renderBridgeConflistTemplate, renderCrictlYaml } from './render-cni.ts';
import { configSchemaFor, renderContainerdConfig, type ContainerdConfigInput } from './render-config.ts';
import { renderHostsToml } from './render-hosts.ts';
import { renderContainerdUnit } from './render-unit.ts';
import { AbsentFileTask, ManagedDirTask } from './tasks.ts';

/** The CNI plugins nodeup installs: the set every release since 1.0 ships. */
export const cniPlugins = [
  'bandwidth',
  'bridge',
  'dhcp',
  'firewall',
  'host-device',
  'host-local',
  'ipvlan',
  'loopback',
  'macvlan',
  'portmap',
  'ptp',
  'sbr',
  'static',
  'tuning',
  'vlan',
  'vrf',
] as const;


/** `cni: bridge` with per-node pod subnets: containerd renders the network from nodeup's template. Pure. */
export function perNodeBridge(model: NodeModel): boolean {
  return model.spec.networking.cni === 'bridge' && model.spec.networking.bridge.podSubnet === 'per-node';
}

/** Everything config.toml depends on, from the model (paths are the node's standard ones). Pure. */
export function containerdConfigInput(model: NodeModel): ContainerdConfigInput {
  const c = model.spec.containerd;
  const release = c.source === 'release';
  return {
    version: model.versions.containerd,
    root: containerdRoot,
    state: containerdState,
    address: containerdSocket,
    sandboxImage: sandboxImage(model),
    logLevel: c.logLevel,
    imports: [`${containerdDropInDir}/*.toml`],
    certsDir: containerdCertsDir,
    cniBinDir,
    cniConfDir,
    ...(perNodeBridge(model) ? { cniConfTemplate: bridgeTemplatePath } : {}),
    ...(release ? { runcBinary: `${model.distro.binDir}/runc` } : {}),
    selinux: model.distro.selinux,
    ...(c.nvidia.enabled ? { nvidia: { binaryName: c.nvidia.binaryName, makeDefault: c.nvidia.default } } : {}),
    additions: c.configAdditions,
  };
}

export interface RenderedFile {
  readonly path: string;
  readonly content: string;
  readonly mode: number;
  /** Whether a change restarts containerd. */
  readonly restarts: boolean;
}

/** Every file the component renders, sorted by path (goldens use the same list). Pure. */
export function containerdFiles(model: NodeModel): readonly RenderedFile[] {
  const c = model.spec.containerd;
  const out: RenderedFile[] = [
    { path: containerdConfigPath, content: renderContainerdConfig(containerdConfigInput(model)), mode: 0o644, restarts: true },
    { path: crictlConfigPath, content: renderCrictlYaml({ endpoint: containerdEndpoint, timeoutSeconds: 10 }), mode: 0o644, restarts: false },
  ];
  for (const d of Object.keys(c.dropIns)) {
    out.push({ path: `${containerdDropInDir}/${d}.toml`, content: dropInContent(d, c.dropIns[d] as string), mode: 0o644, restarts: true });
  }
  for (const [r, mirrors] of Object.entries(c.registryMirrors)) {
    out.push({ path: `${containerdCertsDir}/${hostsDirName(r)}/hosts.toml`, content: renderHostsToml(r, mirrors), mode: 0o644, restarts: false });
  }
  if (perNodeBridge(model)) {
    // containerd reads the template when kubelet sends the pod CIDR; nothing to restart.
    // With node routes, nodeup-routes masquerades only traffic that leaves the pod CIDR (the bridge's
    // ipMasq would also NAT pod-to-pod traffic between nodes).
    const ipMasq = !nodeRoutesOn(model.spec.networking);
    out.push({ path: bridgeTemplatePath, content: renderBridgeConflistTemplate({ bridge: 'cni0', networkName: bridgeNetworkName, ipMasq }), mode: 0o644, restarts: false });
  } else if (model.spec.networking.cni === 'bridge') {
    out.push({
      path: bridgeConflistPath,
      content: renderBridgeConflist({ podCIDR: model.spec.networking.podCIDR, bridge: 'cni0', networkName: bridgeNetworkName }),
      mode: 0o644,
      restarts: false,
    });
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** nodeup's containerd.service. Pure. */
export function containerdUnitContent(model: NodeModel): string {
  const binDir = containerdBinDir(model.spec.containerd.source, model.distro.binDir);
  const release = model.spec.containerd.source === 'release';
  return renderContainerdUnit({
    binary: `${binDir}/containerd`,
    config: containerdConfigPath,
    pathDirs: [binDir],
    ...(model.distro.selinux && release ? { restorecon: ['containerd', 'containerd-shim-runc-v2', 'ctr', 'runc'].map((b) => `${binDir}/${b}`) } : {}),
  });
}

function dropInContent(name: string, content: string): string {
  return `# ${managedHeader}\n# spec.containerd.dropIns.${name}\n${content.endsWith('\n') ? content : content + '\n'}`;
}

function buildRelease(model: NodeModel, graph: GraphBuilder, binDir: string): TaskKey[] {
  const containerd = new ArchiveTask({
    name: 'containerd',
    asset: modelAsset(model, 'containerd'),
    members: ['containerd', 'containerd-shim-runc-v2', 'ctr'].map((b) => ({ member: `bin/${b}`, path: `${binDir}/${b}`, mode: 0o755 })),
    notify: [containerdUnitKey],
  });
  const runc = new DownloadTask({ asset: modelAsset(model, 'runc'), path: `${binDir}/runc`, mode: 0o755 });
  graph.add(containerd);
  graph.add(runc);
  return [runc.key];
}

export const containerdComponent: Component = {
  name: 'containerd',
  enabled: () => true,
  build(model, graph) {
    const c = model.spec.containerd;
    const binDir = containerdBinDir(c.source, model.distro.binDir);
    const after: TaskKey[] = [];
    if (c.source === 'release') {
      after.push(...buildRelease(model, graph, binDir));
    } else {
      const pkg: TaskKey = `package:${c.packageName}`;
      if (!graph.has(pkg)) {
        throw new AgentError(
          'CONFIG_INVALID',
          `spec.containerd.source is distro but no task installs package ${c.packageName}: add it to spec.packages.extra`,
          { details: { field: 'spec.containerd.source', package: c.packageName } },
        );
      }
      after.push(pkg);
    }

    // crictl (cri-tools' release) in both sources: distros rarely package it.
    graph.add(
      new ArchiveTask({
        name: 'crictl',
        asset: modelAsset(model, 'crictl'),
        members: [{ member: 'crictl', path: `${model.distro.binDir}/crictl`, mode: 0o755 }],
      }),
    );

    // CNI plugins come from their release archive in both sources (add-ons rely on loopback/portmap).
    graph.ensure(new DirTask({ path: '/opt/cni', mode: 0o755 }));
    graph.ensure(new DirTask({ path: cniBinDir, mode: 0o755 }));
    graph.add(
      new ArchiveTask({
        name: 'cni-plugins',
        asset: modelAsset(model, 'cni-plugins'),
        members: cniPlugins.map((p) => ({ member: `./${p}`, path: `${cniBinDir}/${p}`, mode: 0o755 })),
      }),
    );
    graph.ensure(new DirTask({ path: '/etc/cni', mode: 0o755 }));
    graph.ensure(new DirTask({ path: cniConfDir, mode: 0o755 }));
    // Files of the other bridge modes go: containerd renders its template only while no CNI config
    // loads, and libcni uses the first file by name (10-containerd-net sorts before 10-nodeup-bridge).
    const perNode = perNodeBridge(model);
    if (perNode || model.spec.networking.cni !== 'bridge') graph.add(new AbsentFileTask({ path: bridgeConflistPath }));
    if (!perNode) {
      graph.add(new AbsentFileTask({ path: bridgeTemplatePath }));
      graph.add(new AbsentFileTask({ path: generatedConflistPath, onlyIfContains: `"name": "${bridgeNetworkName}"` }));
    }

    // config.toml, drop-ins, registry hosts, crictl.yaml, the bridge CNI config.
    graph.ensure(new DirTask({ path: '/etc/containerd', mode: 0o755 }));
    graph.add(
      new ManagedDirTask({
        path: containerdDropInDir,
        mode: 0o755,
        keep: Object.keys(c.dropIns).map((d) => `${d}.toml`),
        layout: { kind: 'flat', suffix: '.toml' },
        notify: [containerdUnitKey],
      }),
    );
    graph.add(
      new ManagedDirTask({
        path: containerdCertsDir,
        mode: 0o755,
        keep: Object.keys(c.registryMirrors).map((r) => `${hostsDirName(r)}/hosts.toml`),
        layout: { kind: 'sub', file: 'hosts.toml' },
      }),
    );
    for (const f of containerdFiles(model)) {
      graph.add(new FileTask({ path: f.path, content: f.content, mode: f.mode, ...(f.restarts ? { notify: [containerdUnitKey] } : {}) }));
    }

    // The unit. It runs in bake mode too: image pre-loading needs a running containerd, and nothing
    // in it depends on the node's identity.
    graph.add(
      new UnitTask({
        name: 'containerd.service',
        unitDir: model.distro.unitDir,
        content: containerdUnitContent(model),
        enabled: true,
        running: true,
        after: [...after, containerdConfigKey, cniPluginsKey],
      }),
    );
  },
  preflight(model): readonly PreflightCheck[] {
    return [
      {
        name: 'containerd-version',
        check: () => {
          const v = model.versions.containerd;
          if (!versionAtLeast(v, 1, 7)) {
            return `containerd ${v} is too old for Kubernetes ${model.versions.minor}: use 1.7 or 2.x (spec.containerd.version)`;
          }
          return undefined;
        },
      },
      {
        name: 'containerd-config-additions',
        check: () => {
          // containerd ignores sections it does not know: catch additions written for the other schema.
          const schema = configSchemaFor(model.versions.containerd);
          const wrong = Object.keys(model.spec.containerd.configAdditions).filter((k) =>
            schema === 2 ? k.includes('"io.containerd.cri.v1.') : /"io\.containerd\.grpc\.v1\.cri"\.(containerd|cni|registry|sandbox_image)/.test(k),
          );
          if (wrong.length === 0) return undefined;
          return `spec.containerd.configAdditions ${wrong.join(', ')} use${wrong.length === 1 ? 's' : ''} the config schema of containerd ${schema === 2 ? '2.x (version 3)' : '1.x (version 2)'}, but containerd ${model.versions.containerd} reads version ${schema}: rewrite the path${wrong.length === 1 ? '' : 's'} (see docs/containerd.md)`;
        },
      },
    ];
  },
};
