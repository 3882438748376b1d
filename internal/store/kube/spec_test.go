package kube

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cutover/cutover/internal/kubetest"
	"github.com/cutover/cutover/internal/store"
)

// A user's spec and cutover's status.specDeploy survive each other's
// writes, and the watch sees both.
func TestSpecWrittenByAUserAndSpecDeployOutliveTheStoresWrites(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.Namespace(t)
	s := open(t, c, ns, Options{})
	if err := s.PutApp(store.AppState{App: "web", ActiveSlot: store.Blue}); err != nil {
		t.Fatal(err)
	}
	_, err := s.dyn.Resource(Resource).Namespace(ns).Patch(context.Background(), "web", types.MergePatchType,
		[]byte(`{"spec":{"version":"v2","image":"web=registry.example/web:v2"}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The store's next write starts from the object it last wrote: it
	// conflicts, reads the user's spec and keeps it.
	want := SpecDeploy{Spec: Spec{Version: "v2", Image: "web=registry.example/web:v2"}, Phase: "Progressing", Rollout: 7}
	if err := s.PutSpecDeploy("web", want); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendEvent(store.Event{App: "web", Reason: "Test"}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan AppObject, 10)
	go s.WatchApps(ctx, time.Minute, func(a AppObject) { seen <- a }, func(err error) { t.Error(err) })
	select {
	case a := <-seen:
		if a.Name != "web" || a.Spec != want.Spec || a.SpecDeploy == nil || a.SpecDeploy.Spec != want.Spec ||
			a.SpecDeploy.Phase != want.Phase || a.SpecDeploy.Rollout != want.Rollout {
			t.Fatalf("the watch saw %+v (specDeploy %+v), want spec %+v and specDeploy %+v", a, a.SpecDeploy, want.Spec, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the watch saw no CutoverApp within 30s")
	}
}
