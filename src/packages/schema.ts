import { z } from 'zod';

export const PackagesSpec = z.strictObject({
  /** Extra distro packages to install on every node of the group. */
  extra: z.array(z.string().regex(/^[a-z0-9][a-z0-9+.-]*$/, 'expected a package name')).default([]),
  /** Exact versions to install and hold (apt-mark hold / dnf versionlock), by distro package name. */
  pin: z.record(z.string(), z.string()).default({}),
});
export type PackagesSpec = z.infer<typeof PackagesSpec>;
