import { z } from 'zod';
import { HttpUrl, SemVer } from '../agent/schema-util.ts';

export const ContainerdSpec = z.strictObject({
  /** Defaults to the versions table's containerd for the Kubernetes minor. */
  version: SemVer.optional(),
  /** `release`: official archive (verified by hash); `distro`: the distro's package. */
  source: z.enum(['release', 'distro']).default('release'),
  /** Registry -> mirror endpoints, in priority order ("*" for every registry). */
  registryMirrors: z.record(z.string(), z.array(HttpUrl).min(1)).default({}),
});
export type ContainerdSpec = z.infer<typeof ContainerdSpec>;
