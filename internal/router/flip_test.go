package router

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitIdle waits for s's pool to have no request in flight.
func waitIdle(t *testing.T, s *slot) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.pool.WaitIdle(ctx); err != nil {
		t.Fatalf("WaitIdle on %s: %v", s.name, err)
	}
}

func TestFlipUnderConcurrentLoadFailsNoRequestAndLeavesOldBackendUntouched(t *testing.T) {
	const (
		listen  = "127.0.0.1:0"
		clients = 16
		flips   = 20
		window  = 100 * time.Millisecond // between flips: 20 × 100 ms ≈ 2 s of load
	)
	r := newRouter(t, Route{Listen: listen, App: "web"})
	blue, green := newSlot(t, "blue"), newSlot(t, "green")
	r.SetBackend("web", false, blue.backend)
	url := baseURL(t, r, listen) + "/load"

	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: clients},
		Timeout:   10 * time.Second,
	}
	defer client.CloseIdleConnections()
	var (
		stop      atomic.Bool
		succeeded atomic.Int64
		failed    atomic.Int64
		firstErr  atomic.Value
		load      sync.WaitGroup
	)
	for range clients {
		load.Go(func() {
			// Bounded in count as well as by stop.
			for i := 0; i < 1_000_000 && !stop.Load(); i++ {
				resp, err := client.Get(url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				succeeded.Add(1)
			}
		})
	}
	defer func() {
		stop.Store(true)
		load.Wait()
	}()

	active, idle := blue, green
	for i := range flips {
		time.Sleep(window / 2)
		r.SetBackend("web", false, idle.backend)
		waitIdle(t, active)
		frozen := active.requests.Load()
		servedBefore := idle.requests.Load()

		time.Sleep(window / 2)
		if got := active.requests.Load(); got != frozen {
			t.Errorf("flip %d: %s received %d requests after SetBackend and WaitIdle returned", i+1, active.name, got-frozen)
		}
		if idle.requests.Load() == servedBefore {
			t.Errorf("flip %d: %s received no request after becoming active", i+1, idle.name)
		}
		active, idle = idle, active
	}
	stop.Store(true)
	load.Wait()

	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed; first: %v", n, n+succeeded.Load(), firstErr.Load())
	}
	t.Logf("%d requests over %d flips", succeeded.Load(), flips)
}

func TestFlipLetsRequestInFlightFinishOnOldBackend(t *testing.T) {
	const listen = "127.0.0.1:0"
	r := newRouter(t, Route{Listen: listen, App: "web"})
	blue, green := newSlot(t, "blue"), newSlot(t, "green")
	r.SetBackend("web", false, blue.backend)
	base := baseURL(t, r, listen)

	slow := getAsync(base + "/slow")
	select {
	case <-blue.slowStarted:
	case <-time.After(5 * time.Second):
		t.Fatal("the slow request never reached blue")
	}

	r.SetBackend("web", false, green.backend)
	if got := get(t, http.DefaultClient, base+"/after", ""); got.body != "green /after" {
		t.Errorf("new request after the flip: got %q, want green", got.body)
	}
	if n := blue.pool.InFlight(); n != 1 {
		t.Errorf("blue InFlight = %d during the slow request, want 1", n)
	}
	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		drained <- blue.pool.WaitIdle(ctx)
	}()
	select {
	case err := <-drained:
		t.Fatalf("WaitIdle returned %v while the slow request was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}

	close(blue.release)
	if got := <-slow; got.status != 200 || got.body != "blue /slow" {
		t.Errorf("slow request: got %d %q, want 200 from blue", got.status, got.body)
	}
	if err := <-drained; err != nil {
		t.Errorf("WaitIdle after the slow request finished: %v", err)
	}
}

func TestKeepAliveConnectionGetsNewBackendOnNextRequest(t *testing.T) {
	const listen = "127.0.0.1:0"
	r := newRouter(t, Route{Listen: listen, App: "web"})
	blue, green := newSlot(t, "blue"), newSlot(t, "green")
	r.SetBackend("web", false, blue.backend)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	url := baseURL(t, r, listen) + "/"

	if got := get(t, client, url, ""); got.status != 200 || got.body != "blue /" {
		t.Fatalf("before the flip: got %d %q", got.status, got.body)
	}
	r.SetBackend("web", false, green.backend)
	waitIdle(t, blue)

	got := get(t, client, url, "")
	if got.status != 200 || got.body != "green /" {
		t.Errorf("after the flip: got %d %q, want 200 from green", got.status, got.body)
	}
	if !got.reused {
		t.Error("the second request did not reuse the kept-alive connection")
	}
}

func TestRequestThatAcquiredOldBackendDuringFlipIsRoutedAgainToNewOne(t *testing.T) {
	const listen = "127.0.0.1:0"
	blue, green := newSlot(t, "blue"), newSlot(t, "green")
	r, acquired, resume := holdingRouter(t, listen)
	r.SetBackend("web", false, blue.backend)
	url := baseURL(t, r, listen) + "/held"

	result := getAsync(url)
	select {
	case <-acquired:
	case <-time.After(5 * time.Second):
		t.Fatal("the request never acquired an endpoint")
	}
	r.SetBackend("web", false, green.backend)
	close(resume)

	if got := <-result; got.status != 200 || got.body != "green /held" {
		t.Errorf("got %d %q, want 200 from green", got.status, got.body)
	}
	if n := blue.requests.Load(); n != 0 {
		t.Errorf("blue received %d requests after it was replaced", n)
	}
	waitIdle(t, blue)
}
