// Package kubernetes holds the manifests that run cutover in a cluster
// (see the README, "Running cutover in the cluster"); its tests hold them
// against a real API server. That they grant cutover enough, and no more
// than the RBAC they list, is e2e/kubernetes_rbac_test.go's job.
package kubernetes

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/kubetest"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// manifests reads the objects of every .yaml file here, in the order
// kubectl apply -f takes the files (by name).
func manifests(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests here (%v)", err)
	}
	var all []*unstructured.Unstructured
	for _, f := range files {
		objs, err := kubetest.ReadManifests(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		all = append(all, objs...)
	}
	return all
}

func TestManifestsAreAcceptedByTheAPIServer(t *testing.T) {
	c := kubetest.Shared(t)
	objs := manifests(t)
	kinds := map[string]bool{}
	for _, obj := range objs {
		kinds[obj.GetKind()] = true
	}
	for _, kind := range []string{"Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Deployment", "PersistentVolumeClaim", "Service"} {
		if !kinds[kind] {
			t.Errorf("no %s among the manifests", kind)
		}
	}
	// A dry run stores nothing, so the namespace cutover must exist for
	// the dry run of what goes in it: the Namespace is tried first, while
	// it does not exist, then created.
	ns, rest := objs[0], objs[1:]
	if ns.GetKind() != "Namespace" || ns.GetName() != "cutover" {
		t.Fatalf("the first manifest is %s %s, want the Namespace cutover (kubectl apply -f takes the files by name)", ns.GetKind(), ns.GetName())
	}
	if err := c.Create(t, "", true, ns); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if err := c.Create(t, "", false, ns); err != nil {
		t.Fatal(err)
	}
	// The Role and RoleBinding have no namespace: they go where the apps
	// are, here default.
	if err := c.Create(t, "default", true, rest...); err != nil {
		t.Fatalf("dry run: %v", err)
	}
}

func TestConfigMapHoldsAValidConfig(t *testing.T) {
	for _, obj := range manifests(t) {
		if obj.GetKind() != "ConfigMap" {
			continue
		}
		data, ok, _ := unstructured.NestedString(obj.Object, "data", "cutover.yaml")
		if !ok {
			t.Fatalf("ConfigMap %s has no cutover.yaml", obj.GetName())
		}
		cfg, err := config.Parse("cutover.yaml", []byte(data))
		if err != nil {
			t.Fatalf("the ConfigMap's cutover.yaml is refused:\n%v", err)
		}
		if k := cfg.Apps[0].Target.Kubernetes; k == nil || k.Kubeconfig != "" {
			t.Fatalf("the ConfigMap's app does not use the in-cluster config: target.kubernetes %+v", k)
		}
		return
	}
	t.Fatal("no ConfigMap among the manifests")
}
