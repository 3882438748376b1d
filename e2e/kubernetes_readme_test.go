package e2e

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/cutover/cutover/internal/kubetest"
)

// The README's Kubernetes section is what users copy: its Services, made
// as its `kubectl create service` commands make them, and its config, with
// only the kubeconfig and the two listen addresses changed, must validate,
// deploy v2 and roll back on a real control plane, in the namespace it
// names.
func TestKubernetesReadmeExampleWorksAsWritten(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, found := strings.Cut(string(readme), "\n## Kubernetes\n")
	if !found {
		t.Fatal("README.md has no section ## Kubernetes")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindStringSubmatch(section)
	if m == nil {
		t.Fatal("the README's Kubernetes section has no yaml example")
	}

	c := kubetest.Start(t)
	s := newSetup(t)
	example := m[1]
	for _, r := range []struct{ old, new string }{
		{`admin: {listen: "127.0.0.1:9901"}`, fmt.Sprintf("admin: {listen: %q}", s.Admin)},
		{"listen: 127.0.0.1:8080", "listen: " + s.Listen},
		{"kubeconfig: /home/me/.kube/config", "kubeconfig: " + c.Kubeconfig},
	} {
		if !strings.Contains(example, r.old) {
			t.Fatalf("the README's Kubernetes example no longer has %q; update what this test replaces:\n%s", r.old, example)
		}
		example = strings.Replace(example, r.old, r.new, 1)
	}
	if err := os.WriteFile(s.configPath(), []byte(example), 0o644); err != nil {
		t.Fatal(err)
	}
	s.mustCLI(t, "validate", "-c", s.configPath())

	ns := "default"
	ctx := context.Background()
	kubetest.WaitFor(t, time.Minute, func() (bool, error) {
		_, err := c.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	svcs := readmeServices(t, section)
	if len(svcs) != 2 {
		t.Fatalf("the README's Kubernetes section should say how to create the two Services with `kubectl create service clusterip`; found %d", len(svcs))
	}
	for _, svc := range svcs {
		if _, err := c.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	s.serve(t)
	const replicas = 3 // the example's
	onlySlot := func(slot string) (bool, error) {
		svc, err := c.Client.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil || svc.Spec.Selector["cutover.dev/slot"] != slot {
			return false, err
		}
		pods := c.EndpointPods(t, ns, "web")
		for _, p := range pods {
			if !strings.HasPrefix(p, "web-"+slot+"-") {
				return false, nil
			}
		}
		return len(pods) == replicas, nil
	}
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) { return onlySlot("blue") })
	s.mustCLI(t, "deploy", "web", "--version", "v2")
	if ok, err := onlySlot("green"); !ok {
		t.Fatalf("once `cutover deploy web --version v2` returned, the Service web does not list only the 3 pods of web-green (%v): %v", err, c.EndpointPods(t, ns, "web"))
	}
	s.mustCLI(t, "status", "web")
	s.mustCLI(t, "rollback", "web")
	if ok, err := onlySlot("blue"); !ok {
		t.Fatalf("once `cutover rollback web` returned, the Service web does not list only the 3 pods of web-blue (%v): %v", err, c.EndpointPods(t, ns, "web"))
	}
}

// readmeServices reads the `kubectl create service clusterip NAME
// --tcp=PORT:TARGET` commands of the section's sh block and returns the
// Services they create: selector app=NAME, or what a `kubectl set selector
// --local` in the same pipeline sets, and one TCP port named PORT-TARGET.
func readmeServices(t *testing.T, section string) []*corev1.Service {
	t.Helper()
	m := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(section)
	if m == nil {
		t.Fatal("the README's Kubernetes section has no sh block with the kubectl commands")
	}
	create := regexp.MustCompile(`kubectl create service clusterip (\S+) --tcp=(\d+):(\d+)`)
	setSelector := regexp.MustCompile(`kubectl set selector --local -f - (\S+)`)
	var svcs []*corev1.Service
	// A pipeline goes on over lines that end with "|".
	for _, cmd := range strings.Split(strings.ReplaceAll(m[1], "|\n", "| "), "\n") {
		c := create.FindStringSubmatch(cmd)
		if c == nil {
			continue
		}
		name := c[1]
		port, _ := strconv.Atoi(c[2])
		target, _ := strconv.Atoi(c[3])
		selector := map[string]string{"app": name}
		if sel := setSelector.FindStringSubmatch(cmd); sel != nil {
			selector = map[string]string{}
			for _, kv := range strings.Split(sel[1], ",") {
				k, v, _ := strings.Cut(kv, "=")
				selector[k] = v
			}
		}
		svcs = append(svcs, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: selector,
				Ports: []corev1.ServicePort{{Name: c[2] + "-" + c[3], Protocol: corev1.ProtocolTCP, Port: int32(port), TargetPort: intstr.FromInt(target)}}}})
	}
	return svcs
}
