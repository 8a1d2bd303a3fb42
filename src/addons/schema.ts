// spec.addons: the cluster objects a control plane keeps in the API server so workers can join
// (bootstrap token Secret, TLS-bootstrap RBAC) and, optionally, CoreDNS.
import { z } from 'zod';

const Registry = z
  .string()
  .regex(/^[a-z0-9.-]+(:\d+)?(\/[a-z0-9._-]+)*$/, 'expected a registry such as registry.k8s.io or mirror.example.com:5000/k8s');

export const CorednsSpec = z.strictObject({
  /** Deploy CoreDNS (Deployment + Service kube-dns at the 10th address of the service CIDR). */
  enabled: z.boolean().default(true),
  /** Where the image comes from; the image is `<registry>/coredns/coredns:<version>`. Default: spec.controlPlane.imageRegistry. */
  imageRegistry: Registry.optional(),
  /** Default: the CoreDNS version paired with the Kubernetes minor (src/model/assets/versions.ts). */
  version: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected a version such as v1.12.1').optional(),
  replicas: z.number().int().min(1).max(10).default(2),
});

export const AddonsSpec = z.strictObject({
  /** Bind system:node-proxier to the group system:nodes: workers' kube-proxy uses the kubelet's client certificate. */
  nodeProxierForNodes: z.boolean().default(true),
  coredns: CorednsSpec.prefault({}),
});
export type AddonsSpec = z.infer<typeof AddonsSpec>;
