import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestHost, type TestHost } from '../../tests/support/test-host.ts';
import { createCa, issueLeaf, type KeyPairPem } from '../engine/pki/x509.ts';
import { KubeletCertFilesTask, pairProblem, pemParts } from './cert-files-task.ts';
import { taskContext } from '../../tests/support/task-context.ts';

const dir = '/var/lib/kubelet/pki';
const ctx = taskContext();

describe('kubelet cert files (pairs kubelet writes itself)', () => {
  let pair: KeyPairPem;
  let other: KeyPairPem;
  let host: TestHost;
  const at = (name: string): string => host.fs.hostPath(`${dir}/${name}`);
  const put = async (name: string, text: string): Promise<void> => {
    await fsp.mkdir(path.dirname(at(name)), { recursive: true });
    await fsp.writeFile(at(name), text);
  };
  const exists = (name: string): Promise<boolean> => fsp.lstat(at(name)).then(() => true, () => false);
  const task = new KubeletCertFilesTask({ dir, notify: ['unit:kubelet.service'] });
  const converge = async (): Promise<readonly string[]> => {
    const changes = task.diff(await task.observe(host));
    if (changes.length > 0) await task.apply(host, changes, ctx);
    return changes.map((c) => `${c.field}: ${c.from ?? ''}`);
  };

  beforeAll(async () => {
    const ca = await createCa('kubelet-test');
    pair = await issueLeaf(ca, { commonName: 'node-1', dnsNames: ['node-1'], ips: [], usages: ['server'], validityDays: 30 });
    other = await issueLeaf(ca, { commonName: 'node-2', dnsNames: ['node-2'], ips: [], usages: ['server'], validityDays: 30 });
  });
  beforeEach(async () => {
    host = await createTestHost();
  });
  afterEach(() => host.dispose());

  it('finds nothing to do without a cert dir, or with whole pairs', async () => {
    expect(await converge()).toEqual([]);
    await put('kubelet.crt', pair.certPem);
    await put('kubelet.key', pair.keyPem);
    await put('kubelet-client-2026-11-24-04-05-24.pem', pair.certPem + pair.keyPem);
    await fsp.symlink(at('kubelet-client-2026-11-24-04-05-24.pem'), at('kubelet-client-current.pem'));
    expect(await converge()).toEqual([]);
    expect(await exists('kubelet.crt')).toBe(true);
  });

  it('removes an emptied serving pair (the power-cut case), then finds nothing', async () => {
    await put('kubelet.crt', '');
    await put('kubelet.key', pair.keyPem);
    expect(await converge()).toEqual(['kubelet.crt: certificate file empty']);
    expect(await exists('kubelet.crt')).toBe(false);
    expect(await exists('kubelet.key')).toBe(false);
    expect(await converge()).toEqual([]);
  });

  it('removes a serving pair whose key belongs to another certificate', async () => {
    await put('kubelet.crt', pair.certPem);
    await put('kubelet.key', other.keyPem);
    expect(await converge()).toEqual(['kubelet.crt: the key does not belong to the certificate (or does not parse)']);
    expect(await exists('kubelet.key')).toBe(false);
  });

  it('leaves a lone serving file alone: kubelet rewrites both', async () => {
    await put('kubelet.crt', '');
    expect(await converge()).toEqual([]);
    expect(await exists('kubelet.crt')).toBe(true);
  });

  it('removes a cut-short rotated pair with its dated file, and a dangling link', async () => {
    await put('kubelet-client-2026-11-24-04-05-24.pem', pair.certPem + pair.keyPem.slice(0, 40));
    await put('kubelet-client-2026-01-01-00-00-00.pem', pair.certPem + pair.keyPem);
    await fsp.symlink('kubelet-client-2026-11-24-04-05-24.pem', at('kubelet-client-current.pem'));
    await fsp.symlink('/var/lib/kubelet/pki/kubelet-server-gone.pem', at('kubelet-server-current.pem'));
    expect(await converge()).toEqual(['kubelet-client-current.pem: no PEM private key', 'kubelet-server-current.pem: the link points at a missing file']);
    expect(await exists('kubelet-client-current.pem')).toBe(false);
    expect(await exists('kubelet-client-2026-11-24-04-05-24.pem')).toBe(false);
    expect(await exists('kubelet-client-2026-01-01-00-00-00.pem'), 'an older pair stays').toBe(true);
    expect(await exists('kubelet-server-current.pem')).toBe(false);
    expect(await converge()).toEqual([]);
  });

  it('never follows a link out of the cert dir to remove its target', async () => {
    await put('../elsewhere.pem', '');
    await fsp.mkdir(at(''), { recursive: true });
    await fsp.symlink('../elsewhere.pem', at('kubelet-client-current.pem'));
    expect(await converge()).toEqual(['kubelet-client-current.pem: empty file']);
    expect(await exists('../elsewhere.pem')).toBe(true);
    expect(await exists('kubelet-client-current.pem')).toBe(false);
  });

  it('pemParts and pairProblem read the first certificate and key of any key type', () => {
    expect(pemParts(pair.certPem + pair.keyPem)).toEqual({ cert: pair.certPem.trim(), key: pair.keyPem.trim() });
    expect(pemParts('junk')).toEqual({});
    expect(pairProblem(pair.certPem, pair.keyPem)).toBeUndefined();
    expect(pairProblem(pair.certPem, ' \n')).toBe('key file empty');
    expect(pairProblem('x', pair.keyPem)).toBe('no PEM certificate');
  });
});
