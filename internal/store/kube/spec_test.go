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
	go s.WatchApps(ctx, time.Minute, func(a AppObject) { seen <- a }, nil, func(err error) { t.Error(err) })
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

// A Watcher, which takes no Lease, sees the state and revisions the
// store's holder writes, and each change of them.
func TestWatcherWithoutTheLeaseFollowsTheHoldersState(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.Namespace(t)
	s := open(t, c, ns, Options{})
	w, err := NewWatcher(c.Config, ns)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan AppObject, 100)
	go w.WatchApps(ctx, time.Minute, func(a AppObject) { seen <- a }, nil, func(err error) { t.Error(err) })

	if _, err := s.AddRevision(store.Revision{App: "web", Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	rev2, err := s.AddRevision(store.Revision{App: "web", Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	st := store.AppState{App: "web", ActiveSlot: store.Green, Slots: map[string]store.SlotState{
		store.Blue:  {Revision: 1, Phase: store.SlotWarm},
		store.Green: {Revision: rev2.Number, Phase: store.SlotActive}}}
	if err := s.PutApp(st); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case a := <-seen:
			if a.State == nil || a.State.ActiveSlot != store.Green || len(a.Revisions) != 2 {
				continue // an earlier write
			}
			if a.Name != "web" || a.State.Slots[store.Green].Revision != 2 || a.Revisions[1].Version != "v2" {
				t.Fatalf("the watcher saw %+v, state %+v, want web with green at revision 2 (v2)", a, *a.State)
			}
			return
		case <-deadline:
			t.Fatal("the watcher did not see the holder's state within 30s")
		}
	}
}
