package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/kubetest"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/store/bolt"
	"github.com/cutover/cutover/internal/store/kube"
)

// A cutover whose pod is rescheduled has an empty disk: with its store in
// the API server it serves the same revision, history and rollbacks.
func TestKubernetesStoreSurvivesKill9AndAnEmptyDataDir(t *testing.T) {
	k := newKubeSetup(t)
	k.writeKubeConfig(t, "")
	k.keepStoreInCluster(t)
	srv := k.serve(t)
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		return k.selectorSlot(t, "web") == "blue" && len(k.endpointPods(t, "web")) == 2, nil
	})
	// Each write is a request to the API server: the first rollout may
	// still be recording its end once the Service selects blue.
	k.waitRollout(t, "the first rollout's end", time.Minute, phase(store.RolloutSucceeded))
	k.wantOnly(t, "blue", "after the first start")
	k.mustCLI(t, "deploy", "web", "--version", "v2")
	k.wantOnly(t, "green", "once deploy v2 returned")
	before, hist := k.statusAndHistory(t)
	if before.ActiveSlot != "green" || before.Version != "v2" || len(hist.Revisions) != 2 {
		t.Fatalf("before the kill: active %s %s with %d revisions, want green v2 with 2", before.ActiveSlot, before.Version, len(hist.Revisions))
	}
	if _, err := os.Stat(filepath.Join(k.dataDir(), bolt.FileName)); !os.IsNotExist(err) {
		t.Fatalf("with the store in the cluster, cutover wrote %s in the data dir (%v)", bolt.FileName, err)
	}
	obj, err := dynamicClient(t, k.cluster).Resource(kube.Resource).Namespace(k.ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the CutoverApp web: %v", err)
	}
	if v, _, _ := unstructured.NestedString(obj.Object, "status", "activeVersion"); v != "v2" {
		t.Fatalf("the CutoverApp web says the active version is %q, want v2", v)
	}

	k.restartOnAnEmptyDisk(t, srv)

	after, histAfter := k.statusAndHistory(t)
	if after.ActiveSlot != "green" || after.Revision != before.Revision || after.Version != "v2" {
		t.Fatalf("after the restart on an empty disk: active %s revision %d %s, want green revision %d v2",
			after.ActiveSlot, after.Revision, after.Version, before.Revision)
	}
	if len(histAfter.Revisions) != len(hist.Revisions) {
		t.Fatalf("after the restart: %d revisions, want the %d recorded before", len(histAfter.Revisions), len(hist.Revisions))
	}
	if len(histAfter.Events) < len(hist.Events) {
		t.Fatalf("after the restart: %d events, want at least the %d recorded before", len(histAfter.Events), len(hist.Events))
	}
	for i, e := range hist.Events {
		if a := histAfter.Events[i]; a.Seq != e.Seq || a.Reason != e.Reason || a.Message != e.Message {
			t.Fatalf("event %d after the restart is %d %s %q, want %d %s %q", i, a.Seq, a.Reason, a.Message, e.Seq, e.Reason, e.Message)
		}
	}
	k.wantOnly(t, "green", "after the restart")

	k.mustCLI(t, "rollback", "web")
	k.wantOnly(t, "blue", "after the rollback")
	if st, _ := k.statusAndHistory(t); st.ActiveSlot != "blue" || st.Version != "v1" {
		t.Fatalf("after the rollback: active %s %s, want blue v1", st.ActiveSlot, st.Version)
	}
}

// keepStoreInCluster adds the Kubernetes store, in the test's namespace, to
// cutover.yaml.
func (k *kubeSetup) keepStoreInCluster(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(k.configPath(), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(storeInCluster(k)); err != nil {
		t.Fatal(err)
	}
}

// storeInCluster is the config of the Kubernetes store in k's namespace.
func storeInCluster(k *kubeSetup) string {
	return fmt.Sprintf("store: {kubernetes: {kubeconfig: %s, namespace: %s}}\n", k.cluster.Kubeconfig, k.ns)
}

// restartOnAnEmptyDisk is a rescheduled cutover pod: the process dies, its
// disk is gone, and a new one starts; it serves once the Lease of the
// killed one has expired.
func (k *kubeSetup) restartOnAnEmptyDisk(t *testing.T, srv *server) {
	t.Helper()
	srv.kill9(t)
	if err := os.RemoveAll(k.dataDir()); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	k.start(t)
	waitAdmin(t, k.adminURL(), time.Minute)
	t.Logf("the new cutover served %s after the kill", time.Since(restarted).Round(100*time.Millisecond))
}

func TestKubernetesStoreResumesACanaryOnAnEmptyDisk(t *testing.T) {
	k, srv := newKubeCanarySetupWith(t, storeInCluster)
	// Each write is a request to the API server: the first rollout may
	// still be recording its end once the Service selects blue.
	k.waitRollout(t, "the first rollout's end", time.Minute, phase(store.RolloutSucceeded))
	k.atFirstPause(t)
	k.restartOnAnEmptyDisk(t, srv)
	k.waitResumedAt25(t)
	k.wantListed(t, "after the restart", map[string]int{"blue": 3, "green": 1})
	k.mustCLI(t, "promote", "web")
	k.waitRollout(t, "success", 2*time.Minute, phase("Succeeded"))
	k.wantListed(t, "once promoted", map[string]int{"green": 3})
}

func (k *kubeSetup) statusAndHistory(t *testing.T) (controller.AppStatus, controller.History) {
	t.Helper()
	var st controller.AppStatus
	var h controller.History
	if err := json.Unmarshal([]byte(k.mustCLI(t, "status", "web", "-o", "json").stdout), &st); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(k.mustCLI(t, "history", "web", "--limit", "0", "-o", "json").stdout), &h); err != nil {
		t.Fatal(err)
	}
	return st, h
}

// waitAdmin polls the admin API until it answers.
func waitAdmin(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	kubetest.WaitFor(t, timeout, func() (bool, error) {
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return true, nil
	})
}

func dynamicClient(t *testing.T, c *kubetest.Cluster) dynamic.Interface {
	t.Helper()
	d, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
