import { z } from 'zod';
import { Sha256, Url } from '../engine/schema-util.ts';

/** An image reference such as registry.k8s.io/pause:3.10.1 (tag or digest required). */
export const ImageName = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9._-]*(\.[a-z0-9._-]+|:\d+)?(\/[a-z0-9._-]+)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$/,
    'expected a full image reference with a tag or digest, such as registry.k8s.io/pause:3.10.1',
  );

export const ImageArchive = z.strictObject({
  /**
   * The image reference the archive holds, as containerd will name it: docker archives name it in
   * manifest.json (RepoTags, normalized: pause:3.10 -> docker.io/library/pause:3.10), OCI archives
   * in the org.opencontainers.image.ref.name annotation (a full reference).
   */
  name: ImageName,
  urls: z.array(Url).min(1),
  /** SHA-256 of the archive file (plain tar or zstd-compressed tar). */
  sha256: Sha256,
});
export type ImageArchive = z.infer<typeof ImageArchive>;

export const ImagesSpec = z.strictObject({
  /** Image archives (docker or OCI tarballs, plain or zstd) imported into containerd's k8s.io namespace. */
  archives: z.array(ImageArchive).default([]),
  /** Images pulled (through containerd's CRI, so registry mirrors apply) on every apply and bake. */
  prePull: z.array(ImageName).default([]),
  /**
   * In `nodeup bake`: also pull the images this role runs (control plane: kube-apiserver,
   * kube-controller-manager, kube-scheduler, etcd, coredns; every node: pause, kube-proxy), so a
   * node from the baked image starts without a registry.
   */
  bakeRoleImages: z.boolean().default(true),
}).superRefine((spec, ctx) => {
  const seen = new Set<string>();
  spec.archives.forEach((a, i) => {
    if (seen.has(a.name)) ctx.addIssue({ code: 'custom', path: ['archives', i, 'name'], message: `${a.name} is listed twice: one archive per image` });
    seen.add(a.name);
  });
});
export type ImagesSpec = z.infer<typeof ImagesSpec>;
