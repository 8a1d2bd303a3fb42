import { describe, expect, it } from 'vitest';
import { configHash, jsonSchemas, parseBootConfig, parseNodeConfig } from './config.ts';
import { AgentError } from '../engine/errors.ts';

const node = (spec: string): string => `apiVersion: nodeup.dev/v1alpha1
kind: NodeConfig
metadata: { cluster: demo, instanceGroup: nodes }
spec:
${spec}`;

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err: unknown) {
    if (err instanceof AgentError) return (err.details.problems as string[]) ?? [err.message];
    throw err;
  }
  throw new Error('expected an error');
}

describe('config', () => {
  it('applies schema defaults', () => {
    const cfg = parseNodeConfig(node('  role: worker\n  apiServerEndpoint: https://10.0.0.1:6443\n'), 'node.yaml');
    expect(cfg.spec.kubelet.maxPods).toBe(110);
    expect(cfg.spec.kubeProxy.mode).toBe('nftables');
    expect(cfg.spec.networking.cni).toBe('bridge');
    expect(cfg.spec.files).toEqual([]);
  });

  it('reports every problem at once, each with its path', () => {
    const text = node(`  role: boss
  apiServerEndpoint: ftp://x
  kubelet:
    maxPods: ten
    colour: blue
  networking:
    podCIDR: nonsense
`);
    const p = problems(() => parseNodeConfig(text, 'node.yaml'));
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^spec\.role: .*"boss"/),
        expect.stringMatching(/^spec\.apiServerEndpoint: expected an http\(s\):\/\/ URL/),
        'spec.kubelet.maxPods: expected number, got "ten"',
        expect.stringMatching(/^spec\.kubelet\.colour: unknown key/),
        expect.stringMatching(/^spec\.networking\.podCIDR: expected a CIDR/),
      ]),
    );
    expect(p.length).toBe(5);
  });

  it('names the file and counts the problems in the message', () => {
    expect(() => parseBootConfig('kind: BootConfig\n', '/etc/nodeup/boot.yaml')).toThrow(/^\/etc\/nodeup\/boot\.yaml: \d+ problems:/);
  });

  it('refuses a node config whose hash differs from the boot config', () => {
    const text = node('  role: worker\n  apiServerEndpoint: https://10.0.0.1:6443\n');
    expect(parseNodeConfig(text, 'x', configHash(text)).spec.role).toBe('worker');
    try {
      parseNodeConfig(text + '\n', 'x', configHash(text));
      expect.unreachable();
    } catch (err: unknown) {
      expect(err).toBeInstanceOf(AgentError);
      expect((err as AgentError).code).toBe('CONFIG_HASH_MISMATCH');
    }
  });

  it('reports YAML syntax errors with the file name', () => {
    expect(() => parseBootConfig('a: [b', 'boot.yaml')).toThrow(/^boot\.yaml: not valid YAML/);
  });

  it('publishes JSON Schemas', () => {
    const s = jsonSchemas()['node-config.schema.json'] as { properties: Record<string, unknown> };
    expect(Object.keys(s.properties)).toEqual(['apiVersion', 'kind', 'metadata', 'spec']);
  });
});
