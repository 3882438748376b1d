// Package kubetest starts a real, local Kubernetes control plane for tests:
// etcd, kube-apiserver, kube-controller-manager and kube-scheduler, built
// from the Go module proxy by .ci/kube-binaries.sh, and kwok, which plays
// the kubelets of a few fake nodes. Deployments go through ReplicaSets,
// scheduling and pod readiness as in a real cluster; the pods run nothing.
//
// Use Start for a cluster of one's own (about 5 s to start, about 560 MB),
// or Shared and Namespace for one cluster per test binary with a namespace
// per test; Shared needs Main in the package's TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
//
// The binaries are taken from $CUTOVER_KUBE_BIN, else from the cache that
// .ci/kube-binaries.sh fills (~/.cache/cutover/kube/<versions>/bin, or under
// $CUTOVER_KUBE_CACHE), and etcd from $PATH. Without them the tests skip,
// unless CUTOVER_REQUIRE_KUBE=1 (as in CI), then they fail.
//
// Everything listens on 127.0.0.1 on free ports; etcd's data, the
// certificates and the logs of every component live in a temporary
// directory. A test that fails prints the end of each component's log.
//
// Pod IPs: kwok gives each pod the next free address of its node's
// spec.podCIDR, counting from the network address + 1 and reusing the
// addresses of deleted pods. Start creates two kinds of nodes:
//
//   - kwok-node-0 and kwok-node-1, with the pod CIDRs 10.244.0.0/24 and
//     10.244.1.0/24, for pods that Services select: the API server refuses
//     loopback addresses in EndpointSlices (ValidateNonSpecialIP). Nothing
//     listens on these pod IPs.
//   - kwok-loopback-0 and kwok-loopback-1, with the pod CIDRs
//     127.<n>.0.0/24 and 127.<n>.1.0/24 (n of this cluster alone, see
//     LoopbackPrefix), labelled and tainted so that only
//     pods that select and tolerate them land there (OnLoopbackNodes). The
//     API server accepts loopback addresses in a pod's status, so these
//     pods have IPs of this machine, where ServePods runs their app and a
//     router under test reaches it by the pod IP, as in a real cluster.
package kubetest

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Versions of the binaries this package expects; .ci/kube-binaries.sh builds
// them into a cache directory named after them.
const (
	KubernetesVersion = "v1.32.3"
	KwokVersion       = "v0.8.0"
)

// Cluster is a running control plane: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok (fake nodes).
type Cluster struct {
	Kubeconfig string // path of a kubeconfig file for this cluster
	Config     *rest.Config
	Client     kubernetes.Interface // k8s.io/client-go

	// Nodes are the names of the fake nodes, each with its own pod CIDR
	// (see the package doc).
	Nodes []string

	dir   string
	procs []*process // in the order they were started
	// loopback is the range of the loopback nodes' pod CIDRs; nil until
	// they are created.
	loopback *loopbackRange
}

// LoopbackPrefix is the range the pods on the cluster's loopback nodes
// get their IPs from: 127.<n>.0.0/16, n of this cluster alone.
func (c *Cluster) LoopbackPrefix() netip.Prefix { return c.loopback.prefix() }

// Start starts a cluster for the test and stops it (all processes, by PID)
// in t.Cleanup. Without binaries (CUTOVER_KUBE_BIN unset and nothing in the
// default cache) it skips the test, unless CUTOVER_REQUIRE_KUBE=1, then it
// fails.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bins := findBinaries(t)
	dir := t.TempDir()
	c, err := start(bins, dir)
	if err != nil {
		t.Fatalf("start a Kubernetes control plane: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.logTails(40))
		}
		c.stop()
	})
	return c
}

var shared struct {
	sync.Mutex
	mainRunning bool
	cluster     *Cluster
	dir         string
	err         error
}

// Main runs the tests of a package that uses Shared and stops the shared
// cluster after them. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
func Main(m *testing.M) int {
	shared.Lock()
	shared.mainRunning = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.cluster != nil {
		shared.cluster.stop()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	return code
}

// Shared returns the test binary's one cluster, starting it on first use;
// Main stops it after the last test. Tests that share it should work in a
// namespace of their own (Namespace). It skips or fails as Start does.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	bins := findBinaries(t)
	shared.Lock()
	defer shared.Unlock()
	if !shared.mainRunning {
		t.Fatal("kubetest.Shared needs kubetest.Main in the package's TestMain, which stops the cluster after the tests")
	}
	if shared.cluster == nil && shared.err == nil {
		shared.dir, shared.err = os.MkdirTemp("", "kubetest-")
		if shared.err == nil {
			shared.cluster, shared.err = start(bins, shared.dir)
		}
	}
	if shared.err != nil {
		t.Fatalf("start the shared Kubernetes control plane: %v", shared.err)
	}
	c := shared.cluster
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.logTails(40))
		}
	})
	return c
}

// Namespace creates a fresh namespace for the test, waits until pods can be
// created in it (its default service account exists) and deletes it in
// t.Cleanup.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	ns, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create a namespace: %v", err)
	}
	t.Cleanup(func() {
		err := c.Client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns.Name, err)
		}
	})
	WaitFor(t, time.Minute, func() (bool, error) {
		_, err := c.Client.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	return ns.Name
}

// WaitFor polls cond until it reports true, and fails the test if cond
// returns an error or timeout passes first. Call it from the test's
// goroutine.
func WaitFor(t testing.TB, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	if err := poll(timeout, cond); err != nil {
		t.Fatal(err)
	}
}

// poll is WaitFor for code that returns errors instead of failing a test.
func poll(timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("condition not met within %v", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// binaries are the paths of the control plane's programs.
type binaries struct {
	etcd, apiserver, controllerManager, scheduler, kwok string
}

// findBinaries looks the binaries up, and skips or fails the test without
// them.
func findBinaries(t testing.TB) binaries {
	t.Helper()
	bins, err := lookBinaries()
	if err == nil {
		return bins
	}
	if os.Getenv("CUTOVER_REQUIRE_KUBE") == "1" {
		t.Fatalf("CUTOVER_REQUIRE_KUBE=1 but %v", err)
	}
	t.Skipf("skipping: %v", err)
	return binaries{}
}

func lookBinaries() (binaries, error) {
	dir := os.Getenv("CUTOVER_KUBE_BIN")
	if dir == "" {
		dir = defaultBinDir()
	}
	hint := "build them with .ci/kube-binaries.sh and set CUTOVER_KUBE_BIN to the directory it prints"
	var b binaries
	for _, f := range []struct {
		path *string
		name string
	}{
		{&b.apiserver, "kube-apiserver"},
		{&b.controllerManager, "kube-controller-manager"},
		{&b.scheduler, "kube-scheduler"},
		{&b.kwok, "kwok"},
	} {
		*f.path = filepath.Join(dir, f.name)
		if _, err := os.Stat(*f.path); err != nil {
			return b, fmt.Errorf("no Kubernetes binaries in %s (%v); %s", dir, err, hint)
		}
	}
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		return b, fmt.Errorf("etcd is not installed (%v); install it with apt-get install etcd-server, or run .ci/kube-binaries.sh", err)
	}
	b.etcd = etcd
	return b, nil
}

// defaultBinDir is where .ci/kube-binaries.sh caches the binaries.
func defaultBinDir() string {
	root := os.Getenv("CUTOVER_KUBE_CACHE")
	if root == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		root = filepath.Join(home, ".cache", "cutover", "kube")
	}
	return filepath.Join(root, KubernetesVersion+"-kwok"+KwokVersion[1:], "bin")
}
