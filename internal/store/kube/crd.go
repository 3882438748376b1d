package kube

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

// CRD is the CustomResourceDefinition of CutoverApp, the manifest that
// deploy/kubernetes/crd.yaml holds too.
//
//go:embed crd.yaml
var CRD []byte

// Resource is CutoverApp's resource in the API.
var Resource = schema.GroupVersionResource{Group: "cutover.dev", Version: "v1alpha1", Resource: "cutoverapps"}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// establishWait bounds the wait for a CRD just created to be served.
const establishWait = 30 * time.Second

// ensureCRD creates CutoverApp's definition unless the API serves the
// resource already, and waits until it does. It needs no permission on
// CustomResourceDefinitions when the definition is there.
func ensureCRD(ctx context.Context, dyn dynamic.Interface, ns string) error {
	served := func() (bool, error) {
		_, err := dyn.Resource(Resource).Namespace(ns).List(ctx, metav1.ListOptions{Limit: 1})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("kubernetes store: list cutoverapps in namespace %s: %w", ns, err)
		}
		return true, nil
	}
	if ok, err := served(); ok || err != nil {
		return err
	}
	var crd unstructured.Unstructured
	if err := yaml.Unmarshal(CRD, &crd.Object); err != nil {
		return fmt.Errorf("kubernetes store: the embedded CRD: %w", err)
	}
	_, err := dyn.Resource(crdResource).Create(ctx, &crd, metav1.CreateOptions{})
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("kubernetes store: the API server does not know CutoverApp, and cutover may not create its definition (%v); apply it once: kubectl apply -f deploy/kubernetes/crd.yaml",
			err)
	}
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kubernetes store: create the CustomResourceDefinition %s: %w", crd.GetName(), err)
	}
	deadline := time.Now().Add(establishWait)
	for {
		if ok, err := served(); ok || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kubernetes store: CustomResourceDefinition %s is not served after %s; see kubectl describe crd %s",
				crd.GetName(), establishWait, crd.GetName())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
