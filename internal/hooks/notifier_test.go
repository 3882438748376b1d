package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
)

// receiver is a webhook receiver that records the bodies it gets.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			http.Error(w, "not JSON", http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.bodies = append(rc.bodies, body)
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) events() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var evs []string
	for _, b := range rc.bodies {
		evs = append(evs, b["event"].(string))
	}
	return evs
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

func closeWithin(t *testing.T, n *Notifier, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	n.Close(ctx)
}

func TestNotifierDeliversToReceiversByEventFilter(t *testing.T) {
	onlyAborts, all := newReceiver(t), newReceiver(t)
	n := NewNotifier([]config.Notification{
		{Webhook: onlyAborts.srv.URL, Events: []string{EventAborted}},
		{Webhook: all.srv.URL},
	}, nil, testLogger(t))

	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	n.Notify(Notice{Event: EventStarted, App: "web", Version: "v2", Revision: 3, Rollout: 7, Time: at})
	n.Notify(Notice{Event: EventAborted, App: "web", Version: "v2", Revision: 3, Rollout: 7, Message: "analysis success-rate failed", Time: at})
	closeWithin(t, n, 10*time.Second)

	if got := strings.Join(onlyAborts.events(), ","); got != "aborted" {
		t.Fatalf("receiver filtered to aborted got %q", got)
	}
	if got := strings.Join(all.events(), ","); got != "started,aborted" {
		t.Errorf("receiver of all events got %q, want started,aborted", got)
	}

	body := onlyAborts.bodies[0]
	want := map[string]any{
		"text":     "cutover: web v2 (revision 3) aborted: analysis success-rate failed",
		"event":    "aborted",
		"app":      "web",
		"version":  "v2",
		"revision": float64(3),
		"rollout":  float64(7),
		"message":  "analysis success-rate failed",
		"time":     "2025-03-01T12:00:00Z",
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("body[%q] = %v, want %v", k, body[k], v)
		}
	}
}

func TestNotifierRetriesAFailedDeliveryOnce(t *testing.T) {
	for _, tc := range []struct {
		name         string
		failures     int64
		wantRequests int64
	}{
		{name: "recovers", failures: 1, wantRequests: 2},
		{name: "stays down", failures: 100, wantRequests: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if requests.Add(1) <= tc.failures {
					w.WriteHeader(http.StatusBadGateway)
				}
			}))
			t.Cleanup(srv.Close)

			n := NewNotifier([]config.Notification{{Webhook: srv.URL}}, nil, testLogger(t))
			n.Notify(Notice{Event: EventPromoted, App: "web"})
			closeWithin(t, n, 10*time.Second)

			if got := requests.Load(); got != tc.wantRequests {
				t.Errorf("receiver got %d requests, want %d", got, tc.wantRequests)
			}
		})
	}
}

func TestNotifyNeverBlocksOnAHangingReceiver(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	// Cleanups run last-in first-out: release the handlers, then close.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	var logs syncBuffer
	n := NewNotifier([]config.Notification{{Webhook: srv.URL}}, nil, slog.New(slog.NewTextHandler(&logs, nil)))

	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := range 1000 {
			n.Notify(Notice{Event: EventStep, App: "web", Rollout: int64(i)})
		}
	}()
	select {
	case <-sent:
	case <-time.After(10 * time.Second):
		t.Fatal("Notify blocked on a receiver that never answers")
	}

	closed := make(chan struct{})
	go func() {
		defer close(closed)
		closeWithin(t, n, 300*time.Millisecond)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after its context ended")
	}
	if !strings.Contains(logs.String(), "notification dropped") {
		t.Errorf("dropped notices were not logged; log:\n%s", logs.String())
	}
}

func TestNilNotifierDoesNothing(t *testing.T) {
	var n *Notifier
	n.Notify(Notice{Event: EventStarted})
	n.Close(t.Context())
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
