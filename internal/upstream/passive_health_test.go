package upstream

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

func TestPassiveHealthEjectsAfterConsecutiveFailuresUntilEjectForAndAPassingCheck(t *testing.T) {
	var resets atomic.Int64
	var failing atomic.Bool
	failing.Store(true)
	flaky := newReplicaWith(t, "flaky", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			resetter(&resets).ServeHTTP(w, r)
			return
		}
		w.Write([]byte("ok"))
	}))
	const ejectFor = 300 * time.Millisecond
	p := startPoolWith(t, Options{Health: fastHealth, PassiveFailures: 2, EjectFor: ejectFor, MaxEjectionPercent: 100}, flaky)
	waitAllReady(t, p)
	srv := front(t, p)

	if code, _ := send(t, "GET", srv.URL+"/x", ""); code != http.StatusBadGateway {
		t.Fatalf("first failing request answered %d, want 502", code)
	}
	if p.ReadyCount() != 1 {
		t.Fatal("one failure ejected the endpoint; PassiveFailures is 2")
	}
	if code, _ := send(t, "GET", srv.URL+"/x", ""); code != http.StatusBadGateway {
		t.Fatalf("second failing request answered %d, want 502", code)
	}
	if p.ReadyCount() != 0 {
		t.Fatal("the endpoint is still in rotation after 2 failures in a row")
	}
	st := p.Status()[0]
	if st.Ready || st.EjectedUntil.IsZero() {
		t.Fatalf("Status = %+v, want not ready with an ejection time", st)
	}
	if code, _ := send(t, "GET", srv.URL+"/x", ""); code != http.StatusServiceUnavailable {
		t.Errorf("request during the ejection answered %d, want 503 (no ready endpoint)", code)
	}

	failing.Store(false)
	checks := flaky.checks.Load()
	eventually(t, "the ejected endpoint returns", func() bool { return p.ReadyCount() == 1 })
	if time.Now().Before(st.EjectedUntil) {
		t.Errorf("the endpoint returned before its ejection ended at %s", st.EjectedUntil)
	}
	if flaky.checks.Load() == checks {
		t.Error("the endpoint returned without a health check")
	}
	if code, body := send(t, "GET", srv.URL+"/x", ""); code != http.StatusOK || body != "ok" {
		t.Errorf("after its return the endpoint answered %d %q", code, body)
	}
	waitIdle(t, p)
}

func TestPassiveHealthIgnoresErrorStatusesFromTheApp(t *testing.T) {
	app := newReplicaWith(t, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	p := startPoolWith(t, Options{Health: fastHealth, PassiveFailures: 2, EjectFor: time.Minute}, app)
	waitAllReady(t, p)
	srv := front(t, p)

	for range 5 {
		if code, _ := send(t, "GET", srv.URL+"/x", ""); code != http.StatusServiceUnavailable {
			t.Fatalf("answer %d, want the app's 503", code)
		}
	}
	if p.ReadyCount() != 1 || !p.Status()[0].EjectedUntil.IsZero() {
		t.Errorf("the app's own 503s ejected the endpoint: %+v", p.Status()[0])
	}
	waitIdle(t, p)
}

func TestPassiveHealthEjectsNoMoreThanMaxEjectionPercent(t *testing.T) {
	var resets atomic.Int64
	bad := []*replica{
		newReplicaWith(t, "bad1", resetter(&resets)),
		newReplicaWith(t, "bad2", resetter(&resets)),
		newReplicaWith(t, "bad3", resetter(&resets)),
	}
	good := newReplicaWith(t, "good", echo("good"))
	// 50% of 4 endpoints: at most 2 ejected, though 3 keep failing.
	p := startPoolWith(t, Options{Health: fastHealth, PassiveFailures: 1, EjectFor: time.Minute}, append(bad, good)...)
	waitAllReady(t, p)
	srv := front(t, p)
	for range 20 {
		send(t, "GET", srv.URL+"/x", "")
	}
	ejected := 0
	for _, st := range p.Status() {
		if !st.EjectedUntil.IsZero() {
			ejected++
		}
	}
	if ejected != 2 {
		t.Errorf("%d endpoints ejected, want 2 (the cap: 50%% of 4)", ejected)
	}
	if p.ReadyCount() != 2 {
		t.Errorf("%d endpoints ready, want 2: the third failing one stays in rotation", p.ReadyCount())
	}
	waitIdle(t, p)
}

func TestPassiveHealthNeverEjectsTheOnlyEndpointByDefault(t *testing.T) {
	var resets atomic.Int64
	only := newReplicaWith(t, "only", resetter(&resets))
	p := startPoolWith(t, Options{Health: fastHealth, PassiveFailures: 1, EjectFor: time.Minute}, only)
	waitAllReady(t, p)
	srv := front(t, p)
	for range 5 {
		if code, _ := send(t, "GET", srv.URL+"/x", ""); code != http.StatusBadGateway {
			t.Fatalf("answer %d, want 502 from the failing endpoint, not 503 from an ejected one", code)
		}
	}
	if p.ReadyCount() != 1 {
		t.Errorf("the only endpoint was ejected")
	}
	waitIdle(t, p)
}
