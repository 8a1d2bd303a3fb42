// kube-proxy's files. Control planes: a client pair issued by the control-plane PKI tasks (CN
// system:kube-proxy, which Kubernetes binds to the system:node-proxier role). Workers have no CA key
// and no such pair: kube-proxy uses the node's own rotating kubelet client certificate, which needs
// a ClusterRoleBinding of system:node-proxier to the group system:nodes (see docs/kubelet.md).
export const kubeProxyDir = '/var/lib/kube-proxy';
export const kubeProxyConfigPath = '/var/lib/kube-proxy/config.conf';
export const kubeProxyKubeconfigPath = '/var/lib/kube-proxy/kubeconfig';
export const kubeProxyManifestPath = '/etc/kubernetes/manifests/kube-proxy.yaml';
export const kubeProxyCertPath = '/etc/kubernetes/pki/kube-proxy.crt';
export const kubeProxyKeyPath = '/etc/kubernetes/pki/kube-proxy.key';
/** Workers: kubelet's current client certificate and key (one PEM file, rotated by kubelet). */
export const kubeletClientCurrentPath = '/var/lib/kubelet/pki/kubelet-client-current.pem';
export const kubeletPkiDir = '/var/lib/kubelet/pki';
