// Layer: component. Imports src/engine and src/model only, never another component's folder.
// images: container images placed into containerd's k8s.io namespace before kubelet needs them.
// Owns: one `image:<ref>` task per archive (verified by SHA-256, imported with ctr, skipped when
// already imported) and per pre-pulled image (through the CRI, so mirrors apply); records under
// /var/lib/nodeup/images. In `nodeup bake` the images of the node's role are pulled too, so a
// node from the baked image (a control plane included) starts without a registry.
// Runs after: unit:containerd.service and the registry hosts.toml files (by key).
import type { Component } from '../model/component.ts';
import type { NodeModel } from '../model/node-model.ts';
import type { TaskKey } from '../engine/task.ts';
import { containerdSocket, containerdUnitKey, hostsFileKeys, runtimeTools, sandboxImage } from '../model/paths/containerd.ts';
import { ImageTask } from './image-task.ts';

/** The images a node of this role runs, with the same registries its manifests name: what a bake pre-pulls. Pure. */
export function roleImages(model: NodeModel): string[] {
  const v = model.versions;
  const s = model.spec;
  const out = [sandboxImage(model)];
  if (s.kubeProxy.enabled) out.push(`registry.k8s.io/kube-proxy:${v.kubernetes}`);
  if (model.spec.role === 'control-plane') {
    for (const c of ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler']) out.push(`${s.controlPlane.imageRegistry}/${c}:${v.kubernetes}`);
    if (s.etcd.mode === 'static-pod') out.push(`${s.etcd.image}:${(s.etcd.version ?? v.etcd).replace(/^v/, '')}-0`);
    const dns = s.addons.coredns;
    if (dns.enabled) out.push(`${dns.imageRegistry ?? s.controlPlane.imageRegistry}/coredns/coredns:${dns.version ?? v.coredns}`);
  }
  return out;
}

/** Images to pull on this run: the user's list, plus the role's images in a bake. Pure. */
export function prePullList(model: NodeModel): string[] {
  const list = [...model.spec.images.prePull];
  if (model.bake && model.spec.images.bakeRoleImages) list.push(...roleImages(model));
  const archived = new Set(model.spec.images.archives.map((a) => a.name));
  return [...new Set(list)].filter((i) => !archived.has(i)).sort();
}

export const imagesComponent: Component = {
  name: 'images',
  enabled: (m) => m.spec.images.archives.length > 0 || prePullList(m).length > 0,
  build(model, graph) {
    const tools = runtimeTools(model);
    const after: TaskKey[] = [containerdUnitKey, ...hostsFileKeys(model)].filter((k) => graph.has(k));
    const common = { ...tools, address: containerdSocket, live: model.live, after };
    for (const a of model.spec.images.archives) {
      graph.add(
        new ImageTask({
          ...common,
          name: a.name,
          source: { kind: 'archive', asset: { name: `image ${a.name}`, urls: a.urls, sha256: a.sha256 } },
        }),
      );
    }
    // Pulls need a running containerd and a network: none on an offline root.
    if (!model.live) return;
    for (const ref of prePullList(model)) graph.add(new ImageTask({ ...common, name: ref, source: { kind: 'pull' } }));
  },
};
