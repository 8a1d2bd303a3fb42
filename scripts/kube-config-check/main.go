// kube-config-check decodes a rendered file strictly with the upstream Go types of one Kubernetes
// release (unknown or misspelled fields and wrong types are errors), so nodeup's goldens are checked
// by the real API packages, not by our own reading of them.
//
// Usage: kube-config-check kubelet|kube-proxy|pod FILE
package main

import (
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"
)

func check(kind string, data []byte) error {
	switch kind {
	case "kubelet":
		var c kubeletv1beta1.KubeletConfiguration
		if err := yaml.UnmarshalStrict(data, &c); err != nil {
			return err
		}
		if c.APIVersion != "kubelet.config.k8s.io/v1beta1" || c.Kind != "KubeletConfiguration" {
			return fmt.Errorf("unexpected apiVersion/kind %s/%s", c.APIVersion, c.Kind)
		}
	case "kube-proxy":
		var c kubeproxyv1alpha1.KubeProxyConfiguration
		if err := yaml.UnmarshalStrict(data, &c); err != nil {
			return err
		}
		if c.APIVersion != "kubeproxy.config.k8s.io/v1alpha1" || c.Kind != "KubeProxyConfiguration" {
			return fmt.Errorf("unexpected apiVersion/kind %s/%s", c.APIVersion, c.Kind)
		}
		if c.Mode != "nftables" && c.Mode != "iptables" {
			return fmt.Errorf("unexpected mode %q", c.Mode)
		}
	case "pod":
		var p corev1.Pod
		if err := yaml.UnmarshalStrict(data, &p); err != nil {
			return err
		}
		if p.APIVersion != "v1" || p.Kind != "Pod" || len(p.Spec.Containers) == 0 {
			return fmt.Errorf("not a pod with containers")
		}
	default:
		return fmt.Errorf("unknown kind %q (want kubelet, kube-proxy or pod)", kind)
	}
	return nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: kube-config-check kubelet|kube-proxy|pod FILE")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := check(os.Args[1], data); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[2], err)
		os.Exit(1)
	}
	fmt.Println("ok")
}
