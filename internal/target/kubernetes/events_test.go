package kubernetes

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cutover/cutover/internal/kubetest"
	"github.com/cutover/cutover/internal/target"
)

// eventLog collects what a watch reports.
type eventLog struct {
	ch  chan target.ClusterEvent
	got []target.ClusterEvent
}

func newEventLog() *eventLog {
	// Roomy enough that the watch never waits on the test.
	return &eventLog{ch: make(chan target.ClusterEvent, 4*MaxClusterEvents)}
}

func (l *eventLog) add(e target.ClusterEvent) { l.ch <- e }

// waitFor waits until the watch reported an event whose message starts
// with msg and returns everything it reported by then.
func (l *eventLog) waitFor(t *testing.T, msg string) []target.ClusterEvent {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case e := <-l.ch:
			l.got = append(l.got, e)
			if strings.HasPrefix(e.Message, msg) {
				return l.got
			}
		case <-timeout:
			t.Fatalf("no event %q reported in 30s; got %+v", msg, l.got)
		}
	}
}

// list returns everything reported so far.
func (l *eventLog) list() []target.ClusterEvent {
	for {
		select {
		case e := <-l.ch:
			l.got = append(l.got, e)
		default:
			return l.got
		}
	}
}

// emit writes an event about kind/name as a cluster component would, or
// updates it (same name) with a new count.
func emit(t *testing.T, c *kubetest.Cluster, ns, id, typ, kind, name, reason, msg string, count int32) {
	t.Helper()
	ctx := context.Background()
	evs := c.Client.CoreV1().Events(ns)
	now := metav1.Now()
	if old, err := evs.Get(ctx, id, metav1.GetOptions{}); err == nil {
		old.Count, old.LastTimestamp, old.Message = count, now, msg
		if _, err := evs.Update(ctx, old, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		return
	}
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: id}, Type: typ, Reason: reason, Message: msg, Count: count,
		InvolvedObject: corev1.ObjectReference{Kind: kind, Name: name, Namespace: ns},
		FirstTimestamp: now, LastTimestamp: now, Source: corev1.EventSource{Component: "test"}}
	if _, err := evs.Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestWatchEventsReportsEachWarningAboutTheSlotOnce(t *testing.T) {
	tgt, c, ns := newTarget(t)
	// Before the watch: an old warning of the slot's Deployment.
	emit(t, c, ns, "old", corev1.EventTypeWarning, "Deployment", "web-green", "FailedCreate", "old", 1)
	kubetest.WaitFor(t, 30*time.Second, func() (bool, error) { return len(tgt.events.store.List()) > 0, nil })

	log := newEventLog()
	stop := tgt.WatchEvents("web", "green", log.add)
	emit(t, c, ns, "sched", corev1.EventTypeWarning, "Pod", "web-green-5f7c-x2x9q", "FailedScheduling", "0/1 nodes are available", 1)
	emit(t, c, ns, "normal", corev1.EventTypeNormal, "Pod", "web-green-5f7c-x2x9q", "Scheduled", "normal", 1)
	emit(t, c, ns, "other-slot", corev1.EventTypeWarning, "Pod", "web-blue-5f7c-aaaaa", "BackOff", "other slot", 1)
	emit(t, c, ns, "other-app", corev1.EventTypeWarning, "Pod", "api-green-5f7c-aaaaa", "BackOff", "other app", 1)
	emit(t, c, ns, "node", corev1.EventTypeWarning, "Node", "web-green-node", "NodeNotReady", "a node", 1)
	emit(t, c, ns, "sched", corev1.EventTypeWarning, "Pod", "web-green-5f7c-x2x9q", "FailedScheduling", "0/1 nodes are available", 2)
	emit(t, c, ns, "rs", corev1.EventTypeWarning, "ReplicaSet", "web-green-5f7c", "FailedCreate", "quota", 1)
	got := log.waitFor(t, "quota")
	want := []target.ClusterEvent{
		{Reason: "FailedScheduling", Message: "0/1 nodes are available", Object: "Pod/web-green-5f7c-x2x9q", Count: 1},
		{Reason: "FailedCreate", Message: "quota", Object: "ReplicaSet/web-green-5f7c", Count: 1},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("reported %+v\nwant each warning about web-green's objects once: %+v", got, want)
	}

	// The old warning happens again: now it is news.
	emit(t, c, ns, "old", corev1.EventTypeWarning, "Deployment", "web-green", "FailedCreate", "old again", 2)
	got = log.waitFor(t, "old again")
	if last := got[len(got)-1]; len(got) != 3 || last.Object != "Deployment/web-green" || last.Count != 2 {
		t.Fatalf("reported %+v, want the old warning once more, with its count 2", got)
	}

	// A flood is cut at MaxClusterEvents, and the last one says so.
	for i := range MaxClusterEvents + 5 {
		emit(t, c, ns, fmt.Sprintf("flood-%d", i), corev1.EventTypeWarning, "Pod", "web-green-5f7c-x2x9q", "BackOff", fmt.Sprintf("flood %d", i), 1)
	}
	emit(t, c, ns, "blue-old", corev1.EventTypeWarning, "Pod", "web-blue-5f7c-aaaaa", "BackOff", "an old one of blue", 1)
	marker := newEventLog()
	stopMarker := tgt.WatchEvents("web", "blue", marker.add)
	defer stopMarker()
	emit(t, c, ns, "marker2", corev1.EventTypeWarning, "Pod", "web-blue-5f7c-aaaaa", "BackOff", "marker2", 1)
	marker.waitFor(t, "marker2") // every flood event was seen by now
	got = log.list()
	if len(got) != MaxClusterEvents || !strings.Contains(got[len(got)-1].Message, "the last of 20 cluster warnings recorded for web-green") {
		t.Fatalf("reported %d events, the last %+v; want %d, the last saying the others were left out", len(got), got[len(got)-1], MaxClusterEvents)
	}

	// Stopped: nothing more.
	stop()
	emit(t, c, ns, "late", corev1.EventTypeWarning, "Pod", "web-green-5f7c-x2x9q", "BackOff", "late", 1)
	emit(t, c, ns, "marker3", corev1.EventTypeWarning, "Pod", "web-blue-5f7c-aaaaa", "BackOff", "marker3", 1)
	marker.waitFor(t, "marker3")
	if n := len(log.list()); n != MaxClusterEvents {
		t.Fatalf("a stopped watch reported more: %d events", n)
	}
}
