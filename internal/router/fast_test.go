package router

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/upstream"
)

// poolBackend returns backend name of app "web" over the replicas at urls,
// with opts (health-checked on /healthz every 20 ms unless opts.Health
// has a path), started and ready.
func poolBackend(t testing.TB, name string, opts upstream.Options, urls ...string) *Backend {
	t.Helper()
	var us []*url.URL
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		us = append(us, u)
	}
	if opts.Health.Path == "" {
		opts.Health = upstream.HealthCheck{Path: "/healthz", Interval: 20 * time.Millisecond, Timeout: time.Second}
	}
	p := upstream.NewPool(us, opts)
	p.Start(context.Background())
	t.Cleanup(p.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitAllReady(ctx); err != nil {
		t.Fatal(err)
	}
	return &Backend{App: "web", Slot: name, Version: "v-" + name, Pool: p}
}

// routerFor serves b as app "web" on a new router and returns its address.
func routerFor(t testing.TB, b *Backend) string {
	t.Helper()
	const listen = "127.0.0.1:0"
	r := newRouter(t, Route{Listen: listen, App: "web"})
	r.SetBackend("web", false, b)
	return r.Addr(listen).String()
}

// rawExchange writes request to addr on a new connection and returns
// everything the router sends back until it closes the connection; the
// test fails if that takes 5 s.
func rawExchange(t *testing.T, addr, request string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("the router did not close the connection after its answer: %v; got so far:\n%s", err, got)
	}
	return string(got)
}

// untilCloseServer is a replica that answers /healthz with an empty 200
// and every other request with a body of unknown length, ended by closing
// the connection.
func untilCloseServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if req.URL.Path == "/healthz" {
						io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
						continue
					}
					io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close "+req.URL.Path)
					return
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestFastPathRelaysChunkedAnswersWithTrailersAndKeepsTheConnection(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "part one, ")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part two")
		w.Header().Set("X-Sum", "42")
	})
	client := keepAliveClient(t)
	base := "http://" + routerFor(t, newSlotWith(t, "blue", h).backend)
	for i := range 3 {
		a := get(t, client, base+"/chunked", "")
		if a.status != 200 || a.body != "part one, part two" {
			t.Fatalf("request %d: got %d %q", i, a.status, a.body)
		}
		if i > 0 && !a.reused {
			t.Errorf("request %d: the client connection was not reused after a chunked answer", i)
		}
	}
	resp, err := client.Get(base + "/chunked")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := resp.Trailer.Get("X-Sum"); got != "42" {
		t.Errorf("trailer X-Sum = %q, want 42", got)
	}
}

func TestFastPathAnswerEndingWithItsConnectionClosesTheClientConnectionToo(t *testing.T) {
	b := poolBackend(t, "blue", upstream.Options{}, untilCloseServer(t))
	got := rawExchange(t, routerFor(t, b), "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(got)), nil)
	if err != nil {
		t.Fatalf("answer %q: %v", got, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "until close /x" {
		t.Errorf("body = %q, want %q", body, "until close /x")
	}
	if !strings.Contains(got, "\r\nConnection: close\r\n") {
		t.Errorf("answer lacks Connection: close; the client cannot tell where the body ends:\n%s", got)
	}
}

func TestFastPathAnswersPipelinedRequestsInOrder(t *testing.T) {
	addr := routerFor(t, newSlot(t, "blue").backend)
	got := rawExchange(t, addr,
		"GET /one HTTP/1.1\r\nHost: a\r\n\r\n"+
			"POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"+
			"GET /three HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(strings.NewReader(got))
	for _, want := range []string{"blue /one", "blue /two", "blue /three"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the answer %q: %v; all answers:\n%s", want, err, got)
		}
		body, _ := io.ReadAll(resp.Body)
		if string(body) != want {
			t.Errorf("body = %q, want %q", body, want)
		}
	}
}

func TestFastPathStreamsLargeBodiesBothWays(t *testing.T) {
	const size = 1 << 20
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(n))
		io.Copy(w, io.LimitReader(zeros{}, n))
	})
	base := "http://" + routerFor(t, newSlotWith(t, "blue", h).backend)
	client := keepAliveClient(t)
	for i := range 2 {
		resp, err := client.Post(base+"/upload", "application/octet-stream", io.LimitReader(zeros{}, size))
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != size || resp.StatusCode != 200 {
			t.Fatalf("round %d: %d, %d bytes back, %v; want 200 and %d bytes", i, resp.StatusCode, n, err, size)
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestRequestsTheFastPathDoesNotTakeAreServedByNetHTTP(t *testing.T) {
	var got atomic.Value
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got.Store(r.Method + " " + r.URL.Path + " " + string(body))
		io.WriteString(w, "ok "+r.URL.Path)
	})
	addr := routerFor(t, newSlotWith(t, "blue", h).backend)
	tests := []struct{ name, request, wantStatus, wantSeen string }{
		{"chunked upload", "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "200", "POST /up abc"},
		{"HTTP/1.0", "GET /old HTTP/1.0\r\nHost: a\r\n\r\n", "200", "GET /old "},
		{"escaped path", "GET /a%2Fb HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "200", "GET /a/b "},
		{"malformed head", "GET / HTTP/1.1\r\nHost a\r\n\r\n", "400", ""},
		{"no Host", "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", "400", ""},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n", "400", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got.Store("")
			answer := rawExchange(t, addr, tt.request)
			if !strings.HasPrefix(answer, "HTTP/1.") || answer[9:12] != tt.wantStatus {
				t.Fatalf("answer %q, want status %s", answer, tt.wantStatus)
			}
			if seen := got.Load().(string); seen != tt.wantSeen {
				t.Errorf("the app saw %q, want %q", seen, tt.wantSeen)
			}
		})
	}
}

// resetter resets every connection it gets a request on, before any byte
// of an answer, and counts them.
func resetter(hits *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			return
		}
		hits.Add(1)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	})
}

