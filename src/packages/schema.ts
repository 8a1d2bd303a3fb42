import { z } from 'zod';

const PackageName = z.string().regex(/^[a-z0-9][a-z0-9+._-]*$/, 'expected a distro package name such as "jq"');

/** A package repository nodeup writes before it installs (repositories.ts): a site's local mirror. */
export const RepositorySpec = z.strictObject({
  /** Names its files (nodeup-<name>.sources / .repo) and its dnf repo id (nodeup-<name>). */
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected a short name of lowercase letters, digits and dashes such as "site-mirror"'),
  /** The repository's base URL (apt URIs, dnf baseurl; dnf's $releasever and $basearch are kept). */
  url: z.string().regex(/^(https?|file):\/\/\S+$/, 'expected an http://, https:// or file:// URL'),
  /** apt only: the suites ([bookworm, bookworm-updates]), or ["./"] for a flat repository. */
  suites: z.array(z.string().regex(/^[A-Za-z0-9._/-]+$/, 'expected a suite such as "bookworm" or "./"')).default([]),
  /** apt only: the components ([main]); none for a flat repository. */
  components: z.array(z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected a component such as "main"')).default([]),
  /** The repository's OpenPGP signing key, ASCII-armored (apt Signed-By, dnf gpgkey). */
  key: z.string().regex(/-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]+-----END PGP PUBLIC KEY BLOCK-----/, 'expected an ASCII-armored OpenPGP public key (-----BEGIN PGP PUBLIC KEY BLOCK----- ... -----END PGP PUBLIC KEY BLOCK-----)').optional(),
  /** An unsigned repository: packages are installed from it without a signature check. Say so explicitly. */
  trusted: z.boolean().default(false),
});
export type RepositorySpec = z.infer<typeof RepositorySpec>;

export const PackagesSpec = z.strictObject({
  /** Extra distro packages (this distro's names) to install on every node of the group. */
  extra: z.array(PackageName).default([]),
  /**
   * Exact versions to install and hold (apt-mark hold / dnf versionlock), by distro package name:
   * the apt version ("1.8.9-2") or the rpm version-release ("1.8.10-11.el9"). A pinned package is
   * installed even when it is neither a base nor an extra package.
   */
  pin: z.record(PackageName, z.string().regex(/^[A-Za-z0-9.+:~_-]+$/, 'expected a package version such as "1.8.9-2"')).default({}),
  /** How long to wait for a package-manager lock (unattended-upgrades, cloud-init's apt) before failing. */
  lockTimeoutSeconds: z.number().int().positive().default(600),
  /** apt: package lists younger than this are fresh enough to install from without `apt-get update`. */
  listsMaxAgeSeconds: z.number().int().nonnegative().default(3600),
  /** Attempts for a package-manager command that fails on a transient mirror error. */
  attempts: z.number().int().min(1).max(10).default(4),
  /** Repositories written before the install (for example a site's mirror of the distro's). */
  repositories: z.array(RepositorySpec).default([]),
  /** nodeup's own apt and dnf commands read only spec.packages.repositories (air-gapped nodes whose default sources are out of reach). */
  onlyRepositories: z.boolean().default(false),
}).superRefine((spec, ctx) => {
  const seen = new Set<string>();
  spec.repositories.forEach((r, i) => {
    if (seen.has(r.name)) ctx.addIssue({ code: 'custom', path: ['repositories', i, 'name'], message: `repository ${r.name} is named twice` });
    seen.add(r.name);
    if (r.key === undefined && !r.trusted) {
      ctx.addIssue({ code: 'custom', path: ['repositories', i, 'key'], message: `repository ${r.name} needs its signing key (key: the armored public key), or trusted: true to install from it unsigned` });
    }
    if (r.key !== undefined && r.trusted) ctx.addIssue({ code: 'custom', path: ['repositories', i, 'trusted'], message: `repository ${r.name} has a key: trusted: true would skip its signature check; remove one` });
  });
  if (spec.onlyRepositories && spec.repositories.length === 0) {
    ctx.addIssue({ code: 'custom', path: ['onlyRepositories'], message: 'onlyRepositories needs at least one entry in spec.packages.repositories' });
  }
});
export type PackagesSpec = z.infer<typeof PackagesSpec>;
