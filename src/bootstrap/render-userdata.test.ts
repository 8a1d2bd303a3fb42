import { describe, expect, it } from 'vitest';
import { apiVersion, type BootConfig } from '../model/config.ts';
import { AgentError } from '../engine/errors.ts';
import { assertNoSecrets, assertUserDataSize, renderBootstrapScript, userDataLimitBytes, type UserDataInput } from './render-userdata.ts';

const boot: BootConfig = {
  apiVersion,
  kind: 'BootConfig',
  stateStore: 's3://nodeup-state/prod',
  clusterName: 'prod',
  instanceGroup: 'nodes',
  nodeConfigHash: `sha256:${'ab'.repeat(32)}`,
  s3: { region: 'eu-west-1', forcePathStyle: false },
  assetMirrors: ['https://assets.example.com/k8s'],
};

const input: UserDataInput = {
  bootConfig: boot,
  mirrors: ['https://releases.example.com/nodeup/v0.1.0/', 'https://mirror.example.org/nodeup/v0.1.0'],
  sha256: { amd64: '1'.repeat(64), arm64: '2'.repeat(64) },
  version: '0.1.0',
};

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err: unknown) {
    return err instanceof AgentError ? err.code : 'not-agent-error';
  }
  return undefined;
}

describe('renderBootstrapScript', () => {
  it('renders the worker script (golden)', async () => {
    await expect(renderBootstrapScript(input)).toMatchFileSnapshot('testdata/worker/expected/user-data.sh');
  });

  it('stays far under the 16 KB user-data limit, which is enforced', () => {
    expect(Buffer.byteLength(renderBootstrapScript(input))).toBeLessThan(6 * 1024);
    expect(userDataLimitBytes).toBe(16384);
    expect(codeOf(() => assertUserDataSize(16384))).toBeUndefined();
    expect(codeOf(() => assertUserDataSize(16385))).toBe('CONFIG_INVALID');
  });

  it('pins the hash of the full node config and the binary hashes', () => {
    const s = renderBootstrapScript(input);
    expect(s).toContain(`nodeConfigHash: sha256:${'ab'.repeat(32)}`);
    expect(s).toContain(`NODEUP_SHA256_AMD64='${'1'.repeat(64)}'`);
    expect(s).toContain(`'https://releases.example.com/nodeup/v0.1.0'`); // trailing slash dropped
    expect(s.startsWith('#!/bin/bash\n')).toBe(true);
  });

  it('refuses no mirrors, no hashes, bad hashes, credentials in mirror URLs', () => {
    expect(codeOf(() => renderBootstrapScript({ ...input, mirrors: [] }))).toBe('CONFIG_INVALID');
    expect(codeOf(() => renderBootstrapScript({ ...input, sha256: {} }))).toBe('CONFIG_INVALID');
    expect(codeOf(() => renderBootstrapScript({ ...input, sha256: { amd64: 'XYZ' } }))).toBe('CONFIG_INVALID');
    expect(codeOf(() => renderBootstrapScript({ ...input, mirrors: ['https://user:pw@example.com/x'] }))).toBe('CONFIG_INVALID');
    expect(codeOf(() => renderBootstrapScript({ ...input, mirrors: ['https://example.com/x?X-Amz-Signature=1'] }))).toBe('CONFIG_INVALID');
    expect(codeOf(() => renderBootstrapScript({ ...input, mirrors: ['s3://bucket/x'] }))).toBe('CONFIG_INVALID');
    expect(codeOf(() => renderBootstrapScript({ ...input, installPath: '/opt/$(reboot)' }))).toBe('CONFIG_INVALID');
  });

  it('allows a single architecture', () => {
    const s = renderBootstrapScript({ ...input, sha256: { arm64: '2'.repeat(64) } });
    expect(s).toContain(`NODEUP_SHA256_AMD64=''`);
  });
});

describe('assertNoSecrets', () => {
  it.each([
    ['-----BEGIN EC PRIVATE KEY-----\nMHc...\n-----END EC PRIVATE KEY-----'],
    ['secretAccessKey: abc'],
    ['token: abcdef.0123456789abcdef'],
  ])('refuses %j', (text) => {
    expect(codeOf(() => assertNoSecrets(text, 'x'))).toBe('CONFIG_INVALID');
  });
  it('accepts a plain boot config', () => {
    expect(codeOf(() => assertNoSecrets('clusterName: prod\nnodeConfigHash: sha256:abc\n', 'x'))).toBeUndefined();
  });
});
