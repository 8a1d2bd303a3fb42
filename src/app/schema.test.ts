import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import * as yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { apiVersion } from '../model/config.ts';
import { jsonSchemas } from '../model/config.ts';
import { exampleNodeConfig } from './example.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = path.join(repo, 'schema');

describe('published JSON Schemas', () => {
  it.each(Object.keys(jsonSchemas()))('schema/%s matches the zod schemas (regenerate: nodeup schema --out schema)', async (name) => {
    const text = JSON.stringify(jsonSchemas()[name], null, 2) + '\n';
    expect(await fsp.readFile(path.join(dir, name), 'utf8')).toBe(text);
  });
});

// The files in schema/ as an editor or a CI job sees them, through a real JSON Schema validator
// (ajv, draft 2020-12, strict). zod writes `format: "starts_with"` beside the pattern that says the
// same; it is declared here as a format that accepts everything.
async function validator(name: string): Promise<(doc: unknown) => string[]> {
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true, formats: { starts_with: true } });
  const validate = ajv.compile(JSON.parse(await fsp.readFile(path.join(dir, name), 'utf8')) as object);
  return (doc) => (validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`));
}

/** Every golden case's NodeConfig (src/<component>/testdata/<case>/model.yaml, key `config`). */
async function goldenConfigs(): Promise<[string, unknown][]> {
  const out: [string, unknown][] = [];
  for (const entry of await fsp.readdir(path.join(repo, 'src'), { recursive: true })) {
    if (!/testdata\/[^/]+\/model\.yaml$/.test(entry)) continue;
    const doc = yaml.load(await fsp.readFile(path.join(repo, 'src', entry), 'utf8')) as { config?: unknown };
    if (doc.config !== undefined) out.push([entry, doc.config]);
  }
  return out;
}

const node = (spec: Record<string, unknown>): Record<string, unknown> => ({
  apiVersion,
  kind: 'NodeConfig',
  metadata: { cluster: 'demo', instanceGroup: 'nodes' },
  spec: { role: 'worker', apiServerEndpoint: 'https://10.0.0.1:6443', ...spec },
});
const boot = (extra: Record<string, unknown>): Record<string, unknown> => ({
  apiVersion,
  kind: 'BootConfig',
  stateStore: 'file:///srv/state',
  clusterName: 'demo',
  instanceGroup: 'nodes',
  nodeConfigHash: `sha256:${'0'.repeat(64)}`,
  ...extra,
});

describe('schema/ through ajv', () => {
  it('accepts the example configs and every golden config', async () => {
    const check = await validator('node-config.schema.json');
    const golden = await goldenConfigs();
    expect(golden.length).toBeGreaterThanOrEqual(9);
    for (const [name, doc] of [
      ['example control-plane', yaml.load(exampleNodeConfig('control-plane', 'control-plane'))],
      ['example nodes', yaml.load(exampleNodeConfig('nodes', 'worker'))],
      ...golden,
    ] as const) {
      expect(check(doc), name).toEqual([]);
    }
    expect(await validator('boot-config.schema.json').then((c) => c(boot({ nodeName: 'node-a.example', assetMirrors: ['https://m.example'] })))).toEqual([]);
  });

  it.each([
    ['unknown key', node({ kubelet: { maxpods: 10 } })],
    ['role outside the enum', node({ role: 'boss' })],
    ['maxPods as a string', node({ kubelet: { maxPods: 'ten' } })],
    ['file mode as a bare number', node({ files: [{ path: '/etc/x', content: '', mode: 644 }] })],
    ['file mode with an 8', node({ files: [{ path: '/etc/x', content: '', mode: '0648' }] })],
    ['relative file path', node({ files: [{ path: 'etc/x', content: '' }] })],
    ['CIDR without a prefix', node({ networking: { podCIDR: '10.244.0.0' } })],
    ['CIDR with letters', node({ networking: { serviceCIDR: 'ten/12' } })],
    ['unit name without a type', node({ units: [{ name: 'hook', content: 'x' }] })],
    ['etcd member count 10', node({ etcd: { memberCount: 10 } })],
    ['Kubernetes version without v', node({ kubernetesVersion: '1.35.1' })],
    ['cluster DNS host name', node({ kubelet: { clusterDNS: ['dns.local'] } })],
  ])('refuses a node config: %s', async (_name, doc) => {
    expect((await validator('node-config.schema.json'))(doc)).not.toEqual([]);
  });

  it.each([
    ['node name with capitals', boot({ nodeName: 'Node-A' })],
    ['node name with a slash', boot({ nodeName: 'a/b' })],
    ['node name of 254 characters', boot({ nodeName: 'a'.repeat(254) })],
    ['short hash', boot({ nodeConfigHash: 'sha256:abc' })],
    ['cluster name with an underscore', boot({ clusterName: 'my_cluster' })],
    ['misspelt key', boot({ nodename: 'a' })],
  ])('refuses a boot config: %s', async (_name, doc) => {
    expect((await validator('boot-config.schema.json'))(doc)).not.toEqual([]);
  });
});
