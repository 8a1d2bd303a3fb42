// Every file the prereqs, kubelet and kube-proxy components render, for each supported Kubernetes
// minor and both roles: applied to a fixture root, then compared with tests/golden/kubelet-matrix/.
// The newest minor's goldens hold every file; an older minor's hold only the files that differ from
// the newest's (today the kube-proxy image tag), and every other file must equal the newest's.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execute } from '../../src/engine/executor.ts';
import { createTestHost } from '../support/test-host.ts';
import { silentLogger } from '../../src/engine/log.ts';
import { buildGraph } from '../../src/app/run.ts';
import { releaseDefaults, supportedMinors } from '../../src/model/assets/versions.ts';
import { kubeProxyComponent } from '../../src/kube-proxy/component.ts';
import { kubeletComponent } from '../../src/kubelet/component.ts';
import { testModel } from '../support/kubelet-model.ts';
import { prereqsComponent } from '../../src/node-prereqs/component.ts';
import { fakeKubeAssets, isRenderedFile, type FakeAssets } from './kubelet-support.ts';

const goldenDir = path.dirname(fileURLToPath(import.meta.url));
const rocky = { id: 'rocky', idLike: ['rhel'], versionId: '9.4', prettyName: 'Rocky Linux 9.4' };
const roles = [
  { role: 'worker', fixture: 'debian-12' },
  { role: 'control-plane', fixture: 'rocky-9' },
] as const;
const newest = supportedMinors[supportedMinors.length - 1];
const readGolden = (rel: string): Promise<string | undefined> => fsp.readFile(path.join(goldenDir, rel), 'utf8').catch(() => undefined);
const cases = supportedMinors.flatMap((minor) => roles.map((r) => ({ minor, ...r, version: releaseDefaults[minor].kubernetes })));

const assets = new Map<string, FakeAssets>();
beforeAll(async () => {
  for (const c of cases) if (!assets.has(c.version)) assets.set(c.version, await fakeKubeAssets(c.version));
});
afterAll(async () => {
  for (const a of assets.values()) await a.dispose();
});

describe('kubelet matrix goldens', () => {
  it.each(cases)('$minor $role ($version)', async ({ minor, role, fixture, version }) => {
    const model = testModel({
      role,
      kubernetesVersion: version,
      spec: {
        assets: { overrides: assets.get(version)?.overrides },
        kubelet: { nodeLabels: { 'node.kubernetes.io/pool': role === 'worker' ? 'general' : 'system' }, systemReserved: { cpu: '100m', memory: '256Mi' } },
      },
      ...(fixture === 'rocky-9' ? { facts: { osRelease: rocky } } : {}),
    });
    const graph = buildGraph(model, [prereqsComponent, kubeletComponent, kubeProxyComponent]).finish();
    const host = await createTestHost({ fixture, unmatched: 'fail' });
    try {
      const report = await execute(graph, host, { mode: 'apply', log: silentLogger });
      expect(report.ok).toBe(true);
      expect(host.commandLog()).toEqual([]); // an offline root: no live commands
      const files = (await host.tree()).filter(isRenderedFile);
      expect(files.length).toBeGreaterThanOrEqual(8);
      for (const rel of files) {
        const text = await fsp.readFile(path.join(host.root, rel), 'utf8');
        const own = `kubelet-matrix/${minor}-${role}/${rel}`;
        const base = minor === newest ? undefined : await readGolden(`kubelet-matrix/${newest}-${role}/${rel}`);
        if (base === undefined || text !== base) await expect(text).toMatchFileSnapshot(own);
        else expect(await readGolden(own), `${own} equals the ${newest} golden: delete it`).toBeUndefined();
      }
      const again = await execute(graph, host, { mode: 'apply', log: silentLogger });
      expect(again.changed).toBe(0);
    } finally {
      await host.dispose();
    }
  });
});