func TestFastPathRetriesResetGETOnAnotherEndpointButNotPOST(t *testing.T) {
	var resets atomic.Int64
	bad := httptest.NewServer(resetter(&resets))
	t.Cleanup(bad.Close)
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "good "+r.Method)
	}))
	t.Cleanup(good.Close)
	b := poolBackend(t, "blue", upstream.Options{Retries: 1}, bad.URL, good.URL)
	base := "http://" + routerFor(t, b)
	client := keepAliveClient(t)

	for i := range 4 {
		a := get(t, client, base+"/x", "")
		if a.status != 200 || a.body != "good GET" {
			t.Fatalf("GET %d = %d %q, want 200 from the good endpoint", i, a.status, a.body)
		}
	}
	if resets.Load() < 2 {
		t.Fatalf("the resetting endpoint saw %d GETs, want at least 2 (round robin)", resets.Load())
	}
	failed := 0
	for range 4 {
		resp, err := client.Post(base+"/x", "text/plain", strings.NewReader("data"))
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusBadGateway {
			failed++
		}
	}
	if failed == 0 {
		t.Errorf("no POST got 502: a POST whose connection was reset must not be sent again")
	}
}

func TestFastPathEjectsACrashedReplicaWithoutFailingGETs(t *testing.T) {
	crashed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "crashed")
	}))
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "good")
	}))
	t.Cleanup(good.Close)
	b := poolBackend(t, "blue", upstream.Options{Retries: 1, PassiveFailures: 2, EjectFor: time.Minute}, crashed.URL, good.URL)
	base := "http://" + routerFor(t, b)
	client := keepAliveClient(t)
	get(t, client, base+"/warm", "")
	get(t, client, base+"/warm", "")
	crashed.Close()

	for i := range 10 {
		if a := get(t, client, base+"/x", ""); a.status != 200 || a.body != "good" {
			t.Fatalf("GET %d after the crash = %d %q, want 200 good", i, a.status, a.body)
		}
	}
	if n := b.Pool.ReadyCount(); n != 1 {
		t.Errorf("%d endpoints ready, want 1: the crashed replica is still in rotation", n)
	}
}

