package upstream

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

func TestLeastRequestsSendsNewRequestsToTheIdleEndpoint(t *testing.T) {
	release := make(chan struct{})
	releaseSlow := sync.OnceFunc(func() { close(release) })
	slowOn := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}
			io.WriteString(w, name)
		})
	}
	a, b := newReplicaWith(t, "a", slowOn("a")), newReplicaWith(t, "b", slowOn("b"))
	p := startPoolWith(t, Options{Health: fastHealth, Balancer: LeastRequests}, a, b)
	waitAllReady(t, p)
	srv := front(t, p)
	// Registered after the servers, so it runs before they close: a
	// failed test must not leave the slow request waiting.
	t.Cleanup(releaseSlow)

	busy := p.Acquire()
	slowDone := make(chan int, 1)
	go func() {
		defer busy.Release()
		rec := httptest.NewRecorder()
		busy.ServeHTTP(rec, httptest.NewRequest("GET", "/slow", nil))
		slowDone <- rec.Code
	}()
	idle := "a"
	if busy.URL().String() == a.srv.URL {
		idle = "b"
	}

	for i := range 20 {
		resp, err := http.Get(srv.URL + "/fast")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != idle {
			t.Fatalf("request %d went to %q while it holds a slow request; want the idle %q", i, body, idle)
		}
	}
	releaseSlow()
	if code := <-slowDone; code != http.StatusOK {
		t.Errorf("slow request answered %d", code)
	}
	waitIdle(t, p)
}
