import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { X509Certificate } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestHost, type TestHost } from '../../../tests/support/test-host.ts';
import { FileStore } from '../../statestore/file-store.ts';
import { bootstrapTokenRe, ensureBootstrapToken, ensureClusterPki, pkiLockKey, readCa } from './cluster-pki.ts';
import { parseKubeconfig } from './kubeconfig.ts';
import { CertTask } from './tasks.ts';
import { canonicalIp, certInfo, createCa, createKeyPair, issueLeaf, keyMatchesCert, signedBy } from './x509.ts';
import { taskContext } from '../../../tests/support/task-context.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function tempStore(): Promise<FileStore> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-pki-store-'));
  cleanups.push(() => fsp.rm(dir, { recursive: true, force: true }));
  return new FileStore(pathToFileURL(dir).toString());
}

async function host(): Promise<TestHost> {
  const h = await createTestHost();
  cleanups.push(() => h.dispose());
  return h;
}


describe('x509', () => {
  it('issues a server certificate with the asked SANs, usages and validity, signed by the CA', async () => {
    const ca = await createCa('kubernetes');
    const now = new Date('2026-01-01T00:00:00Z');
    const leaf = await issueLeaf(ca, { commonName: 'kube-apiserver', dnsNames: ['kubernetes', 'kubernetes.default.svc'], ips: ['10.96.0.1', '127.0.0.1'], usages: ['server'], validityDays: 365 }, now);
    const info = certInfo(leaf.certPem);
    expect(info.dnsNames).toEqual(['kubernetes', 'kubernetes.default.svc']);
    expect(info.ips).toEqual(['10.96.0.1', '127.0.0.1']);
    expect(info.extKeyUsages).toEqual(['server']);
    expect(info.isCa).toBe(false);
    expect(info.notAfter.getTime() - now.getTime()).toBe(365 * 86400_000);
    expect(signedBy(leaf.certPem, ca.certPem)).toBe(true);
    const other = await createCa('other');
    expect(signedBy(leaf.certPem, other.certPem)).toBe(false);
    // Node's own parser agrees on key usage and SANs.
    const n = new X509Certificate(leaf.certPem);
    expect(n.subjectAltName).toContain('IP Address:10.96.0.1');
    expect(n.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(n.ca).toBe(false);
    expect(new X509Certificate(ca.certPem).ca).toBe(true);
  });

  it('puts organizations in the subject of client certificates', async () => {
    const ca = await createCa('kubernetes');
    const leaf = await issueLeaf(ca, { commonName: 'kubernetes-admin', organizations: ['system:masters'], usages: ['client'], validityDays: 30 });
    expect(new X509Certificate(leaf.certPem).subject).toBe('CN=kubernetes-admin\nO=system:masters');
    expect(certInfo(leaf.certPem).extKeyUsages).toEqual(['client']);
    expect(certInfo(leaf.certPem).subject).toBe('CN=kubernetes-admin, O=system:masters');
  });

  it('reads IPv6 SANs back in RFC 5952 form, and a CA as a CA', async () => {
    const ca = await createCa('kubernetes');
    const leaf = await issueLeaf(ca, { commonName: 'etcd', ips: ['FD00:0:0:0:0:0:0:1', '2001:db8:0:0:1::10', '10.0.0.5'], usages: ['server', 'client'], validityDays: 30 });
    const info = certInfo(leaf.certPem);
    expect(info.ips).toEqual(['fd00::1', '2001:db8::1:0:0:10', '10.0.0.5']);
    expect(info.extKeyUsages).toEqual(['server', 'client']);
    expect(info.issuer).toBe('CN=kubernetes');
    expect(certInfo(ca.certPem).isCa).toBe(true);
    expect(() => certInfo('-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n')).toThrow(/not a PEM certificate/);
    expect(keyMatchesCert(leaf.keyPem, leaf.certPem)).toBe(true);
    expect(keyMatchesCert(ca.keyPem, leaf.certPem)).toBe(false);
  });

  it('writes key pairs as PKCS#8 and SPKI PEM', async () => {
    const kp = await createKeyPair();
    expect(kp.privatePem).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+-----END PRIVATE KEY-----\n$/);
    expect(kp.publicPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n$/);
  });

  it.each([
    ['FD00:0:0:0:0:0:0:1', 'fd00::1'],
    ['2001:db8:0:0:1:0:0:10', '2001:db8::1:0:0:10'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['1:0:0:0:0:0:0:0', '1::'],
    ['fe80::01', 'fe80::1'],
    ['10.96.0.1', '10.96.0.1'],
  ])('canonicalIp(%s) is %s', (ip, want) => expect(canonicalIp(ip)).toBe(want));
});

describe('cluster pki', () => {
  it('concurrent creators end with one CA, and the lock is released', async () => {
    const store = await tempStore();
    const results = await Promise.all(['cp-a', 'cp-b', 'cp-c'].map((holder) => ensureClusterPki(store, { holder })));
    expect(results.filter((r) => r === 'created')).toHaveLength(1);
    expect(await store.read(pkiLockKey)).toBeUndefined();
    const ca = await readCa(store, 'ca');
    expect(certInfo(ca.certPem).isCa).toBe(true);
    expect((await fsp.stat(new URL(`${store.url}/pki/ca.key`))).mode & 0o777).toBe(0o600);
    expect(await ensureClusterPki(store, { holder: 'cp-d' })).toBe('existing');
    expect((await readCa(store, 'ca')).certPem).toBe(ca.certPem);
  });

  it('reports a stale lock with its holder instead of breaking it', async () => {
    const store = await tempStore();
    await store.write(pkiLockKey, JSON.stringify({ holder: 'cp-gone', at: 0 }));
    await expect(ensureClusterPki(store, { holder: 'cp-a', staleMs: 1000 })).rejects.toThrow(/held by cp-gone.*remove the key/);
  });

  it('breaks a lock this node took in an earlier boot, and only that one', async () => {
    const store = await tempStore();
    const quick = { staleMs: 60_000, timeoutMs: 300, sleep: () => Promise.resolve() };
    // The same node, another boot: the run that held it ended with that boot (a power cut).
    await store.write(pkiLockKey, JSON.stringify({ holder: 'cp-a', at: Date.now(), boot: 'boot-1' }));
    expect(await ensureClusterPki(store, { holder: 'cp-a', boot: 'boot-2', ...quick })).toBe('created');
    expect(await store.read(pkiLockKey)).toBeUndefined();
    // The same boot (a run still going), another node, or a lock without a boot id: waited for, never broken.
    for (const [lock, boot, holder] of [
      [{ holder: 'cp-b', at: Date.now(), boot: 'boot-1' }, 'boot-1', 'cp-b'],
      [{ holder: 'cp-b', at: Date.now(), boot: 'boot-1' }, 'boot-2', 'cp-c'],
      [{ holder: 'cp-b', at: Date.now() }, 'boot-2', 'cp-b'],
    ] as const) {
      const other = await tempStore();
      await other.write(pkiLockKey, JSON.stringify(lock));
      await expect(ensureClusterPki(other, { holder, boot, ...quick })).rejects.toThrow(/timed out waiting for cp-b/);
      expect(JSON.parse(String(await other.read(pkiLockKey)))).toEqual(lock);
    }
  });

  it('creates one bootstrap token, well-formed, stored as a secret', async () => {
    const store = await tempStore();
    const [a, b] = await Promise.all([ensureBootstrapToken(store), ensureBootstrapToken(store)]);
    expect(a).toBe(b);
    expect(a).toMatch(bootstrapTokenRe);
    expect((await fsp.stat(new URL(`${store.url}/secrets/bootstrap-token`))).mode & 0o777).toBe(0o600);
  });
});

describe('cert task', () => {
  const request = { commonName: 'kube-apiserver', dnsNames: ['kubernetes'], ips: ['10.0.0.10'], usages: ['server' as const], validityDays: 90 };

  it('issues a pair with the key 0600, is converged after, and renews at a third of its life', async () => {
    const store = await tempStore();
    const c = taskContext(store);
    await ensureClusterPki(store, { holder: 'cp-a' });
    const h = await host();
    const task = new CertTask({ id: 'apiserver', ca: 'ca', request, output: { kind: 'pem', certPath: '/etc/kubernetes/pki/apiserver.crt', keyPath: '/etc/kubernetes/pki/apiserver.key' } });
    expect(task.diff(await task.observe(h, c))[0]?.field).toBe('issue');
    await task.apply(h, task.diff(await task.observe(h, c)), c);
    expect((await h.fs.stat('/etc/kubernetes/pki/apiserver.key'))?.mode).toBe(0o600);
    expect(task.diff(await task.observe(h, c))).toEqual([]);
    // 59 days later: 31 of 90 days left (> a third): converged. 61 days: renew.
    h.virtualTime = 59 * 86400_000;
    expect(task.diff(await task.observe(h, c))).toEqual([]);
    h.virtualTime = 61 * 86400_000;
    expect(task.diff(await task.observe(h, c)).map((c) => c.field)).toEqual(['renew']);
    await task.apply(h, task.diff(await task.observe(h, c)), c);
    expect(task.diff(await task.observe(h, c))).toEqual([]);
  });

  it('is converged when the config spells an IPv6 SAN another way', async () => {
    const store = await tempStore();
    const c = taskContext(store);
    await ensureClusterPki(store, { holder: 'cp-a' });
    const h = await host();
    const spec = (ips: string[]) => ({ id: 'apiserver', ca: 'ca' as const, request: { ...request, ips }, output: { kind: 'pem' as const, certPath: '/etc/kubernetes/pki/apiserver.crt', keyPath: '/etc/kubernetes/pki/apiserver.key' } });
    const task = new CertTask(spec(['fd00:0:0:0::10']));
    await task.apply(h, task.diff(await task.observe(h, c)), c);
    expect(new CertTask(spec(['FD00::10'])).diff(await task.observe(h, c))).toEqual([]);
    expect(new CertTask(spec(['fd00::11'])).diff(await task.observe(h, c)).map((x) => x.field)).toEqual(['names']);
  });

  it('re-issues when the SANs change or the CA is replaced, and fixes a loose key mode', async () => {
    const store = await tempStore();
    const c = taskContext(store);
    await ensureClusterPki(store, { holder: 'cp-a' });
    const h = await host();
    const output = { kind: 'pem' as const, certPath: '/pki/x.crt', keyPath: '/pki/x.key' };
    const t1 = new CertTask({ id: 'x', ca: 'ca', request, output });
    await t1.apply(h, t1.diff(await t1.observe(h, c)), c);
    const t2 = new CertTask({ id: 'x', ca: 'ca', request: { ...request, ips: ['10.0.0.11'] }, output });
    expect(t2.diff(await t2.observe(h, c)).map((c) => c.field)).toEqual(['names']);
    await h.fs.chmod('/pki/x.key', 0o644);
    expect(t1.diff(await t1.observe(h, c))).toEqual([{ field: 'mode', from: '0644', to: '0600' }]);
    await t1.apply(h, t1.diff(await t1.observe(h, c)), c);
    expect((await h.fs.stat('/pki/x.key'))?.mode).toBe(0o600);
    const other = await createCa('kubernetes');
    await store.write('pki/ca.crt', other.certPem);
    await store.write('pki/ca.key', other.keyPem);
    expect(t1.diff(await t1.observe(h, c)).map((c) => c.field)).toEqual(['issuer']);
  });

  it('writes kubeconfigs 0600 with the CA, the server and a client certificate', async () => {
    const store = await tempStore();
    const c = taskContext(store);
    await ensureClusterPki(store, { holder: 'cp-a' });
    const h = await host();
    const task = new CertTask({
      id: 'kubeconfig-scheduler',
      ca: 'ca',
      request: { commonName: 'system:kube-scheduler', usages: ['client'], validityDays: 365 },
      output: { kind: 'kubeconfig', path: '/etc/kubernetes/scheduler.conf', server: 'https://127.0.0.1:6443', clusterName: 'c1', user: 'system:kube-scheduler' },
    });
    await task.apply(h, task.diff(await task.observe(h, c)), c);
    expect((await h.fs.stat('/etc/kubernetes/scheduler.conf'))?.mode).toBe(0o600);
    const parts = parseKubeconfig(((await h.fs.read('/etc/kubernetes/scheduler.conf')) as Buffer).toString());
    expect(parts.server).toBe('https://127.0.0.1:6443');
    expect(parts.caPem).toBe((await readCa(store, 'ca')).certPem);
    expect(certInfo(parts.certPem as string).extKeyUsages).toEqual(['client']);
    expect(task.diff(await task.observe(h, c))).toEqual([]);
  });
});
