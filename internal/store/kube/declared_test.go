package kube

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/cutover/cutover/internal/kubetest"
	"github.com/cutover/cutover/internal/store"
)

// The app a user declares in spec.app reaches the store's readers as
// JSON, with the problem cutover reported in status.appError; the
// deletion of the object reaches the watch.
func TestDeclaredAppAndItsErrorAreReadAndTheDeletionWatched(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.Namespace(t)
	s := open(t, c, ns, Options{})
	apps := s.dyn.Resource(Resource).Namespace(ns)
	obj := unstructured.Unstructured{Object: map[string]any{"apiVersion": "cutover.dev/v1alpha1", "kind": "CutoverApp",
		"metadata": map[string]any{"name": "web"},
		"spec":     map[string]any{"version": "v2", "app": map[string]any{"listen": "127.0.0.1:8080", "version": "v1", "health": map[string]any{"intervall": "1s"}}}}}
	if _, err := apps.Create(context.Background(), &obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create a CutoverApp with spec.app (does the CRD accept it?): %v", err)
	}
	const msg = `CutoverApp x/web: spec.app.health: unknown field "intervall"`
	if err := s.PutAppError("web", msg); err != nil {
		t.Fatal(err)
	}
	objs, err := s.Objects()
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Namespace != ns || objs[0].Name != "web" || objs[0].Spec.Version != "v2" || objs[0].AppError != msg {
		t.Fatalf("Objects() = %+v, want web in %s with spec.version v2 and the appError", objs, ns)
	}
	var app map[string]any
	if err := json.Unmarshal(objs[0].App, &app); err != nil || app["listen"] != "127.0.0.1:8080" || app["health"] == nil {
		t.Fatalf("spec.app read as %s (%v), want the object's", objs[0].App, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen, gone := make(chan AppObject, 10), make(chan string, 1)
	go s.WatchApps(ctx, time.Minute, func(a AppObject) { seen <- a }, func(name string) { gone <- name }, func(err error) { t.Error(err) })
	select {
	case <-seen:
	case <-time.After(30 * time.Second):
		t.Fatal("the watch saw no CutoverApp within 30s")
	}
	if err := apps.Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-gone:
		if name != "web" {
			t.Fatalf("the watch saw %q deleted, want web", name)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the watch did not see the deletion within 30s")
	}
}

// Once an app is deleted with its object, the store's writes of it do not
// create the object again, until the app is back.
func TestWritesOfAnAppDeletedWithItsObjectDoNotCreateItAgain(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.Namespace(t)
	s := open(t, c, ns, Options{})
	apps := s.dyn.Resource(Resource).Namespace(ns)
	if err := s.PutApp(store.AppState{App: "web", ActiveSlot: store.Blue}); err != nil {
		t.Fatal(err)
	}
	if err := apps.Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Deleted("web", true)
	if _, err := s.AppendEvent(store.Event{App: "web", Reason: "AppRemoved"}); err != nil {
		t.Fatalf("an event of the deleted app: %v, want it dropped without an error", err)
	}
	if _, err := apps.Get(context.Background(), "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the CutoverApp web after a write of its deleted app: %v, want it not found", err)
	}
	s.Deleted("web", false)
	if err := s.PutApp(store.AppState{App: "web", ActiveSlot: store.Green}); err != nil {
		t.Fatal(err)
	}
	if st, found, err := s.App("web"); err != nil || !found || st.ActiveSlot != store.Green {
		t.Fatalf("the app back: %+v, found %v, %v; want it stored again", st, found, err)
	}
}
