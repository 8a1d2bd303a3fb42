// The contract every component keeps (Renovate's index.spec.ts pattern): a unique name usable with
// --only/--skip, and a pure build that yields a valid graph for every distro row and both roles.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { components } from './components.ts';
import { NodeConfig, apiVersion } from '../model/config.ts';
import { parseOsRelease } from '../engine/host/facts.ts';
import { modelOf } from '../../tests/support/model.ts';
import { buildGraph } from './run.ts';
import { distros } from '../model/distros.ts';

const roots = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../tests/fixtures/roots');
const ca = '-----BEGIN CERTIFICATE-----\nTUlJQ29udHJhY3Q=\n-----END CERTIFICATE-----\n';

describe('component contract', () => {
  it('names are unique, kebab-case, and every component is listed once', () => {
    const names = components.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) expect(n).toMatch(/^[a-z][a-z0-9-]*$/);
  });

  const rows = distros.flatMap((d) => (['worker', 'control-plane'] as const).map((role) => ({ id: d.id, role })));
  it.each(rows)('$id $role: every enabled component builds a valid graph', async ({ id, role }) => {
    const text = await fsp.readFile(path.join(roots, id, 'etc/os-release'), 'utf8');
    const config = NodeConfig.parse({
      apiVersion,
      kind: 'NodeConfig',
      metadata: { cluster: 'contract', instanceGroup: 'g' },
      spec: { role, apiServerEndpoint: 'https://10.0.0.1:6443', files: [{ path: '/etc/x', content: 'x' }] },
    });
    const model = modelOf(config, { facts: { osRelease: parseOsRelease(text) }, secrets: { clusterCaCert: ca, bootstrapToken: 'abcdef.0123456789abcdef' }, live: true });
    expect(model.distro.id).toBe(id);
    const graph = buildGraph(model, components);
    const finished = graph.finish();
    expect(finished.order.length).toBeGreaterThan(5);
    const owners = new Set(graph.owner.values());
    for (const c of components) {
      if (c.enabled(model)) expect(owners.has(c.name), `${c.name} enabled but built no task`).toBe(true);
    }
  });
});
