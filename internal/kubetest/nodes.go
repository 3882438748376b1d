package kubetest

import (
	"context"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// fakeNodeAnnotation marks the nodes kwok plays (with the value "fake").
	fakeNodeAnnotation = "kwok.x-k8s.io/node"
	// HoldAnnotation on a pod (put it in a pod template's annotations)
	// keeps kwok from making the pod Running and Ready: it stays Pending on
	// its node, and the test writes its status (a crash loop, an image pull
	// error) with UpdateStatus.
	HoldAnnotation = "kubetest.cutover/hold"
	// defaultPodCIDR is kwok's pool for pods on a node without a pod CIDR;
	// every node Start creates has one.
	defaultPodCIDR = "10.244.255.0/24"
	// nodeIP is the fake nodes' InternalIP, and so their pods' hostIP.
	nodeIP = "10.243.0.1"
)

// createNodes creates n fake nodes for kwok, kwok-node-<i> with the pod CIDR
// 10.244.<i>.0/24.
func (c *Cluster) createNodes(n int) error {
	for i := range n {
		name := fmt.Sprintf("kwok-node-%d", i)
		cidr := fmt.Sprintf("10.244.%d.0/24", i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Annotations: map[string]string{fakeNodeAnnotation: "fake"},
				Labels: map[string]string{
					"kubernetes.io/hostname": name,
					"kubernetes.io/os":       "linux",
					"kubernetes.io/arch":     "amd64",
					"type":                   "kwok",
				},
			},
			Spec: corev1.NodeSpec{PodCIDR: cidr, PodCIDRs: []string{cidr}},
		}
		if _, err := c.Client.CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create fake node %s: %w", name, err)
		}
		c.Nodes = append(c.Nodes, name)
	}
	return nil
}

func nodeReady(node *corev1.Node) bool {
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// LoopbackIP maps a pod IP that kwok gave (10.a.b.c) to the address of this
// machine where a test runs that pod's app (127.a.b.c). Linux routes all of
// 127.0.0.0/8 to the loopback interface, so a server can listen on it
// without any setup.
func LoopbackIP(podIP string) (string, error) {
	addr, err := netip.ParseAddr(podIP)
	if err != nil {
		return "", fmt.Errorf("pod IP %q: %w", podIP, err)
	}
	if !addr.Is4() || addr.As4()[0] != 10 {
		return "", fmt.Errorf("pod IP %s is not one kwok gives in this cluster (10.0.0.0/8)", podIP)
	}
	b := addr.As4()
	b[0] = 127
	return netip.AddrFrom4(b).String(), nil
}
