package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// served returns the names of the replicas that answered n GETs of /x
// through srv, with their counts.
func served(t *testing.T, srv string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		code, body := send(t, "GET", srv+"/x", "")
		if code != http.StatusOK {
			t.Fatalf("GET /x = %d %q", code, body)
		}
		got[body]++
	}
	return got
}

func urlsOf(t *testing.T, rs ...*replica) []*url.URL {
	t.Helper()
	var urls []*url.URL
	for _, r := range rs {
		urls = append(urls, r.url(t))
	}
	return urls
}

func TestSetEndpointsKeepsThoseThatStayAndChecksNewOnesBeforeRotation(t *testing.T) {
	a, b := newReplica(t, "a", true), newReplica(t, "b", true)
	c := newReplica(t, "c", false)
	p := startPool(t, fastHealth, a, b)
	waitAllReady(t, p)
	keptB := p.members()[1]
	srv := front(t, p)

	p.SetEndpoints(urlsOf(t, b, c))
	if got := p.members()[0]; got != keptB || !got.ready.Load() {
		t.Fatalf("b after SetEndpoints: same endpoint %v, ready %v; want its state kept", got == keptB, got.ready.Load())
	}
	if p.Size() != 2 || p.ReadyCount() != 1 {
		t.Fatalf("Size %d, ReadyCount %d right after SetEndpoints; want 2 and 1 (a out at once, c not checked yet)", p.Size(), p.ReadyCount())
	}
	if got := served(t, srv.URL, 10); got["b /x"] != 10 {
		t.Fatalf("answers while c fails its checks: %v, want all from b", got)
	}
	eventually(t, "c is checked", func() bool { return c.checks.Load() >= 2 })
	c.healthy.Store(true)
	waitAllReady(t, p)
	if got := served(t, srv.URL, 10); got["b /x"] != 5 || got["c /x"] != 5 {
		t.Fatalf("answers once c passed: %v, want b and c in turn", got)
	}
	checks := a.checks.Load()
	time.Sleep(10 * fastHealth.Interval)
	if n := a.checks.Load(); n > checks+1 {
		t.Errorf("a was checked %d more times after it left the pool; its health check should stop", n-checks)
	}
}

func TestRemovedEndpointFinishesItsRequestsAndCountsInFlight(t *testing.T) {
	release := make(chan struct{})
	slow := newReplicaWith(t, "slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "slow done")
	}))
	other := newReplica(t, "other", true)
	p := startPool(t, fastHealth, slow)
	waitAllReady(t, p)
	srv := front(t, p)
	answer := make(chan string, 1)
	go func() {
		code, body := send(t, "GET", srv.URL+"/x", "")
		answer <- fmt.Sprint(code, " ", body)
	}()
	eventually(t, "the request reaches slow", func() bool { return p.InFlight() == 1 })

	p.SetEndpoints(urlsOf(t, other))
	if n := p.InFlight(); n != 1 {
		t.Fatalf("InFlight = %d after slow left with a request on it, want 1", n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := p.WaitIdle(ctx); err == nil {
		t.Fatal("WaitIdle returned while the removed endpoint still served a request")
	}
	waitAllReady(t, p)
	if got := served(t, srv.URL, 4); got["other /x"] != 4 {
		t.Fatalf("new requests went to %v, want only other", got)
	}
	close(release)
	if got := <-answer; got != "200 slow done" {
		t.Fatalf("the request in flight on the removed endpoint ended with %q, want 200 slow done", got)
	}
	waitIdle(t, p)
}

func TestCloseLongLivedClosesStreamsOfRemovedEndpoints(t *testing.T) {
	sse := eventReplica(t, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	p, br := openFirstEvent(t, sse)
	p.SetEndpoints(nil)
	if p.Size() != 0 || p.InFlight() != 1 {
		t.Fatalf("Size %d, InFlight %d after the pool lost its endpoint, want 0 and 1", p.Size(), p.InFlight())
	}
	if n := p.CloseLongLived(); n != 1 {
		t.Errorf("CloseLongLived = %d, want 1", n)
	}
	if _, err := io.ReadAll(br); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("reading the rest of the stream: %v, want it cut short", err)
	}
	waitIdle(t, p)
}

func TestEndpointsSetOnAnEmptyPoolAreCheckedOnceItStarts(t *testing.T) {
	a := newReplica(t, "a", true)
	p := NewPool(nil, Options{Health: fastHealth, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	t.Cleanup(p.Close)
	p.SetEndpoints(urlsOf(t, a, a))
	if p.Size() != 1 {
		t.Fatalf("Size = %d after the same URL twice, want 1", p.Size())
	}
	time.Sleep(5 * fastHealth.Interval)
	if n := a.checks.Load(); n != 0 || p.ReadyCount() != 0 {
		t.Fatalf("%d checks, %d ready before Start; want none", n, p.ReadyCount())
	}
	p.Start(t.Context())
	waitAllReady(t, p)
	if !p.RawHTTP1() {
		t.Error("RawHTTP1 = false for plain http endpoints")
	}
	p.Close()
	p.SetEndpoints(nil)
	if p.Size() != 1 {
		t.Errorf("SetEndpoints after Close changed the pool (Size %d)", p.Size())
	}
}
