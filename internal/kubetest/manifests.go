package kubetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
)

// ReadManifests decodes every object among the YAML documents of file
// (empty documents, such as a trailing "---", are skipped).
func ReadManifests(file string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		obj := &unstructured.Unstructured{}
		err := dec.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(obj.Object) > 0 {
			objs = append(objs, obj)
		}
	}
}

// Create creates objs as the cluster's admin, as kubectl create would:
// each through the resource the API server's discovery maps its kind to,
// a namespaced object without a namespace in ns, fields the API does not
// know refused (kubectl's --validate=strict). With dryRun the server
// decodes, validates and admits each object and stores none
// (kubectl create --dry-run=server). It returns the first refusal,
// naming the object.
func (c *Cluster) Create(t testing.TB, ns string, dryRun bool, objs ...*unstructured.Unstructured) error {
	t.Helper()
	client, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	disco, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := restmapper.GetAPIGroupResources(disco.Discovery())
	if err != nil {
		t.Fatalf("discover the API server's resources: %v", err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	// Strict: a field the API does not know is an error, not a warning.
	opts := metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	for _, obj := range objs {
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("%s %s: %w", gvk.Kind, obj.GetName(), err)
		}
		res := dynamic.ResourceInterface(client.Resource(m.Resource))
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			on := obj.GetNamespace()
			if on == "" {
				on = ns
			}
			res = client.Resource(m.Resource).Namespace(on)
		}
		if _, err := res.Create(context.Background(), obj, opts); err != nil {
			return fmt.Errorf("%s %s: %w", gvk.Kind, obj.GetName(), err)
		}
	}
	return nil
}
