// A bake pre-pulls the images of the node's role so the baked node needs no registry: a control
// plane model in bake mode, the images component's own task list, a real containerd (Debian's 1.6
// and a 2.x build, private root and socket) and a real registry on 127.0.0.1 standing in for
// registry.k8s.io through nodeup's mirror config. After the bake, with the registry stopped, a
// re-run has nothing to do.
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execute } from '../../src/engine/executor.ts';
import { Graph } from '../../src/engine/graph.ts';
import { NodeHost } from '../../src/engine/host/node-host.ts';
import { silentLogger } from '../../src/engine/log.ts';
import type { NodeModel } from '../../src/model/node-model.ts';
import { buildGraph } from '../../src/app/run.ts';
import { containerdConfigInput, containerdFiles } from '../../src/containerd/component.ts';
import { modelFromCase } from '../support/containerd-model.ts';
import { imagesComponent, roleImages } from '../../src/images/component.ts';
import { ImageTask } from '../../src/images/image-task.ts';
import {
  containerd2,
  crictlBinary,
  debianContainerd,
  makeTinyImage,
  pushWithSkopeo,
  startContainerd,
  startRegistry,
  type ContainerdBinaries,
  type ContainerdInstance,
  type RegistryInstance,
} from './containerd-harness.ts';

let work: string;
let layout = '';

function bakeModel(mirror: string, containerdVersion: string): NodeModel {
  const config = {
    apiVersion: 'nodeup.dev/v1alpha1',
    kind: 'NodeConfig',
    metadata: { cluster: 'c', instanceGroup: 'control-plane' },
    spec: {
      role: 'control-plane',
      kubernetesVersion: 'v1.35.4',
      apiServerEndpoint: 'https://10.0.0.10:6443',
      containerd: { version: containerdVersion, registryMirrors: { 'registry.k8s.io': [mirror] } },
    },
  };
  return modelFromCase(yaml.dump({ config, live: true, bake: true }), 'images-bake');
}

beforeAll(async () => {
  work = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-bake-'));
  layout = (await makeTinyImage(path.join(work, 'img'), 'stand-in:1')).layoutDir;
});
afterAll(async () => {
  await fsp.rm(work, { recursive: true, force: true });
});

/** A registry holding a tiny stand-in under every name a control plane runs. */
async function registryWithRoleImages(): Promise<RegistryInstance> {
  const reg = await startRegistry();
  for (const n of roleImages(bakeModel(reg.url, '2.1.4'))) {
    await pushWithSkopeo(layout, 'stand-in:1', `${reg.hostPort}/${n.replace(/^registry\.k8s\.io\//, '')}`);
  }
  return reg;
}

/** The images component's tasks, pointed at the private containerd and the built crictl. */
function imageGraph(model: NodeModel, inst: ContainerdInstance): Graph {
  const built = buildGraph(model, [imagesComponent]).finish();
  const g = new Graph();
  g.setOwner('images');
  for (const t of built.tasks.values()) {
    const spec = (t as ImageTask).spec;
    g.add(new ImageTask({ ...spec, ctr: inst.bins.ctr, crictl: crictlBinary(), address: inst.socket }));
  }
  return g;
}

const matrix: readonly [string, () => Promise<ContainerdBinaries>][] = [
  ['Debian containerd 1.6', debianContainerd],
  ['containerd 2.x (Go module proxy build)', containerd2],
];

describe.each(matrix)('%s', (_label, binaries) => {
  it('a baked control plane holds every image it runs; re-runs need no registry', async () => {
    const bins = await binaries();
    const reg = await registryWithRoleImages();
    let regUp = true;
    const model = bakeModel(reg.url, bins.version);
    const files: Record<string, string> = {};
    for (const f of containerdFiles(model)) {
      const m = /^\/etc\/containerd\/(certs\.d\/.+)$/.exec(f.path);
      if (m?.[1]) files[m[1]] = f.content;
    }
    const inst = await startContainerd({ bins, input: containerdConfigInput(model), files });
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-bake-root-'));
    try {
      const host = new NodeHost({ root, log: silentLogger });
      const want = roleImages(model);
      expect(want).toHaveLength(7);
      const plan = await execute(imageGraph(model, inst).finish(), host, { mode: 'plan', log: silentLogger });
      expect(plan.results.map((r) => r.key).sort()).toEqual(want.map((n) => `image:${n}`).sort());
      expect(plan.changed).toBe(7);

      const bake = await execute(imageGraph(model, inst).finish(), host, { mode: 'apply', log: silentLogger });
      expect(bake.results.filter((r) => r.status !== 'changed')).toEqual([]);
      const ls = await inst.ctr(['--namespace', 'k8s.io', 'images', 'ls', '-q']);
      for (const n of want) expect(ls.split('\n')).toContain(n);

      // No registry any more: the node has everything, a re-run changes nothing and pulls nothing.
      await reg.stop();
      regUp = false;
      const again = await execute(imageGraph(model, inst).finish(), host, { mode: 'apply', log: silentLogger });
      expect(again.changed).toBe(0);
      expect(again.ok).toBe(true);
    } finally {
      await inst.stop();
      await fsp.rm(root, { recursive: true, force: true });
      if (regUp) await reg.stop();
    }
  });
});
