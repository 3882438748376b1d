package kubernetes

import (
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/cutover/cutover/internal/target"
)

// MaxClusterEvents bounds the warnings one watch of a slot reports, so
// that a pod crash-looping for hours does not flood the history; the last
// one says so.
const MaxClusterEvents = 20

// eventWatches hands the namespace's Warning events to the watch of the
// slot they are about. Events carry no labels, so a slot's are told by
// their object: its Deployment <app>-<slot>, and the ReplicaSets and pods
// named after it (<app>-<slot>-...).
type eventWatches struct {
	store cache.Store // the informer's, to know what was there before a watch
	mu    sync.Mutex
	byDep map[string]*eventWatch
}

// eventWatch is one slot's: what it reported and to whom.
type eventWatch struct {
	deployment string
	report     func(target.ClusterEvent)
	// seen holds, per event, its count when the watch began (an old
	// event, reported only if it happens again) or -1 once reported.
	seen map[types.UID]int
	sent int
}

// WatchEvents calls report with each Warning event about the slot's
// Deployment, its ReplicaSets and its pods from now on until stop is
// called: each event once, at most MaxClusterEvents of them. A newer
// watch of the same slot replaces this one. A nil report watches nothing.
func (t *Target) WatchEvents(app, slot string, report func(target.ClusterEvent)) (stop func()) {
	if report == nil {
		return func() {}
	}
	w := &eventWatch{deployment: Name(app, slot), report: report, seen: map[types.UID]int{}}
	ew := t.events
	ew.mu.Lock()
	defer ew.mu.Unlock()
	for _, obj := range ew.store.List() {
		if ev, ok := obj.(*corev1.Event); ok && w.about(ev) {
			w.seen[ev.UID] = eventCount(ev)
		}
	}
	ew.byDep[w.deployment] = w
	return func() {
		ew.mu.Lock()
		defer ew.mu.Unlock()
		if ew.byDep[w.deployment] == w {
			delete(ew.byDep, w.deployment)
		}
	}
}

// observe is the informer's handler for an added or updated event.
func (ew *eventWatches) observe(obj any) {
	ev, ok := obj.(*corev1.Event)
	if !ok || ev.Type != corev1.EventTypeWarning {
		return
	}
	ew.mu.Lock()
	var w *eventWatch
	for _, cand := range ew.byDep {
		if cand.about(ev) {
			w = cand
			break
		}
	}
	var report func(target.ClusterEvent)
	var ce target.ClusterEvent
	if w != nil {
		report, ce = w.next(ev)
	}
	ew.mu.Unlock()
	// Outside the lock: report may take its time (it writes the history).
	if report != nil {
		report(ce)
	}
}

// next returns the report to make of ev, or a nil func when ev was
// reported already, happened before the watch and not since, or the
// watch reported all it may.
func (w *eventWatch) next(ev *corev1.Event) (func(target.ClusterEvent), target.ClusterEvent) {
	count := eventCount(ev)
	if prev, known := w.seen[ev.UID]; prev < 0 || known && count <= prev {
		return nil, target.ClusterEvent{}
	}
	w.seen[ev.UID] = -1
	if w.sent == MaxClusterEvents {
		return nil, target.ClusterEvent{}
	}
	w.sent++
	ce := target.ClusterEvent{Reason: ev.Reason, Message: strings.TrimSpace(ev.Message),
		Object: ev.InvolvedObject.Kind + "/" + ev.InvolvedObject.Name, Count: count}
	if w.sent == MaxClusterEvents {
		ce.Message += fmt.Sprintf(" (the last of %d cluster warnings recorded for %s; `kubectl get events` lists the others)",
			MaxClusterEvents, w.deployment)
	}
	return w.report, ce
}

// about reports whether ev is about the watched slot's Deployment, one of
// its ReplicaSets or one of their pods.
func (w *eventWatch) about(ev *corev1.Event) bool {
	o := ev.InvolvedObject
	switch o.Kind {
	case "Deployment":
		return o.Name == w.deployment
	case "ReplicaSet", "Pod":
		return strings.HasPrefix(o.Name, w.deployment+"-")
	}
	return false
}

// eventCount is how often ev happened, whichever API wrote it.
func eventCount(ev *corev1.Event) int {
	n := int(ev.Count)
	if ev.Series != nil {
		n = max(n, int(ev.Series.Count))
	}
	return max(n, 1)
}
