import { z } from 'zod';

export const EtcdSpec = z.strictObject({
  clusters: z.array(z.enum(['main', 'events'])).default(['main', 'events']),
});
export type EtcdSpec = z.infer<typeof EtcdSpec>;
