// Where kubelet's files live (kubeadm's layout), and the keys other components may order against.
import type { TaskKey } from '../../engine/task.ts';

export const kubeletUnitName = 'kubelet.service';
export const kubeletUnitKey: TaskKey = `unit:${kubeletUnitName}`;
export const kubeletDir = '/var/lib/kubelet';
export const kubeletConfigPath = '/var/lib/kubelet/config.yaml';
/** Node-specific flags (name, labels, kubeconfigs): read by the unit through EnvironmentFile. */
export const kubeletFlagsPath = '/var/lib/kubelet/kubelet-flags.env';
export const kubeletCertDir = '/var/lib/kubelet/pki';
/** The kubeconfig kubelet uses: written by nodeup on control planes, by kubelet itself after TLS bootstrap on workers. */
export const kubeletKubeconfigPath = '/etc/kubernetes/kubelet.conf';
export const bootstrapKubeconfigPath = '/etc/kubernetes/bootstrap-kubelet.conf';
export const pkiDir = '/etc/kubernetes/pki';
export const caCertPath = '/etc/kubernetes/pki/ca.crt';
/** Control planes: kubelet's client certificate, issued by the PKI tasks. */
export const kubeletClientCertPath = '/etc/kubernetes/pki/kubelet-client.crt';
export const kubeletClientKeyPath = '/etc/kubernetes/pki/kubelet-client.key';
export const staticPodDir = '/etc/kubernetes/manifests';
