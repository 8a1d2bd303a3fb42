// Why nodeup does not restart etcd when it renews etcd's leaf certificates: etcd (since 3.2) reads
// its certificate and key files again for every new TLS connection, on the client and the peer
// port. Checked here with real etcd processes (3.6 built from the Go module proxy, Debian's 3.4):
// the serving certificates are renewed on disk the way nodeup's PKI tasks write them (a new file
// renamed over the old one, same CA), and the next connection is served with the new certificate
// while the member keeps its data and keeps serving. A CA change is different (etcd keeps the trust
// bundle it started with); nodeup never rotates a CA by itself. Needs scripts/setup-etcd.sh.
import { X509Certificate } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueLeaf } from '../../src/engine/pki/x509.ts';
import { debianEtcd, etcd36, EtcdWorld, writeKeys, type EtcdBinaries, type TestNode } from './etcd-harness.ts';

const binaries: [string, () => EtcdBinaries][] = [
  ['etcd 3.6', etcd36],
  ['etcd 3.4', debianEtcd],
];

/** The serial of the certificate a fresh TLS connection to `url` is served with. */
async function servedSerial(url: string, ca: string, cert: string, key: string): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: u.hostname, port: Number(u.port), ca, cert, key, servername: 'localhost' }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolve(serial.toUpperCase());
    });
    socket.once('error', reject);
  });
}

/** Writes a file the way nodeup's tasks do: a temporary file renamed over the target. */
async function replaceFile(target: string, data: string, mode: number): Promise<void> {
  const tmp = `${target}.tmp-${process.pid}`;
  await fsp.writeFile(tmp, data, { mode });
  await fsp.rename(tmp, target);
}

const serialOf = (pem: string): string => new X509Certificate(pem).serialNumber.toUpperCase();

describe.each(binaries)('%s: renewed leaf certificates are served without a restart', (_label, pick) => {
  let world: EtcdWorld;
  let node: TestNode;

  beforeAll(async () => {
    world = await EtcdWorld.create(pick());
    node = await world.newNode('node-a');
    expect((await world.join(node)).action).toBe('created');
    await writeKeys(world.clusterClient(), '/keep/', 100);
  });
  afterAll(async () => {
    await world?.dispose();
  });

  it('a new client and peer connection gets the renewed certificate; the same process keeps serving every key', async () => {
    const p = world.pki;
    const ca = p.ca.certPem;
    const peerCa = p.peerCa.certPem;
    const before = {
      client: await servedSerial(node.self.clientUrl, ca, p.clientTls.cert, p.clientTls.key),
      peer: await servedSerial(node.self.peerUrl, peerCa, await fsp.readFile(p.tlsPaths.peerCert, 'utf8'), await fsp.readFile(p.tlsPaths.peerKey, 'utf8')),
    };
    expect(before.client).toBe(serialOf(await fsp.readFile(p.tlsPaths.serverCert, 'utf8')));
    const pid = node.proc?.pid;

    const names = { dnsNames: ['localhost'], ips: ['127.0.0.1'] };
    const server = await issueLeaf(p.ca, { commonName: 'etcd-server', ...names, usages: ['server', 'client'], validityDays: 30 });
    const peer = await issueLeaf(p.peerCa, { commonName: 'etcd-peer', ...names, usages: ['server', 'client'], validityDays: 30 });
    await replaceFile(p.tlsPaths.serverKey, server.keyPem, 0o600);
    await replaceFile(p.tlsPaths.serverCert, server.certPem, 0o644);
    await replaceFile(p.tlsPaths.peerKey, peer.keyPem, 0o600);
    await replaceFile(p.tlsPaths.peerCert, peer.certPem, 0o644);

    const after = {
      client: await servedSerial(node.self.clientUrl, ca, p.clientTls.cert, p.clientTls.key),
      peer: await servedSerial(node.self.peerUrl, peerCa, peer.certPem, peer.keyPem),
    };
    expect(after.client).toBe(serialOf(server.certPem));
    expect(after.peer).toBe(serialOf(peer.certPem));
    expect(after.client).not.toBe(before.client);
    expect(after.peer).not.toBe(before.peer);
    expect(node.proc?.pid).toBe(pid);
    expect(node.proc?.running).toBe(true);
    expect(await world.client([node.self.clientUrl]).count('/keep/')).toBe(100);
  });
});
