import { z } from 'zod';

export const KubeletSpec = z.strictObject({
  maxPods: z.number().int().positive().default(110),
  clusterDomain: z.string().default('cluster.local'),
  nodeLabels: z.record(z.string(), z.string()).default({}),
});
export type KubeletSpec = z.infer<typeof KubeletSpec>;
