// Small zod building blocks shared by every config section.
import { z } from 'zod';

export const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a SHA-256: 64 lowercase hex characters');
export const Url = z.string().refine((s) => /^(https?|file|s3):\/\//.test(s), 'expected an http(s)://, file:// or s3:// URL');
export const HttpUrl = z.string().refine((s) => /^https?:\/\//.test(s), 'expected an http(s):// URL');
export const DnsLabel = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'expected a lowercase DNS label (a-z, 0-9, -)');
export const DnsName = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'expected a lowercase DNS name');
export const Ipv4 = z.string().regex(/^(\d{1,3})(\.\d{1,3}){3}$/, 'expected an IPv4 address');
export const Cidr = z.string().regex(/^[0-9a-f.:]+\/\d{1,3}$/, 'expected a CIDR such as 10.96.0.0/12');
export const FileMode = z.union([
  z.number().int().min(0).max(0o7777),
  z.string().regex(/^0?[0-7]{3,4}$/, 'expected an octal mode such as "0644"').transform((s) => parseInt(s, 8)),
]);
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
