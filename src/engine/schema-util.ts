// Small zod building blocks shared by every config section.
import { z } from 'zod';
import { cidrProblem, ipProblem, type CidrOptions } from '../engine/net/cidr.ts';

// nodeup parses a config once a run: zod's JIT (a `new Function` per object schema, compiled at its
// first parse) costs more than it saves there (~9 ms of a converged apply's start, issue 17).
z.config({ jitless: true });

export const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a SHA-256: 64 lowercase hex characters');

/**
 * Why `text` is not a URL of one of `schemes` that a client could reach, or undefined: the WHATWG
 * parser (Node's URL) refuses octets above 255 and ports above 65535; http(s) and s3 need a host,
 * port 0 is refused. `label` says what was expected ("an http(s):// URL"). Pure.
 */
export function urlProblem(text: string, schemes: readonly string[], label: string): string | undefined {
  const scheme = /^([a-z0-9]+):\/\//.exec(text)?.[1];
  if (scheme === undefined || !schemes.includes(scheme)) return `expected ${label}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `expected ${label}: this one does not parse (check the host, an IP address's octets, and the port: 1 to 65535)`;
  }
  if (scheme !== 'file' && url.hostname === '') return `expected ${label} with a host after ${scheme}://`;
  if (url.port === '0') return `expected ${label} with a port from 1 to 65535, got port 0`;
  return undefined;
}

export function urlSchema(schemes: readonly string[], label: string): z.ZodString {
  return z.string().superRefine((s, ctx) => {
    const problem = urlProblem(s, schemes, label);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem, input: s });
  });
}

export const Url = urlSchema(['http', 'https', 'file', 's3'], 'an http(s)://, file:// or s3:// URL');
export const HttpUrl = urlSchema(['http', 'https'], 'an http(s):// URL');
export const DnsLabel = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'expected a lowercase DNS label (a-z, 0-9, -)');
/** A Kubernetes node name: a DNS-1123 subdomain (also what keeps it one key under nodes/ in the state store). */
export const NodeName = z
  .string()
  .max(253, 'expected a Kubernetes node name of at most 253 characters')
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'expected a Kubernetes node name: a lowercase DNS subdomain (a-z, 0-9, "-" inside labels, "." between them)');
export const DnsName = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'expected a lowercase DNS name');
/** An IPv4 or IPv6 address, parsed for real (src/engine/net/cidr.ts); the pattern is for editors. */
export const IpAddress = z
  .string()
  .regex(/^[0-9a-fA-F.:]+$/, 'expected an IP address')
  .superRefine((s, ctx) => {
    // The pattern has spoken for text it refuses: one problem per field.
    const problem = /^[0-9a-fA-F.:]+$/.test(s) ? ipProblem(s) : undefined;
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem, input: s });
  });

/** A network in CIDR form (no host bits), parsed for real; the pattern is for editors. */
export function cidrSchema(opts: CidrOptions = {}): z.ZodString {
  return z
    .string()
    .regex(/^[0-9a-f.:]+\/\d{1,3}$/, `expected a CIDR such as ${opts.family === 6 ? 'fd00::/64' : '10.96.0.0/12'}`)
    .superRefine((s, ctx) => {
      // The pattern has spoken for text it refuses: one problem per field.
      const problem = /^[0-9a-f.:]+\/\d{1,3}$/.test(s) ? cidrProblem(s, { network: true, ...opts }) : undefined;
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem, input: s });
    });
}
export const Cidr = cidrSchema();

/**
 * A file mode as a quoted octal string ("0644", "600"). A bare YAML number is refused: YAML reads
 * 644 and 0644 as the decimal 644 (and 0o644 as 420), so a number cannot say which was meant.
 */
export const FileMode = z
  .string({ error: (iss) => (typeof iss.input === 'number' ? 'expected the mode as a quoted octal string such as "0644": a bare YAML number is read as decimal (644 is not 0644)' : 'expected an octal mode such as "0644"') })
  .regex(/^0?[0-7]{3,4}$/, 'expected an octal mode such as "0644"')
  .transform((s) => parseInt(s, 8));
/** A version such as v1.35.4 (the leading v is required). */
export const KubeVersion = z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected a version such as v1.35.4');
/** A bare semantic version such as 2.1.4. */
export const SemVer = z.string().regex(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'expected a version such as 2.1.4');

/** An override of one downloadable asset: where to get it and its hash. */
export const AssetOverride = z.strictObject({
  version: z.string().optional(),
  urls: z.array(Url).min(1),
  sha256: Sha256,
});
export type AssetOverride = z.infer<typeof AssetOverride>;
