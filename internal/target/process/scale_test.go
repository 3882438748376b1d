package process_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/target"
	"github.com/cutover/cutover/internal/target/process"
)

// startRetirer starts replicas replicas of the helper app with a stop
// grace of 2s.
func startRetirer(t *testing.T, replicas int) target.Retirer {
	t.Helper()
	tgt, _ := newTarget(t, process.Options{StopGrace: 2 * time.Second})
	return start(t, tgt, helperSpec(t, replicas)).(target.Retirer)
}

// answering waits until every replica of inst answers and returns their
// endpoints and their PIDs by URL.
func answering(t *testing.T, inst target.Instance) ([]*url.URL, map[string]int) {
	t.Helper()
	eps := inst.Endpoints()
	for _, ep := range eps {
		eventually(t, 10*time.Second, ep.String()+" to answer", func() bool { return healthy(ep.String()) })
	}
	pids := map[string]int{}
	for _, r := range inst.Replicas() {
		pids[r.URL] = r.PID
	}
	return eps, pids
}

func TestScaleStartsNewReplicasAndStopsTheLastOnesAlone(t *testing.T) {
	t.Parallel()
	inst := startRetirer(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if err := inst.Scale(ctx, 4); err != nil {
		t.Fatalf("Scale(4): %v", err)
	}
	eps, pids := answering(t, inst)
	if len(eps) != 4 || len(pids) != 4 {
		t.Fatalf("after Scale(4): %d endpoints, %d replicas; want 4 of each", len(eps), len(pids))
	}

	if err := inst.Scale(ctx, 1); err != nil {
		t.Fatalf("Scale(1): %v", err)
	}
	if got := inst.Endpoints(); len(got) != 1 || got[0].String() != eps[0].String() {
		t.Fatalf("after Scale(1): endpoints %v, want the first one, %s, alone", got, eps[0])
	}
	for _, ep := range eps[1:] {
		if alive(pids[ep.String()]) || healthy(ep.String()) {
			t.Errorf("replica on %s still runs after Scale(1) returned", ep)
		}
	}
	if !healthy(eps[0].String()) || !alive(pids[eps[0].String()]) {
		t.Errorf("the replica that stays, on %s, was stopped too", eps[0])
	}

	if err := inst.Scale(ctx, 0); err != nil {
		t.Fatalf("Scale(0): %v", err)
	}
	if len(inst.Endpoints()) != 0 || alive(pids[eps[0].String()]) {
		t.Fatalf("after Scale(0): endpoints %v, last replica alive %v; want none", inst.Endpoints(), alive(pids[eps[0].String()]))
	}
	if err := inst.Stop(ctx); err != nil {
		t.Fatalf("Stop after Scale(0): %v", err)
	}
	if err := inst.Scale(ctx, 1); err == nil {
		t.Fatal("Scale after Stop succeeded; want an error")
	}
}

func TestRetireStopsTheNamedReplicaAndKeepsTheOthers(t *testing.T) {
	t.Parallel()
	inst := startRetirer(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eps, pids := answering(t, inst)

	unknown, _ := url.Parse("http://127.0.0.1:1")
	if err := inst.Retire(ctx, []*url.URL{eps[1], unknown}); err == nil || !strings.Contains(err.Error(), unknown.String()) {
		t.Fatalf("Retire of a URL the instance does not serve: %v; want an error naming it", err)
	}
	if len(inst.Endpoints()) != 3 || !alive(pids[eps[1].String()]) {
		t.Fatalf("a failed Retire changed the replicas: endpoints %v, %s alive %v", inst.Endpoints(), eps[1], alive(pids[eps[1].String()]))
	}

	if err := inst.Retire(ctx, eps[1:2]); err != nil {
		t.Fatalf("Retire(%s): %v", eps[1], err)
	}
	if got := inst.Endpoints(); len(got) != 2 || got[0].String() != eps[0].String() || got[1].String() != eps[2].String() {
		t.Fatalf("after Retire(%s): endpoints %v; want %s and %s", eps[1], got, eps[0], eps[2])
	}
	if alive(pids[eps[1].String()]) || healthy(eps[1].String()) {
		t.Errorf("retired replica on %s still runs after Retire returned", eps[1])
	}
	for _, ep := range []*url.URL{eps[0], eps[2]} {
		if !alive(pids[ep.String()]) || !healthy(ep.String()) {
			t.Errorf("replica on %s, which stays, was stopped too", ep)
		}
	}

	// The replica added next is numbered after the last, not in the gap:
	// two running replicas never share a number (and a log file).
	if err := inst.Scale(ctx, 3); err != nil {
		t.Fatalf("Scale(3) after Retire: %v", err)
	}
	var indexes []int
	for _, r := range inst.Replicas() {
		indexes = append(indexes, r.Index)
	}
	if !slices.Equal(indexes, []int{0, 2, 3}) {
		t.Errorf("after Retire of replica 1 and Scale(3): replica numbers %v; want [0 2 3]", indexes)
	}
}
