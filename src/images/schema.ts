import { z } from 'zod';
import { Sha256, Url } from '../agent/schema-util.ts';

export const ImageArchive = z.strictObject({
  /** The image reference the archive holds, e.g. registry.k8s.io/pause:3.10.1. */
  name: z.string().min(1),
  urls: z.array(Url).min(1),
  sha256: Sha256,
});

export const ImagesSpec = z.strictObject({
  /** Image archives (docker or OCI tarballs, plain or zstd) imported into containerd's k8s.io namespace. */
  archives: z.array(ImageArchive).default([]),
});
export type ImagesSpec = z.infer<typeof ImagesSpec>;
