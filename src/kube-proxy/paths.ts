// kube-proxy's files. The client certificate pair is issued by the PKI tasks (CN system:kube-proxy,
// bound to the system:node-proxier role); kube-proxy reads it through its kubeconfig.
export const kubeProxyDir = '/var/lib/kube-proxy';
export const kubeProxyConfigPath = '/var/lib/kube-proxy/config.conf';
export const kubeProxyKubeconfigPath = '/var/lib/kube-proxy/kubeconfig';
export const kubeProxyManifestPath = '/etc/kubernetes/manifests/kube-proxy.yaml';
export const kubeProxyCertPath = '/etc/kubernetes/pki/kube-proxy.crt';
export const kubeProxyKeyPath = '/etc/kubernetes/pki/kube-proxy.key';
