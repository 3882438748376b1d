package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/cutover/cutover/internal/kubetest"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// open opens the store in ns as cutover would, and closes it in t.Cleanup.
func open(t *testing.T, c *kubetest.Cluster, ns string, opts Options) *Store {
	t.Helper()
	opts.Config, opts.Namespace = c.Config, ns
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", ns, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStoreBehaviour(t *testing.T) {
	c := kubetest.Shared(t)
	storetest.Run(t, storetest.Backend{MaxRevisions: MaxRevisions, Open: func(t *testing.T) (storetest.Store, func() storetest.Store) {
		ns := c.Namespace(t)
		s := open(t, c, ns, Options{})
		return s, func() storetest.Store {
			t.Helper()
			_ = s.Close()
			return open(t, c, ns, Options{})
		}
	}})
}

// withoutLease returns a second store on s's namespace, with clients of
// its own, that does not take the Lease: what a second writer would be if
// the Lease did not keep it out.
func withoutLease(t *testing.T, c *kubetest.Cluster, s *Store) *Store {
	t.Helper()
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	core, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &Store{Watcher: Watcher{ns: s.ns, dyn: dyn}, core: core, lease: &lease{lost: make(chan struct{})},
		maxRevs: MaxRevisions, maxEvs: MaxEvents, last: map[string]written{}}
}

func TestConcurrentRolloutIDsFromTwoStoresAreDistinct(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.Namespace(t)
	stores := []*Store{open(t, c, ns, Options{})}
	stores = append(stores, withoutLease(t, c, stores[0]))
	const each = 25
	ids := make(chan int64, 2*each)
	var wg sync.WaitGroup
	for _, s := range stores {
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each / 5 {
					id, err := s.NextRolloutID()
					if err != nil {
						t.Error(err)
						return
					}
					ids <- id
				}
			}()
		}
	}
	wg.Wait()
	close(ids)
	seen := map[int64]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("rollout id %d was handed out twice", id)
		}
		seen[id] = true
	}
	for id := int64(1); id <= 2*each; id++ {
		if !seen[id] {
			t.Errorf("rollout id %d was never handed out; got %d ids", id, len(seen))
		}
	}
}

func TestConcurrentWritesToOneAppLoseNothing(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.Namespace(t)
	a := open(t, c, ns, Options{})
	b := withoutLease(t, c, a)
	var wg sync.WaitGroup
	for i, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				if _, err := s.AppendEvent(store.Event{App: "web", Reason: fmt.Sprintf("W%d-%d", i, j)}); err != nil {
					t.Error(err)
				}
				if _, err := s.AddRevision(store.Revision{App: "web", Version: fmt.Sprintf("w%d-%d", i, j)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	evs, err := a.Events("web", 0)
	if err != nil {
		t.Fatal(err)
	}
	revs, err := a.Revisions("web")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 20 || len(revs) != 20 {
		t.Fatalf("after 20 events and 20 revisions from two writers: %d events, %d revisions stored", len(evs), len(revs))
	}
	for i := range 20 {
		if evs[i].Seq != uint64(i+1) || revs[i].Number != i+1 {
			t.Fatalf("event %d has seq %d, revision %d has number %d; want %d for both", i, evs[i].Seq, i, revs[i].Number, i+1)
		}
	}
}

func TestEventsAreCappedAndSeqGoesOn(t *testing.T) {
	c := kubetest.Shared(t)
	s := open(t, c, c.Namespace(t), Options{})
	s.maxEvs = 5 // MaxEvents, made small for the test
	for i := range 8 {
		if _, err := s.AppendEvent(store.Event{App: "web", Reason: fmt.Sprint("R", i)}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"R3", "R4", "R5", "R6", "R7"}
	if got := storetest.Reasons(t, s, "web", 0); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("Events(web) = %v, want the last 5: %v", got, want)
	}
	ev, err := s.AppendEvent(store.Event{App: "web", Reason: "R8"})
	if err != nil || ev.Seq != 9 {
		t.Errorf("the 9th event got seq %d, %v; want 9: trimming reuses no number", ev.Seq, err)
	}
}

func TestSecondCutoverIsRefusedWhileTheFirstHoldsTheLease(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.Namespace(t)
	first := open(t, c, ns, Options{Identity: "first-cutover"})
	_, err := Open(context.Background(), Options{Config: c.Config, Namespace: ns, Identity: "second", Wait: 3 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "in use by another cutover") || !strings.Contains(err.Error(), "first-cutover") {
		t.Fatalf("second Open = %v; want it refused, naming first-cutover", err)
	}
	if err := first.PutApp(store.AppState{App: "web", ActiveSlot: store.Blue}); err != nil {
		t.Fatalf("the first cutover cannot write after the second was refused: %v", err)
	}
	// Closed, the first gives the Lease up: the next one takes it at once.
	_ = first.Close()
	start := time.Now()
	second := open(t, c, ns, Options{Identity: "second", Wait: 3 * time.Second})
	if st, ok, err := second.App("web"); err != nil || !ok || st.ActiveSlot != store.Blue {
		t.Errorf("App(web) from the second cutover = %+v, %v, %v", st, ok, err)
	}
	t.Logf("Lease taken %s after the first cutover closed the store", time.Since(start).Round(time.Millisecond))
}

func TestLeaseOfACutoverThatStoppedRenewingExpires(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.Namespace(t)
	first := open(t, c, ns, Options{Identity: "killed", LeaseDuration: 3 * time.Second})
	// Stop renewing without giving the Lease up, as kill -9 would.
	first.lease.released.Store(true)
	first.lease.cancel()
	<-first.lease.done
	_ = open(t, c, ns, Options{Identity: "next", LeaseDuration: 3 * time.Second, Wait: 20 * time.Second})
}

func TestKubectlGetShowsActiveSlotRevisionAndRollout(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("no kubectl on $PATH")
	}
	c := kubetest.Shared(t)
	ns := c.Namespace(t)
	s := open(t, c, ns, Options{})
	for _, v := range []string{"v1", "v2"} {
		if _, err := s.AddRevision(store.Revision{App: "web", Version: v}); err != nil {
			t.Fatal(err)
		}
	}
	err = s.PutApp(store.AppState{App: "web", ActiveSlot: store.Green,
		Slots:   map[string]store.SlotState{store.Blue: {Revision: 1, Phase: store.SlotWarm}, store.Green: {Revision: 2, Phase: store.SlotActive}},
		Rollout: &store.Rollout{ID: 1, Revision: 2, Version: "v2", Slot: store.Green, Phase: store.RolloutSucceeded}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig, "get", "cutover", "-n", ns).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get cutover: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0])[:5], " ") != "NAME ACTIVE REVISION VERSION ROLLOUT" ||
		strings.Join(strings.Fields(lines[1])[:5], " ") != "web green 2 v2 Succeeded" {
		t.Fatalf("kubectl get cutover printed:\n%s\nwant the columns NAME ACTIVE REVISION VERSION ROLLOUT and web green 2 v2 Succeeded", out)
	}
	t.Logf("kubectl get cutover:\n%s", out)
	wide, err := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig, "get", "cutover", "-n", ns, "-o", "wide").CombinedOutput()
	if err != nil || !strings.Contains(string(wide), "STEP") {
		t.Fatalf("kubectl get cutover -o wide: %v\n%s\nwant a STEP column", err, wide)
	}
}

