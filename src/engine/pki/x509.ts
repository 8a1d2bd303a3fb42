// X.509: issuing with @peculiar/x509 on Node's WebCrypto (key pairs, CAs, leaf certificates);
// reading a certificate back (SANs, usages, validity) with Node's own X509Certificate. ECDSA P-256
// everywhere: fast to generate, accepted by Kubernetes, etcd 3.4+ and Go's TLS. No hand-built DER.
// @peculiar/x509 (with reflect-metadata) is loaded only when a certificate is issued: evaluating it
// costs ~40 ms, and a converged run only reads certificates (issue 17).
import { webcrypto, X509Certificate as NodeX509, KeyObject, createPrivateKey, createPublicKey } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type * as X509 from '@peculiar/x509';
import { AgentError } from '../errors.ts';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const crypto = webcrypto;

let loaded: Promise<typeof X509> | undefined;
/** @peculiar/x509, evaluated on first use and bound to Node's WebCrypto. */
function peculiar(): Promise<typeof X509> {
  loaded ??= (async () => {
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(crypto);
    return x509;
  })();
  return loaded;
}

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

function exportKeyPem(key: CryptoKey): string {
  return String(KeyObject.from(key).export({ format: 'pem', type: 'pkcs8' }));
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

function pemOf(cert: X509.X509Certificate): string {
  return cert.toString('pem') + '\n';
}

/** A self-signed CA (10 years by default), back-dated an hour for clock skew. */
export async function createCa(commonName: string, validityDays = 3650, now = new Date()): Promise<KeyPairPem> {
  const x509 = await peculiar();
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
  return { certPem: pemOf(cert), keyPem: exportKeyPem(keys.privateKey) };
}

/** A key pair for signing service-account tokens: private PKCS#8 PEM and public SPKI PEM. */
export async function createKeyPair(): Promise<{ readonly privatePem: string; readonly publicPem: string }> {
  const keys = await newKeys();
  return { privatePem: exportKeyPem(keys.privateKey), publicPem: String(KeyObject.from(keys.publicKey).export({ format: 'pem', type: 'spki' })) };
}

/** Issues a leaf certificate signed by the CA, with a fresh key. */
export async function issueLeaf(ca: KeyPairPem, req: LeafRequest, now = new Date()): Promise<KeyPairPem> {
  const x509 = await peculiar();
  let caCert: X509.X509Certificate;
  try {
    caCert = new x509.X509Certificate(ca.certPem);
  } catch (err: unknown) {
    throw new AgentError('PKI', 'cannot read the CA certificate: expected PEM', { cause: err });
  }
  const signingKey = await importKeyPem(ca.keyPem);
  const keys = await newKeys();
  const names: X509.JsonGeneralName[] = [
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
  return { certPem: pemOf(cert), keyPem: exportKeyPem(keys.privateKey) };
}

/** Reads the facts a cert task compares. Throws AgentError PKI on bad PEM. */
export function certInfo(pem: string): CertInfo {
  let c: NodeX509;
  try {
    c = new NodeX509(pem);
  } catch (err: unknown) {
    throw new AgentError('PKI', 'not a PEM certificate', { cause: err });
  }
  const dnsNames: string[] = [];
  const ips: string[] = [];
  // "DNS:a, IP Address:10.0.0.1, IP Address:FD00:0:0:0:0:0:0:1" (values with a comma come quoted;
  // names and addresses have none).
  for (const entry of c.subjectAltName?.split(', ') ?? []) {
    const at = entry.indexOf(':');
    const [type, value] = [entry.slice(0, at), entry.slice(at + 1)];
    if (type === 'DNS') dnsNames.push(value);
    if (type === 'IP Address') ips.push(canonicalIp(value));
  }
  const extKeyUsages: Usage[] = [];
  for (const oid of c.keyUsage ?? []) {
    if (oid === serverAuth) extKeyUsages.push('server');
    if (oid === clientAuth) extKeyUsages.push('client');
  }
  return {
    subject: c.subject.split('\n').join(', '),
    issuer: c.issuer.split('\n').join(', '),
    notBefore: c.validFromDate,
    notAfter: c.validToDate,
    dnsNames,
    ips,
    isCa: c.ca,
    extKeyUsages,
    fingerprint: c.fingerprint256,
  };
}

/** Extended key usage OIDs (RFC 5280 4.2.1.12); Node's X509Certificate.keyUsage lists these. */
const serverAuth = '1.3.6.1.5.5.7.3.1';
const clientAuth = '1.3.6.1.5.5.7.3.2';

/**
 * An IP address in one spelling, so a certificate's SAN and a config's address compare equal:
 * IPv4 as is, IPv6 in RFC 5952 form (lower case, no leading zeros, the first longest run of two
 * or more zero groups as "::"). Anything else comes back unchanged.
 */
export function canonicalIp(ip: string): string {
  if (!isIPv6(ip) || ip.includes('.')) return ip.toLowerCase();
  const [head = '', tail] = ip.toLowerCase().split('::');
  const part = (s: string | undefined): string[] => (s ? s.split(':') : []);
  const left = part(head);
  const right = part(tail);
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const g = groups.map((x) => x.replace(/^0+(?=.)/, ''));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && g[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  if (best < 0) return g.join(':');
  return `${g.slice(0, best).join(':')}::${g.slice(best + bestLen).join(':')}`;
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
