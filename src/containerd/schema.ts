import { z } from 'zod';
import { HttpUrl, SemVer } from '../engine/schema-util.ts';

/** A value a `configAdditions` entry may set: TOML scalars and arrays of them. */
export const TomlScalar = z.union([z.string(), z.number(), z.boolean()]);
export const TomlAddition = z.union([TomlScalar, z.array(TomlScalar)]);
export type TomlAddition = z.infer<typeof TomlAddition>;

/** A registry host as containerd's certs.d names it: host[:port], or "*" for every registry. */
const RegistryHost = z
  .string()
  .regex(/^(\*|[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:\d{1,5})?)$/, 'expected a registry host such as docker.io or registry.k8s.io:443, or "*"');

/** An image reference such as registry.k8s.io/pause:3.10.1 or name@sha256:<hex>. */
export const ImageRef = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._\-/:]*(@sha256:[0-9a-f]{64})?$/, 'expected an image reference such as registry.k8s.io/pause:3.10.1');

export const ContainerdSpec = z
  .strictObject({
    /**
     * Defaults to the versions table's containerd for the Kubernetes minor. With `source: distro` it
     * is required: the version of the distro's package, so config.toml is rendered in the schema that
     * version expects (version 2 for 1.x, version 3 for 2.x).
     */
    version: SemVer.optional(),
    /** `release`: official archive (verified by hash); `distro`: the distro's package. */
    source: z.enum(['release', 'distro']).default('release'),
    /** The distro package to install when `source: distro`. */
    packageName: z.string().regex(/^[a-z0-9][a-z0-9+.-]*$/, 'expected a package name').default('containerd'),
    /** Overrides the pinned sandbox (pause) image; default registry.k8s.io/pause:<the minor's pause version>. */
    sandboxImage: ImageRef.optional(),
    /**
     * Registry -> mirror endpoints, in priority order ("*" for every registry). Each registry gets
     * /etc/containerd/certs.d/<registry>/hosts.toml ("*" maps to _default); containerd reads these
     * on every pull, so a mirror change needs no restart.
     */
    registryMirrors: z.record(RegistryHost, z.array(HttpUrl).min(1)).default({}),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
    /** An extra `nvidia` runtime (nvidia-container-runtime must be installed on the image). */
    nvidia: z
      .strictObject({
        enabled: z.boolean().default(false),
        binaryName: z.string().startsWith('/', 'expected an absolute path').default('/usr/bin/nvidia-container-runtime'),
        /** Make it the default runtime (otherwise pods pick it with a RuntimeClass named nvidia). */
        default: z.boolean().default(false),
      })
      .prefault({}),
    /**
     * Settings merged into config.toml: dotted TOML path -> value, e.g.
     * `plugins."io.containerd.cri.v1.runtime".enable_cdi: true`. Paths use the schema of the
     * installed containerd (version 3 for 2.x, version 2 for 1.x).
     */
    configAdditions: z.record(z.string().min(1), TomlAddition).default({}),
    /**
     * Drop-in files nodeup writes to /etc/containerd/conf.d/<name>.toml (config.toml imports
     * conf.d/*.toml). Files users put there themselves are left alone.
     */
    dropIns: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'expected a drop-in name such as 50-gpu (no .toml)'), z.string()).default({}),
  })
  .superRefine((spec, ctx) => {
    if (spec.source === 'distro' && spec.version === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['version'],
        message: "required when source is distro: set it to the version of the distro's containerd package (e.g. 1.7.24) so config.toml uses the schema it reads",
      });
    }
    for (const key of Object.keys(spec.configAdditions)) {
      if (!isDottedPath(key)) {
        ctx.addIssue({
          code: 'custom',
          path: ['configAdditions', key],
          message: 'expected a dotted TOML path such as plugins."io.containerd.cri.v1.runtime".enable_cdi',
        });
      }
    }
  });
export type ContainerdSpec = z.infer<typeof ContainerdSpec>;

/** Splits `a."b.c".d` into ["a", "b.c", "d"]; undefined when the path is malformed. Pure. */
export function splitDottedPath(p: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  while (i < p.length) {
    if (p[i] === '"') {
      const end = p.indexOf('"', i + 1);
      if (end < 0) return undefined;
      out.push(p.slice(i + 1, end));
      i = end + 1;
    } else {
      const m = /^[A-Za-z0-9_-]+/.exec(p.slice(i));
      if (!m) return undefined;
      out.push(m[0]);
      i += m[0].length;
    }
    if (i === p.length) break;
    if (p[i] !== '.') return undefined;
    i++;
    if (i === p.length) return undefined;
  }
  return out.length > 0 ? out : undefined;
}

function isDottedPath(p: string): boolean {
  return splitDottedPath(p) !== undefined;
}
