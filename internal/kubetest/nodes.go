package kubetest

import (
	"context"
	"fmt"

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

// Loopback nodes: fake nodes whose pods get addresses of this machine.
const (
	// LoopbackNodeLabel is set to "true" on the loopback nodes; a pod
	// selects them with it in its nodeSelector. Their pod CIDRs are in
	// 127.0.0.0/8 (Linux routes all of it to the loopback interface, so
	// anything can listen there without setup), in the cluster's own
	// loopback range (loopback.go).
	LoopbackNodeLabel = "kubetest.cutover/loopback"
)

// loopbackTaint keeps every pod that does not tolerate it off the loopback
// nodes: pods that a Service selects must not get loopback IPs, which the
// API server refuses in EndpointSlices.
var loopbackTaint = corev1.Taint{Key: LoopbackNodeLabel, Value: "true", Effect: corev1.TaintEffectNoSchedule}

// OnLoopbackNodes makes the pods of tmpl land on the loopback nodes, where
// they get IPs of this machine, in the cluster's LoopbackPrefix, that a
// test can serve them on (ServePods):
// it selects the nodes and tolerates their taint. In a cutover.yaml
// template, the same is
//
//	spec:
//	  nodeSelector: {kubetest.cutover/loopback: "true"}
//	  tolerations: [{key: kubetest.cutover/loopback, operator: Exists, effect: NoSchedule}]
func OnLoopbackNodes(tmpl *corev1.PodTemplateSpec) {
	if tmpl.Spec.NodeSelector == nil {
		tmpl.Spec.NodeSelector = map[string]string{}
	}
	tmpl.Spec.NodeSelector[LoopbackNodeLabel] = "true"
	tmpl.Spec.Tolerations = append(tmpl.Spec.Tolerations, corev1.Toleration{
		Key: loopbackTaint.Key, Operator: corev1.TolerationOpExists, Effect: loopbackTaint.Effect})
}

// createNodes creates n fake nodes for kwok, kwok-node-<i> with the pod CIDR
// 10.244.<i>.0/24, and n loopback nodes, kwok-loopback-<i> with the pod
// CIDR 127.<octet>.<i>.0/24 of a loopback range it reserves, labelled and
// tainted (see OnLoopbackNodes).
func (c *Cluster) createNodes(n int) error {
	var err error
	if c.loopback, err = reserveLoopbackRange(); err != nil {
		return err
	}
	for i := range 2 * n {
		name, cidr := fmt.Sprintf("kwok-node-%d", i), fmt.Sprintf("10.244.%d.0/24", i)
		labels := map[string]string{"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok"}
		var taints []corev1.Taint
		if i >= n {
			name, cidr = fmt.Sprintf("kwok-loopback-%d", i-n), c.loopback.cidr(i-n)
			labels[LoopbackNodeLabel] = "true"
			taints = []corev1.Taint{loopbackTaint}
		}
		labels["kubernetes.io/hostname"] = name
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Annotations: map[string]string{fakeNodeAnnotation: "fake"},
				Labels:      labels,
			},
			Spec: corev1.NodeSpec{PodCIDR: cidr, PodCIDRs: []string{cidr}, Taints: taints},
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
