// Control-plane files other components order against or read (addons waits for the API server's
// static pod and uses the admin kubeconfig); the controlplane component writes them.
export const manifestDir = '/etc/kubernetes/manifests';
export const adminKubeconfig = '/etc/kubernetes/admin.conf';
