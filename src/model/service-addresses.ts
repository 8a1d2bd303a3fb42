// The cluster DNS address every component agrees on: kubelet's clusterDNS and CoreDNS's Service
// ClusterIP come from this one rule (spec.kubelet.clusterDNS, else the 10th address of
// spec.networking.serviceCIDR, kubeadm's convention). Layer: model.
import { AgentError } from '../engine/errors.ts';
import { nthAddress } from '../engine/net/cidr.ts';

/** The 10th address of the service CIDR (IPv4 or IPv6); refuses, naming the field to set, a range too small for it. Pure. */
export function defaultClusterDnsIp(serviceCidr: string): string {
  const ip = nthAddress(serviceCidr, 10);
  if (ip === undefined) {
    throw new AgentError('CONFIG_INVALID', `spec.kubelet.clusterDNS: cannot derive it from networking.serviceCIDR ${serviceCidr} (a network of at least 16 addresses): set spec.kubelet.clusterDNS`, {
      details: { field: 'spec.kubelet.clusterDNS', serviceCIDR: serviceCidr },
    });
  }
  return ip;
}

/** The cluster DNS servers pods get: spec.kubelet.clusterDNS, else [the 10th service address]; the first is CoreDNS's ClusterIP. Pure. */
export function clusterDnsIps(spec: { readonly kubelet: { readonly clusterDNS?: readonly string[] | undefined }; readonly networking: { readonly serviceCIDR: string } }): readonly [string, ...string[]] {
  const [first, ...rest] = spec.kubelet.clusterDNS ?? [];
  return [first ?? defaultClusterDnsIp(spec.networking.serviceCIDR), ...rest];
}
