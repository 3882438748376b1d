package kubetest

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// ModuleDir returns the directory of a module the project requires, in
// the module cache (go list -m), for the manifests it ships, such as
// sigs.k8s.io/gateway-api's CRDs.
func ModuleDir(t testing.TB, module string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Fatalf("go list -m %s: %v (is it in go.mod, and downloaded: go mod download %s?)", module, err, module)
	}
	return dir
}

// InstallCRDs creates every CustomResourceDefinition in the .yaml files of
// dir (other objects in them are skipped) and waits until each is
// established. One that exists already is left as it is, so tests sharing
// a cluster can each install the same CRDs.
func (c *Cluster) InstallCRDs(t testing.TB, dir string) {
	t.Helper()
	client, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no .yaml files in %s (%v)", dir, err)
	}
	ctx := context.Background()
	var names []string
	for _, file := range files {
		crds, err := readCRDs(file)
		if err != nil {
			t.Fatalf("read %s: %v", file, err)
		}
		for _, crd := range crds {
			_, err := client.Resource(crdResource).Create(ctx, crd, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatalf("create the CRD %s from %s: %v", crd.GetName(), file, err)
			}
			names = append(names, crd.GetName())
		}
	}
	for _, name := range names {
		WaitFor(t, time.Minute, func() (bool, error) {
			crd, err := client.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, c := range conds {
				if c, ok := c.(map[string]any); ok && c["type"] == "Established" && c["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
	}
}

// readCRDs decodes the CustomResourceDefinitions among the YAML documents
// of file.
func readCRDs(file string) ([]*unstructured.Unstructured, error) {
	objs, err := ReadManifests(file)
	if err != nil {
		return nil, err
	}
	var crds []*unstructured.Unstructured
	for _, obj := range objs {
		if obj.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, obj)
		}
	}
	return crds, nil
}
