// X.509 with @peculiar/x509 on Node's WebCrypto: key pairs, CAs, leaf certificates, and reading a
// certificate back (SANs, usages, validity). ECDSA P-256 everywhere: fast to generate, accepted by
// Kubernetes, etcd 3.4+ and Go's TLS. No hand-built DER.
import 'reflect-metadata';
import { webcrypto, X509Certificate as NodeX509, createPrivateKey, createPublicKey } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { AgentError } from '../errors.ts';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const crypto = webcrypto;
x509.cryptoProvider.set(crypto);

const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface KeyPairPem {
  readonly certPem: string;
  readonly keyPem: string;
}

export type Usage = 'server' | 'client';

export interface LeafRequest {
  readonly commonName: string;
  readonly organizations?: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly ips?: readonly string[];
  readonly usages: readonly Usage[];
  readonly validityDays: number;
}

export interface CertInfo {
  readonly subject: string;
  readonly issuer: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly dnsNames: readonly string[];
  readonly ips: readonly string[];
  readonly isCa: boolean;
  readonly extKeyUsages: readonly Usage[];
  /** SHA-256 fingerprint, for "signed by this CA" comparisons. */
  readonly fingerprint: string;
}

/** x509 name strings escape commas; we build names from known-safe parts only. */
function dn(commonName: string, organizations: readonly string[] = []): string {
  const esc = (s: string): string => s.replace(/([,+="\\<>;])/g, '\\$1');
  return [`CN=${esc(commonName)}`, ...organizations.map((o) => `O=${esc(o)}`)].join(', ');
}

function randomSerial(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  b[0] = (b[0] ?? 0) & 0x7f; // positive
  return Buffer.from(b).toString('hex');
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY') + '\n';
}

async function importKeyPem(pem: string): Promise<CryptoKey> {
  try {
    // Node parses every PEM flavour (PKCS#8, SEC1); WebCrypto wants PKCS#8 DER.
    const der = createPrivateKey(pem).export({ format: 'der', type: 'pkcs8' });
    return await crypto.subtle.importKey('pkcs8', der, alg, true, ['sign']);
  } catch (err: unknown) {
    throw new AgentError('PKI', 'cannot read a private key: expected a PEM ECDSA P-256 key', { cause: err });
  }
}

async function newKeys(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(alg, true, ['sign', 'verify']);
}

function pemOf(cert: x509.X509Certificate): string {
  return cert.toString('pem') + '\n';
}

/** A self-signed CA (10 years by default), back-dated an hour for clock skew. */
export async function createCa(commonName: string, validityDays = 3650, now = new Date()): Promise<KeyPairPem> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: dn(commonName),
    notBefore: new Date(now.getTime() - 3600_000),
    notAfter: new Date(now.getTime() + validityDays * 86400_000),
    signingAlgorithm: alg,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: pemOf(cert), keyPem: await exportKeyPem(keys.privateKey) };
}

/** A key pair for signing service-account tokens: private PKCS#8 PEM and public SPKI PEM. */
export async function createKeyPair(): Promise<{ readonly privatePem: string; readonly publicPem: string }> {
  const keys = await newKeys();
  const spki = await crypto.subtle.exportKey('spki', keys.publicKey);
  return { privatePem: await exportKeyPem(keys.privateKey), publicPem: x509.PemConverter.encode(spki, 'PUBLIC KEY') + '\n' };
}

/** Issues a leaf certificate signed by the CA, with a fresh key. */
export async function issueLeaf(ca: KeyPairPem, req: LeafRequest, now = new Date()): Promise<KeyPairPem> {
  let caCert: x509.X509Certificate;
  try {
    caCert = new x509.X509Certificate(ca.certPem);
  } catch (err: unknown) {
    throw new AgentError('PKI', 'cannot read the CA certificate: expected PEM', { cause: err });
  }
  const signingKey = await importKeyPem(ca.keyPem);
  const keys = await newKeys();
  const names: x509.JsonGeneralName[] = [
    ...(req.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(req.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const eku = req.usages.map((u) => (u === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth));
  const notAfter = new Date(Math.min(now.getTime() + req.validityDays * 86400_000, caCert.notAfter.getTime()));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: dn(req.commonName, req.organizations),
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - 300_000),
    notAfter,
    signingAlgorithm: alg,
    publicKey: keys.publicKey,
    signingKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension(eku, false),
      ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names, false)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: pemOf(cert), keyPem: await exportKeyPem(keys.privateKey) };
}

/** Reads the facts a cert task compares. Throws AgentError PKI on bad PEM. */
export function certInfo(pem: string): CertInfo {
  let c: x509.X509Certificate;
  try {
    c = new x509.X509Certificate(pem);
  } catch (err: unknown) {
    throw new AgentError('PKI', 'not a PEM certificate', { cause: err });
  }
  const san = c.getExtension(x509.SubjectAlternativeNameExtension);
  const dnsNames: string[] = [];
  const ips: string[] = [];
  for (const n of san?.names.toJSON() ?? []) {
    if (n.type === 'dns') dnsNames.push(n.value);
    if (n.type === 'ip') ips.push(n.value);
  }
  const ekuExt = c.getExtension(x509.ExtendedKeyUsageExtension);
  const extKeyUsages: Usage[] = [];
  for (const u of ekuExt?.usages ?? []) {
    if (u === x509.ExtendedKeyUsage.serverAuth) extKeyUsages.push('server');
    if (u === x509.ExtendedKeyUsage.clientAuth) extKeyUsages.push('client');
  }
  const bc = c.getExtension(x509.BasicConstraintsExtension);
  return {
    subject: c.subject,
    issuer: c.issuer,
    notBefore: c.notBefore,
    notAfter: c.notAfter,
    dnsNames,
    ips,
    isCa: bc?.ca ?? false,
    extKeyUsages,
    fingerprint: new NodeX509(pem).fingerprint256,
  };
}

/** True when `certPem` was signed by the CA in `caPem` (signature checked). */
export function signedBy(certPem: string, caPem: string): boolean {
  try {
    const cert = new NodeX509(certPem);
    const ca = new NodeX509(caPem);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/** True when the private key belongs to the certificate. */
export function keyMatchesCert(keyPem: string, certPem: string): boolean {
  try {
    const pub = createPublicKey(createPrivateKey(keyPem)).export({ format: 'der', type: 'spki' });
    const certPub = new NodeX509(certPem).publicKey.export({ format: 'der', type: 'spki' });
    return Buffer.compare(pub, certPub) === 0;
  } catch {
    return false;
  }
}