func TestDeployManifestIsTheEmbeddedCRD(t *testing.T) {
	data, err := os.ReadFile("../../../deploy/kubernetes/crd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(CRD) {
		t.Error("deploy/kubernetes/crd.yaml differs from internal/store/kube/crd.yaml; copy the latter over the former")
	}
}

func TestStoreRefusesWritesOnceAnotherCutoverTookItsLease(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.Namespace(t)
	s := open(t, c, ns, Options{Identity: "first", LeaseDuration: 3 * time.Second})
	leases := c.Client.CoordinationV1().Leases(ns)
	ctx := context.Background()
	err := retryRace(func() error {
		l, err := leases.Get(ctx, LeaseName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		intruder := "intruder"
		l.Spec.HolderIdentity = &intruder
		now := metav1.NewMicroTime(time.Now())
		l.Spec.RenewTime = &now
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Lost():
	case <-time.After(30 * time.Second):
		t.Fatal("Lost was not closed within 30s of another holder taking the Lease")
	}
	if err := s.PutApp(store.AppState{App: "web"}); !errors.Is(err, ErrLost) {
		t.Errorf("PutApp after the Lease was lost = %v, want ErrLost", err)
	}
	if _, _, err := s.App("web"); !errors.Is(err, ErrLost) {
		t.Errorf("App after the Lease was lost = %v, want ErrLost", err)
	}
}

// BenchmarkAppendEventToAFullHistory measures a write when the app's
// object is as large as it gets from events: MaxEvents of them.
func BenchmarkAppendEventToAFullHistory(b *testing.B) {
	c := kubetest.Shared(b)
	ns := c.Namespace(b)
	s, err := Open(context.Background(), Options{Config: c.Config, Namespace: ns})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ev := store.Event{App: "web", Type: "Normal", Reason: "ReplicasReady", Message: "2 pod(s) of v12 ready on slot green", Revision: 12, Rollout: 7}
	for range MaxEvents {
		if _, err := s.AppendEvent(ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.AppendEvent(ev); err != nil {
			b.Fatal(err)
		}
	}
}

func TestStandbyWaitsForTheLeaseUntilItsHolderStopsRenewing(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.Namespace(t)
	first := open(t, c, ns, Options{Identity: "leader", LeaseDuration: 3 * time.Second})
	holders := make(chan string, 10)
	opened := make(chan error, 1)
	var standby *Store
	go func() {
		var err error
		standby, err = Open(context.Background(), Options{Config: c.Config, Namespace: ns, Identity: "standby",
			LeaseDuration: 3 * time.Second, Wait: time.Second, Standby: true,
			Holder: func(id string) { holders <- id }})
		opened <- err
	}()
	select {
	case id := <-holders:
		if id != "leader" {
			t.Fatalf("the standby sees %q hold the Lease, want leader", id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the standby reported no holder within 30s")
	}
	// Well past Wait and LeaseDuration: a standby does not give up.
	select {
	case err := <-opened:
		t.Fatalf("the standby's Open returned %v while the leader renews the Lease", err)
	case <-time.After(6 * time.Second):
	}
	// The leader stops and gives the Lease up (e2e's
	// TestKubernetesStandbyTakesOverARolloutInProgress kills it instead).
	_ = first.Close()
	select {
	case err := <-opened:
		if err != nil {
			t.Fatalf("the standby's Open: %v", err)
		}
		t.Cleanup(func() { _ = standby.Close() })
	case <-time.After(30 * time.Second):
		t.Fatal("the standby did not take the Lease within 30s of the leader giving it up")
	}
	if err := standby.PutApp(store.AppState{App: "web", ActiveSlot: store.Green}); err != nil {
		t.Fatalf("the standby cannot write once it leads: %v", err)
	}
}

func TestStandbyStopsWaitingWhenItsContextEnds(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.Namespace(t)
	_ = open(t, c, ns, Options{Identity: "leader"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := Open(ctx, Options{Config: c.Config, Namespace: ns, Identity: "standby", Standby: true})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a standby's Open with its context ended = %v, want context.DeadlineExceeded", err)
	}
}
