package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/cutover/cutover/internal/gitops"
	"github.com/cutover/cutover/internal/kubetest"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/store/kube"
)

// A GitOps user declares the app itself in a CutoverApp, with no app in
// cutover.yaml: cutover deploys and serves it, acts on spec.version next
// to `cutover deploy` in one history, reports a spec.app that does not
// apply while the app goes on serving, keeps it over a reload and a
// restart, and removes it with the object.
func TestKubernetesGitOpsAppDeclaredInACutoverApp(t *testing.T) {
	r := newRouterSetup(t, routerBlueGreen)
	k := &kubeSetup{setup: r.setup, cluster: r.cluster, ns: r.ns}
	// The app web of the router tests' cutover.yaml moves to an object.
	entry := onlyApp(t, r.configPath())
	delete(entry, "name")
	cfg := fmt.Sprintf("admin: {listen: %q}\n", r.Admin) + storeInCluster(k)
	if err := os.WriteFile(r.configPath(), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := r.serve(t)
	apps := dynamicClient(t, r.cluster).Resource(kube.Resource).Namespace(r.ns)
	obj := unstructured.Unstructured{Object: map[string]any{"apiVersion": "cutover.dev/v1alpha1", "kind": "CutoverApp",
		"metadata": map[string]any{"name": "web"}, "spec": map[string]any{"app": entry}}}
	if _, err := apps.Create(context.Background(), &obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create the CutoverApp web: %v", err)
	}
	r.waitVersion(t, "v1")
	k.waitRollout(t, "the first rollout's end", time.Minute, phase(store.RolloutSucceeded))
	k.wantCauses(t, "once declared", "initial v1")

	k.patchSpec(t, "v2")
	k.waitSpecDeploy(t, "v2", store.RolloutSucceeded)
	r.wantVersion(t, "v2", "once the spec's v2 succeeded")
	k.wantCauses(t, "after the spec's v2", "initial v1", "spec v2")

	// A spec.app that does not validate changes nothing, and says why.
	patchApp := func(app string) {
		t.Helper()
		_, err := apps.Patch(context.Background(), "web", types.MergePatchType, []byte(`{"spec":{"app":`+app+`}}`), metav1.PatchOptions{})
		if err != nil {
			t.Fatalf("patch the spec.app of CutoverApp web: %v", err)
		}
	}
	patchApp(`{"health":{"intervall":"1s"}}`)
	appErr := waitAppError(t, k, func(msg string) bool { return msg != "" })
	want := "CutoverApp " + r.ns + `/web: spec.app.health: unknown field "intervall"; did you mean ` + "`interval`"
	if !strings.HasPrefix(appErr, want) {
		t.Fatalf("status.appError = %q, want it to start with %q", appErr, want)
	}
	r.wantVersion(t, "v2", "with an invalid spec.app")
	patchApp(`{"health":{"intervall":null}}`)
	waitAppError(t, k, func(msg string) bool { return msg == "" })

	k.mustCLI(t, "deploy", "web", "--version", "v3")
	r.wantVersion(t, "v3", "once deploy v3 returned")
	k.wantCauses(t, "after deploy v3", "initial v1", "spec v2", "deploy v3")

	// The file's apps are reloaded; the declared one stays, and comes back
	// with a new cutover.
	k.mustCLI(t, "reload")
	r.wantVersion(t, "v3", "after a reload of cutover.yaml")
	srv.stop(t)
	r.serve(t)
	r.waitVersion(t, "v3")
	time.Sleep(gitops.Resync + time.Second)
	k.wantCauses(t, "after the restart", "initial v1", "spec v2", "deploy v3")

	if err := apps.Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete the CutoverApp web: %v", err)
	}
	var seen string
	defer func() {
		if t.Failed() {
			t.Logf("after the deletion: %s", seen)
		}
	}()
	kubetest.WaitFor(t, time.Minute, func() (bool, error) {
		code, _ := r.answer(t)
		blue, green := k.desiredPods(t, "web-blue"), k.desiredPods(t, "web-green")
		seen = fmt.Sprintf("cutover answers %d; web-blue has %d replicas, web-green %d", code, blue, green)
		return code != http.StatusOK && blue == 0 && green == 0, nil
	})
	// Its state went with the object: cutover does not write it again.
	time.Sleep(2 * time.Second)
	if _, err := apps.Get(context.Background(), "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the CutoverApp web after its deletion: %v, want it gone", err)
	}
	if res := k.cli(t, "status", "web"); res.code == 0 {
		t.Fatalf("cutover status web after the CutoverApp's deletion succeeded:\n%s", res.stdout)
	}
}

// waitAppError waits until the CutoverApp web's status.appError satisfies
// ok, and returns it.
func waitAppError(t *testing.T, k *kubeSetup, ok func(string) bool) string {
	t.Helper()
	var msg string
	kubetest.WaitFor(t, time.Minute, func() (bool, error) {
		obj, err := dynamicClient(t, k.cluster).Resource(kube.Resource).Namespace(k.ns).Get(context.Background(), "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		msg, _, _ = unstructured.NestedString(obj.Object, "status", "appError")
		return ok(msg), nil
	})
	return msg
}

// onlyApp returns the one entry under apps: of the config file at path,
// as JSON would hold it.
func onlyApp(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps []map[string]any `json:"apps"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil || len(cfg.Apps) != 1 {
		t.Fatalf("the apps of %s: %v, %d of them, want 1", path, err, len(cfg.Apps))
	}
	return cfg.Apps[0]
}