func TestFastPathReplacesAKeptAliveConnectionTheAppClosed(t *testing.T) {
	app := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Method+" ok")
	}))
	// Like many app servers, close kept-alive connections idle this long.
	app.Config.IdleTimeout = 50 * time.Millisecond
	app.Start()
	t.Cleanup(app.Close)
	b := poolBackend(t, "blue", upstream.Options{}, app.URL)
	base := "http://" + routerFor(t, b)
	client := keepAliveClient(t)
	get(t, client, base+"/x", "")
	for i := range 4 {
		// A POST cannot be sent twice, so it must not go out on a
		// connection the app has closed.
		time.Sleep(150 * time.Millisecond)
		resp, err := client.Post(base+"/x", "text/plain", strings.NewReader("data"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		time.Sleep(150 * time.Millisecond)
		a := get(t, client, base+"/x", "")
		if a.status != 200 || resp.StatusCode != 200 || string(body) != "POST ok" {
			t.Fatalf("round %d after the app closed idle connections: POST %d %q, GET %d; want 200s", i, resp.StatusCode, body, a.status)
		}
	}
}

func TestCloseLongLivedEndsAFastPathEventStream(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	s := newSlotWith(t, "blue", h)
	base := "http://" + routerFor(t, s.backend)
	resp, err := http.Get(base + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "data: first\n" {
		t.Fatalf("first event: %q, %v", line, err)
	}
	if n := s.pool.LongLived(); n != 1 {
		t.Fatalf("LongLived = %d, want 1 while the stream is open", n)
	}
	if n := s.pool.CloseLongLived(); n != 1 {
		t.Fatalf("CloseLongLived closed %d, want 1", n)
	}
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(br)
		done <- err
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the client's stream is still open 5 s after CloseLongLived")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.pool.WaitIdle(ctx); err != nil {
		t.Errorf("after the stream ended: %v", err)
	}
}

func TestFastPathClosesAKeptAliveConnectionAfterIdleTimeout(t *testing.T) {
	const listen = "127.0.0.1:0"
	r := startRouter(t, Options{Server: ServerOptions{IdleTimeout: 300 * time.Millisecond}}, Route{Listen: listen, App: "web"})
	r.SetBackend("web", false, newSlot(t, "blue").backend)
	conn, err := net.Dial("tcp", r.Addr(listen).String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for i := range 3 {
		// Well within the idle timeout: the connection carries on.
		time.Sleep(100 * time.Millisecond)
		io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on the kept-alive connection: %v", i, err)
		}
		io.ReadAll(resp.Body)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if n, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: read %q, %v; want EOF once the idle timeout passes", n, err)
	}
	if idle := time.Since(start); idle < 200*time.Millisecond {
		t.Errorf("closed after %v idle, want about 300ms", idle)
	}
}

func TestFastPathDropsHopByHopHeadersBothWays(t *testing.T) {
	var seen atomic.Value
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Clone())
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Proxy-Connection", "keep-alive")
		w.Header().Set("X-App", "yes")
		io.WriteString(w, "ok")
	})
	addr := routerFor(t, newSlotWith(t, "blue", h).backend)
	answer := rawExchange(t, addr, "GET /x HTTP/1.1\r\nHost: a\r\nKeep-Alive: 300\r\nProxy-Connection: keep-alive\r\n"+
		"Proxy-Authorization: Basic eA==\r\nTE: trailers\r\nX-Client: yes\r\nConnection: close\r\n\r\n")
	got := seen.Load().(http.Header)
	for _, k := range []string{"Keep-Alive", "Proxy-Connection", "Proxy-Authorization"} {
		if v, ok := got[k]; ok {
			t.Errorf("the app got hop-by-hop header %s: %q", k, v)
		}
	}
	if got.Get("Te") != "trailers" || got.Get("X-Client") != "yes" {
		t.Errorf("the app got TE %q and X-Client %q, want trailers and yes", got.Get("Te"), got.Get("X-Client"))
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(answer)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("Proxy-Connection") != "" || resp.Header.Get("X-App") != "yes" {
		t.Errorf("answer headers %v: want X-App and no Keep-Alive or Proxy-Connection", resp.Header)
	}
}

func TestShutdownClosesIdleFastConnectionsAndLetsARequestInFlightFinish(t *testing.T) {
	const listen = "127.0.0.1:0"
	r := New(Options{})
	if err := r.SetRoutes([]Route{{Listen: listen, App: "web"}}); err != nil {
		t.Fatal(err)
	}
	s := newSlot(t, "blue")
	r.SetBackend("web", false, s.backend)
	addr := r.Addr(listen).String()

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET /warm HTTP/1.1\r\nHost: a\r\n\r\n")
	idleReader := bufio.NewReader(idle)
	resp, err := http.ReadResponse(idleReader, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)

	slow := getAsync("http://" + addr + "/slow")
	<-s.slowStarted

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdown <- r.Shutdown(ctx)
	}()
	idle.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := idleReader.ReadByte(); err != io.EOF {
		t.Errorf("idle kept-alive connection during Shutdown: %v, want it closed (EOF)", err)
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) while a request was in flight", err)
	default:
	}
	close(s.release)
	if a := <-slow; a.status != 200 || a.body != "blue /slow" {
		t.Errorf("the request in flight got %d %q, want 200 %q", a.status, a.body, "blue /slow")
	}
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
