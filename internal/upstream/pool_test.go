package upstream

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// replica is an httptest server standing in for one replica: /healthz
// answers 200 while healthy is true and 503 otherwise; every other path
// answers with the replica's name.
type replica struct {
	name    string
	srv     *httptest.Server
	healthy atomic.Bool
	checks  atomic.Int64
}

func newReplica(t *testing.T, name string, healthy bool) *replica {
	t.Helper()
	r := newReplicaWith(t, name, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("X-Seen-Forwarded-For", req.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Seen-Forwarded-Host", req.Header.Get("X-Forwarded-Host"))
		w.Header().Set("X-Seen-Forwarded-Proto", req.Header.Get("X-Forwarded-Proto"))
		w.Header()["X-Seen-Forwarded"] = req.Header.Values("Forwarded")
		io.WriteString(w, name+" "+req.URL.Path)
	}))
	r.healthy.Store(healthy)
	return r
}

// newReplicaWith is a healthy replica whose paths other than /healthz go
// to h.
func newReplicaWith(t *testing.T, name string, h http.Handler) *replica {
	t.Helper()
	r := &replica{name: name}
	r.healthy.Store(true)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/healthz" {
			r.checks.Add(1)
			if !r.healthy.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, "ok")
			return
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *replica) url(t *testing.T) *url.URL {
	t.Helper()
	u, err := url.Parse(r.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

var fastHealth = HealthCheck{Path: "/healthz", Interval: 10 * time.Millisecond, Timeout: time.Second, HealthyThreshold: 1, UnhealthyThreshold: 2}

func startPool(t *testing.T, hc HealthCheck, replicas ...*replica) *Pool {
	t.Helper()
	return startPoolWith(t, Options{Health: hc}, replicas...)
}

// startPoolWith starts a pool over the replicas with opts and closes it at
// the end of the test.
func startPoolWith(t *testing.T, opts Options, replicas ...*replica) *Pool {
	t.Helper()
	var urls []*url.URL
	for _, r := range replicas {
		urls = append(urls, r.url(t))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	p := NewPool(urls, opts)
	p.Start(t.Context())
	t.Cleanup(p.Close)
	return p
}

// eventually polls cond every 5 ms for at most 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// proxyTo is the router's request path in miniature: Acquire, ServeHTTP,
// Release.
func proxyTo(p *Pool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := p.Acquire()
		if e == nil {
			http.Error(w, "no ready endpoint", http.StatusServiceUnavailable)
			return
		}
		defer e.Release()
		e.ServeHTTP(w, r)
	})
}

// front serves the pool over HTTP/1.1 and unencrypted HTTP/2, as the
// router would.
func front(t *testing.T, p *Pool) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(proxyTo(p))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// waitIdle fails the test unless every request on p ends within 5 s.
func waitIdle(t *testing.T, p *Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := p.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

func waitAllReady(t *testing.T, p *Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := p.WaitAllReady(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestEndpointsStartNotReadyAndEnterRotationAfterHealthyThreshold(t *testing.T) {
	r := newReplica(t, "a", true)
	hc := fastHealth
	hc.HealthyThreshold = 3
	p := NewPool([]*url.URL{r.url(t)}, Options{Health: hc})
	t.Cleanup(p.Close)

	if p.ReadyCount() != 0 || p.Acquire() != nil {
		t.Fatal("endpoint is in rotation before any health check ran")
	}
	p.Start(t.Context())
	waitAllReady(t, p)
	if n := r.checks.Load(); n < 3 {
		t.Errorf("ready after %d health checks, want at least 3", n)
	}
	if p.ReadyCount() != 1 || p.Size() != 1 {
		t.Errorf("ReadyCount=%d Size=%d, want 1 and 1", p.ReadyCount(), p.Size())
	}
}

func TestEndpointLeavesRotationAfterUnhealthyThresholdAndReturnsWhenHealthy(t *testing.T) {
	r := newReplica(t, "a", true)
	hc := fastHealth
	hc.UnhealthyThreshold = 3
	p := startPool(t, hc, r)
	waitAllReady(t, p)

	before := r.checks.Load()
	r.healthy.Store(false)
	eventually(t, "the failing endpoint leaves rotation", func() bool { return p.ReadyCount() == 0 })
	if failed := r.checks.Load() - before; failed < 3 {
		t.Errorf("out of rotation after %d checks, want at least 3 failures", failed)
	}
	if p.Acquire() != nil {
		t.Error("Acquire returned an endpoint that is out of rotation")
	}
	st := p.Status()[0]
	if st.Ready || !strings.Contains(st.LastError, "503") || st.LastCheck.IsZero() {
		t.Errorf("Status = %+v, want not ready with a 503 error and a check time", st)
	}

	r.healthy.Store(true)
	eventually(t, "the endpoint returns to rotation", func() bool { return p.ReadyCount() == 1 })
	if st := p.Status()[0]; !st.Ready || st.LastError != "" {
		t.Errorf("Status = %+v, want ready without error", st)
	}
}

func TestOneFailedCheckBelowUnhealthyThresholdKeepsEndpointInRotation(t *testing.T) {
	r := newReplica(t, "a", true)
	hc := fastHealth
	hc.UnhealthyThreshold = 1000
	p := startPool(t, hc, r)
	waitAllReady(t, p)

	r.healthy.Store(false)
	eventually(t, "a failed check is recorded", func() bool { return p.Status()[0].LastError != "" })
	if p.ReadyCount() != 1 {
		t.Error("endpoint left rotation before UnhealthyThreshold failures")
	}
}

func TestAcquireRoundRobinsOverReadyEndpointsOnly(t *testing.T) {
	a, b, down := newReplica(t, "a", true), newReplica(t, "b", true), newReplica(t, "down", false)
	p := startPool(t, fastHealth, a, down, b)
	eventually(t, "two endpoints are ready", func() bool { return p.ReadyCount() == 2 })

	counts := map[string]int{}
	for range 100 {
		e := p.Acquire()
		if e == nil {
			t.Fatal("Acquire returned nil with two ready endpoints")
		}
		counts[e.URL().String()]++
		e.Release()
	}
	if counts[down.srv.URL] != 0 {
		t.Errorf("the unhealthy endpoint got %d requests", counts[down.srv.URL])
	}
	if counts[a.srv.URL] != 50 || counts[b.srv.URL] != 50 {
		t.Errorf("requests per endpoint = %v, want 50 each", counts)
	}
}

func TestWaitAllReadyFailsWithContextWhenAnEndpointStaysDown(t *testing.T) {
	up, down := newReplica(t, "up", true), newReplica(t, "down", false)
	p := startPool(t, fastHealth, up, down)

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err := p.WaitAllReady(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitAllReady = %v, want a deadline error", err)
	}
	if !strings.Contains(err.Error(), down.srv.URL) || strings.Contains(err.Error(), up.srv.URL+":") {
		t.Errorf("error %q should name only the endpoint that is not ready", err)
	}
}

func TestWaitAllReadyFailsWhenPoolIsClosed(t *testing.T) {
	p := startPool(t, fastHealth, newReplica(t, "down", false))
	go p.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := p.WaitAllReady(ctx); !errors.Is(err, ErrPoolClosed) {
		t.Fatalf("WaitAllReady = %v, want ErrPoolClosed", err)
	}
}

func TestWaitAllReadyFailsForEmptyPool(t *testing.T) {
	p := NewPool(nil, Options{Health: fastHealth})
	if err := p.WaitAllReady(t.Context()); err == nil {
		t.Fatal("WaitAllReady on a pool without endpoints returned nil")
	}
}

func TestInFlightCountsAcquiredRequestsUntilReleased(t *testing.T) {
	p := startPool(t, fastHealth, newReplica(t, "a", true), newReplica(t, "b", true))
	waitAllReady(t, p)

	e1, e2 := p.Acquire(), p.Acquire()
	if p.InFlight() != 2 {
		t.Fatalf("InFlight = %d, want 2", p.InFlight())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := p.WaitIdle(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitIdle with requests in flight = %v, want a deadline error", err)
	}

	e1.Release()
	idle := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		idle <- p.WaitIdle(ctx)
	}()
	e2.Release()
	if err := <-idle; err != nil {
		t.Fatalf("WaitIdle after every release = %v", err)
	}
	if p.InFlight() != 0 {
		t.Errorf("InFlight = %d, want 0", p.InFlight())
	}
}

func TestCloseStopsHealthChecks(t *testing.T) {
	r := newReplica(t, "a", true)
	p := startPool(t, fastHealth, r)
	waitAllReady(t, p)
	p.Close()
	p.Close()

	// A check sent just before Close may still be reaching the replica;
	// a checker still running would make about ten more.
	time.Sleep(2 * fastHealth.Interval)
	after := r.checks.Load()
	time.Sleep(10 * fastHealth.Interval)
	if n := r.checks.Load(); n != after {
		t.Errorf("%d health checks ran after Close", n-after)
	}
}

func TestEndpointProxiesRequestWithForwardedHeaders(t *testing.T) {
	r := newReplica(t, "a", true)
	p := startPool(t, fastHealth, r)
	waitAllReady(t, p)
	e := p.Acquire()
	defer e.Release()

	req := httptest.NewRequest("GET", "http://app.example/hello", nil)
	req.RemoteAddr = "192.0.2.7:5555"
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)

	if rec.Code != 200 || rec.Body.String() != "a /hello" {
		t.Fatalf("got %d %q, want 200 %q", rec.Code, rec.Body.String(), "a /hello")
	}
	if got := rec.Header().Get("X-Seen-Forwarded-For"); got != "192.0.2.7" {
		t.Errorf("X-Forwarded-For = %q, want the client address", got)
	}
	if got := rec.Header().Get("X-Seen-Forwarded-Host"); got != "app.example" {
		t.Errorf("X-Forwarded-Host = %q, want the client's Host", got)
	}
}

func TestEndpointPassesTheCallersForwardingHeadersAsTheyAre(t *testing.T) {
	r := newReplica(t, "a", true)
	p := startPool(t, fastHealth, r)
	waitAllReady(t, p)
	e := p.Acquire()
	defer e.Release()

	req := httptest.NewRequest("GET", "http://app.example/hello", nil)
	req.RemoteAddr = "192.0.2.7:5555"
	req.Header.Set("X-Forwarded-For", "203.0.113.9, 192.0.2.7")
	req.Header.Set("X-Forwarded-Host", "shop.example")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Add("Forwarded", "for=203.0.113.9;proto=https")
	req.Header.Add("Forwarded", "for=192.0.2.7")
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)

	for k, want := range map[string]string{
		"X-Seen-Forwarded-For":   "203.0.113.9, 192.0.2.7",
		"X-Seen-Forwarded-Host":  "shop.example",
		"X-Seen-Forwarded-Proto": "https",
		"X-Seen-Forwarded":       "for=203.0.113.9;proto=https|for=192.0.2.7",
	} {
		if got := strings.Join(rec.Header().Values(k), "|"); got != want {
			t.Errorf("replica saw %s %q, want %q", strings.Replace(k, "X-Seen-", "X-", 1), got, want)
		}
	}
}

func TestEndpointAnswers502WhenReplicaIsGone(t *testing.T) {
	r := newReplica(t, "a", true)
	p := startPool(t, fastHealth, r)
	waitAllReady(t, p)
	e := p.Acquire()
	defer e.Release()
	r.srv.Close()

	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusBadGateway || !strings.HasPrefix(rec.Body.String(), "cutover: upstream") {
		t.Errorf("got %d %q, want 502 with a cutover message", rec.Code, rec.Body.String())
	}
}

func TestEndpointAnswers504WhenReplicaDoesNotAnswerInTime(t *testing.T) {
	slow := newReplicaWith(t, "slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	p := startPoolWith(t, Options{Health: fastHealth, ResponseHeaderTimeout: 50 * time.Millisecond}, slow)
	waitAllReady(t, p)
	srv := front(t, p)

	code, body := send(t, "GET", srv.URL+"/x", "")
	if code != http.StatusGatewayTimeout || !strings.HasPrefix(body, "cutover: upstream") {
		t.Errorf("got %d %q, want 504 with a cutover message", code, body)
	}
	waitIdle(t, p)
}
