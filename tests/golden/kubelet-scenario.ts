// The whole-node scenario behind tests/golden/worker-debian-12 and cp-role-node-parts-rocky-9: a
// file:// state store in a temp dir holding the instance group's NodeConfig (asset overrides pointing
// at small local fake assets with their real SHA-256), a fixture root, `runNode` in plan mode, then
// apply, then apply again.
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { configHash, type BootConfig } from '../../src/model/config.ts';
import type { HostFacts } from '../../src/engine/host/facts.ts';
import { silentLogger } from '../../src/engine/log.ts';
import { components } from '../../src/app/components.ts';
import { cniPlugins } from '../../src/containerd/component.ts';
import { storeLayout } from '../../src/engine/state-store.ts';
import { fakeArchive, fakeFile } from '../support/fake-assets.ts';

export interface Scenario {
  readonly dir: string;
  readonly boot: BootConfig;
  /** Components that need a real package manager are left to their integration tests. */
  readonly skip: readonly string[];
  dispose(): Promise<void>;
}

export const scenarioCa = '-----BEGIN CERTIFICATE-----\nTUlJQlNjZW5hcmlvQ0E=\n-----END CERTIFICATE-----\n';
export const scenarioToken = 'k8s0ab.nodeupscenario01';

export async function makeScenario(role: 'worker' | 'control-plane', instanceGroup: string): Promise<Scenario> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-scenario-'));
  const assets = path.join(dir, 'assets');
  await fsp.mkdir(assets);
  const v = '1.35.1';
  const overrides = {
    kubelet: { version: v, ...(await fakeFile(assets, 'kubelet', `#!/bin/sh\necho kubelet v${v}\n`)) },
    kubectl: { version: v, ...(await fakeFile(assets, 'kubectl', `#!/bin/sh\necho kubectl v${v}\n`)) },
    runc: { version: '1.3.4', ...(await fakeFile(assets, 'runc', '#!/bin/sh\necho runc 1.3.4\n')) },
    containerd: { version: '2.2.1', ...(await fakeArchive(assets, 'containerd', ['bin/containerd', 'bin/containerd-shim-runc-v2', 'bin/ctr'])) },
    crictl: { version: '1.35.0', ...(await fakeArchive(assets, 'crictl', ['crictl'])) },
    'cni-plugins': { version: '1.8.0', ...(await fakeArchive(assets, 'cni-plugins', cniPlugins.map((p) => `./${p}`))) },
  };
  const nodeConfig = {
    apiVersion: 'nodeup.dev/v1alpha1',
    kind: 'NodeConfig',
    metadata: { cluster: 'golden', instanceGroup },
    spec: {
      role,
      kubernetesVersion: `v${v}`,
      apiServerEndpoint: 'https://10.0.0.2:6443',
      assets: { overrides },
      kubelet: { nodeLabels: { 'node.kubernetes.io/instance-group': instanceGroup } },
    },
  };
  // JSON is YAML; the store holds exactly these bytes and the boot config pins their hash.
  const raw = JSON.stringify(nodeConfig, null, 2) + '\n';
  const store = path.join(dir, 'store');
  const put = async (key: string, data: string): Promise<void> => {
    await fsp.mkdir(path.dirname(path.join(store, key)), { recursive: true });
    await fsp.writeFile(path.join(store, key), data);
  };
  await put(storeLayout.nodeConfig(instanceGroup), raw);
  await put(storeLayout.pki('ca.crt'), scenarioCa);
  if (role === 'worker') await put(storeLayout.secret('bootstrap-token'), scenarioToken + '\n');
  const boot: BootConfig = {
    apiVersion: 'nodeup.dev/v1alpha1',
    kind: 'BootConfig',
    stateStore: pathToFileURL(store).href,
    clusterName: 'golden',
    instanceGroup,
    nodeConfigHash: configHash(raw),
    assetMirrors: [],
  };
  const registered = new Set(components.map((c) => c.name));
  return {
    dir,
    boot,
    skip: ['packages', 'etcd', 'control-plane'].filter((n) => registered.has(n)),
    dispose: () => fsp.rm(dir, { recursive: true, force: true }),
  };
}

export const rockyFacts: Partial<HostFacts> = {
  osRelease: { id: 'rocky', idLike: ['rhel', 'centos', 'fedora'], versionId: '9.4', prettyName: 'Rocky Linux 9.4 (Blue Onyx)' },
};

export { silentLogger };
