package kubetest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestServePodsRunsAnAppPerPod pins what router-mode tests rely on: every
// pod of a Deployment on the loopback nodes gets an IP of this machine and
// an app listening there on its container port, and a pod that goes away
// takes its app with it.
func TestServePodsRunsAnAppPerPod(t *testing.T) {
	c := Shared(t)
	ns := c.Namespace(t)
	c.ServePods(t, ns, "app=web", func(pod *corev1.Pod, port int) func() {
		return serveIP(t, pod.Status.PodIP, port)
	})
	createDeployment(t, c.Client, ns, "web-blue", "blue", 3, OnLoopbackNodes)
	waitAvailable(t, c.Client, ns, "web-blue", 3)
	ips := readyPodIPs(t, c.Client, ns, "app=web")
	for _, ip := range ips {
		if addr, err := netip.ParseAddr(ip); err != nil || !c.LoopbackPrefix().Contains(addr) || !addr.IsLoopback() {
			t.Fatalf("pod IP %s is not on a loopback node (%s)", ip, c.LoopbackPrefix())
		}
	}
	for _, ip := range ips {
		WaitFor(t, 30*time.Second, func() (bool, error) { return answers(ip) == ip, nil })
	}

	scale, err := c.Client.AppsV1().Deployments(ns).GetScale(context.Background(), "web-blue", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get scale: %v", err)
	}
	scale.Spec.Replicas = 1
	if _, err := c.Client.AppsV1().Deployments(ns).UpdateScale(context.Background(), "web-blue", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("scale to 1: %v", err)
	}
	waitAvailable(t, c.Client, ns, "web-blue", 1)
	WaitFor(t, 30*time.Second, func() (bool, error) { return len(readyPodIPs(t, c.Client, ns, "app=web")) == 1, nil })
	kept := readyPodIPs(t, c.Client, ns, "app=web")[0]
	for _, ip := range ips {
		want := ""
		if ip == kept {
			want = ip
		}
		WaitFor(t, 30*time.Second, func() (bool, error) { return answers(ip) == want, nil })
	}
}

// serveIP serves the pod's IP on podIP:port, and returns what stops it.
func serveIP(t testing.TB, podIP string, port int) func() {
	l, err := net.Listen("tcp", net.JoinHostPort(podIP, strconv.Itoa(port)))
	if err != nil {
		t.Errorf("serve pod %s: %v", podIP, err)
		return nil
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, podIP)
	})}
	go srv.Serve(l)
	return func() { srv.Close() }
}

// answers returns what the app of the pod with podIP answers on port 8080,
// or "" if nothing answers there.
func answers(podIP string) string {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(fmt.Sprintf("http://%s:8080/", podIP))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}
