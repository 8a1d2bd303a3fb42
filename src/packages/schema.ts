import { z } from 'zod';

const PackageName = z.string().regex(/^[a-z0-9][a-z0-9+._-]*$/, 'expected a distro package name such as "jq"');

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
});
export type PackagesSpec = z.infer<typeof PackagesSpec>;
