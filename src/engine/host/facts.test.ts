// The one fact read from nodeup's own state: the version the node last converged to (its receipt).
import { describe, expect, it } from 'vitest';
import { createTestHost } from '../../../tests/support/test-host.ts';
import { convergedVersionOf, readHostFacts, receiptFile } from './facts.ts';

describe('convergedVersionOf', () => {
  it('reads the receipt field, and nothing from a missing, broken or odd receipt', () => {
    expect(convergedVersionOf('{"result":"converged","convergedKubernetesVersion":"v1.34.4"}')).toBe('v1.34.4');
    expect(convergedVersionOf(undefined)).toBeUndefined();
    expect(convergedVersionOf('{"result":"converg')).toBeUndefined();
    expect(convergedVersionOf('{"convergedKubernetesVersion":42}')).toBeUndefined();
    expect(convergedVersionOf('{"convergedKubernetesVersion":"latest"}')).toBeUndefined();
  });

  it('readHostFacts takes it from the node\'s receipt', async () => {
    const host = await createTestHost({ fixture: 'debian-12', unmatched: 'succeed' });
    try {
      expect((await readHostFacts(host)).convergedKubernetesVersion).toBeUndefined();
      await host.fs.mkdirp('/var/lib/nodeup', 0o755);
      await host.fs.writeAtomic(receiptFile, JSON.stringify({ result: 'failed', convergedKubernetesVersion: 'v1.34.4' }), { mode: 0o644 });
      expect((await readHostFacts(host)).convergedKubernetesVersion).toBe('v1.34.4');
    } finally {
      await host.dispose();
    }
  });
});
