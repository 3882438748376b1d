package router

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/upstream"
)

// fastModes runs test for the fast path served by the event loops and by
// a goroutine per connection.
func fastModes(t *testing.T, test func(t *testing.T, opts ServerOptions)) {
	t.Run("event loop", func(t *testing.T) { test(t, ServerOptions{}) })
	t.Run("goroutine", func(t *testing.T) { test(t, ServerOptions{DisableEventLoop: true}) })
}

// serveApp serves h as app "web" through a router with opts and the pool
// options popts, and returns the router's address.
func serveApp(t *testing.T, opts ServerOptions, popts upstream.Options, h http.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(http.ResponseWriter, *http.Request) {})
	mux.Handle("/", h)
	app := httptest.NewServer(mux)
	t.Cleanup(app.Close)
	b := poolBackend(t, "blue", popts, app.URL)
	const listen = "127.0.0.1:0"
	r := startRouter(t, Options{Server: opts}, Route{Listen: listen, App: "web"})
	r.SetBackend("web", false, b)
	return r.Addr(listen).String()
}

func TestIdleFastConnectionsOnTheEventLoopHaveNoGoroutine(t *testing.T) {
	addr := serveApp(t, ServerOptions{}, upstream.Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	const conns = 200
	before := runtime.NumGoroutine()
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	// A goroutine per connection would add conns; the loops add none
	// (the slack is the app's own and the pool's).
	if added := runtime.NumGoroutine() - before; added > conns/4 {
		t.Errorf("%d idle kept-alive connections added %d goroutines, want none of their own", conns, added)
	}
}

func TestAClientThatDoesNotReadHoldsUpNoOtherConnection(t *testing.T) {
	fastModes(t, func(t *testing.T, opts ServerOptions) {
		// Answers that fit an endpoint connection's buffer, so that the
		// loop passes them on itself.
		pad := strings.Repeat("x", 3500)
		addr := serveApp(t, opts, upstream.Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s", r.URL.Query().Get("i"), pad)
		}))
		// The pipelined answers, 25 MB, are far more than the sockets
		// between the router and this client hold.
		const n = 7000
		stuck, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer stuck.Close()
		go func() {
			w := bufio.NewWriter(stuck)
			for i := range n {
				fmt.Fprintf(w, "GET /?i=%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
			}
			w.Flush()
		}()
		time.Sleep(300 * time.Millisecond)

		client := &http.Client{Timeout: 5 * time.Second}
		for i := range 20 {
			resp, err := client.Get("http://" + addr + "/?i=other")
			if err != nil {
				t.Fatalf("request %d of another client while one does not read: %v", i, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.HasPrefix(string(body), "other ") {
				t.Fatalf("another client got %.20q", body)
			}
		}

		stuck.SetReadDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(stuck)
		for i := range n {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("pipelined answer %d: %v", i, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf("%d %s", i, pad); err != nil || string(body) != want {
				t.Fatalf("pipelined answer %d: %.20q (%v), want %.20q", i, body, err, want)
			}
		}
	})
}

func TestAnAppSlowToAnswerGets504AfterTheResponseHeaderTimeout(t *testing.T) {
	fastModes(t, func(t *testing.T, opts ServerOptions) {
		addr := serveApp(t, opts, upstream.Options{ResponseHeaderTimeout: 200 * time.Millisecond},
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					time.Sleep(2 * time.Second)
				}
				io.WriteString(w, "ok")
			}))
		client := keepAliveClient(t)
		base := "http://" + addr
		// Warm: the loop takes only kept-alive endpoint connections.
		if a := get(t, client, base+"/", ""); a.status != 200 {
			t.Fatalf("GET /: %d", a.status)
		}
		start := time.Now()
		a := get(t, client, base+"/slow", "")
		if a.status != http.StatusGatewayTimeout || time.Since(start) > 1500*time.Millisecond {
			t.Errorf("GET /slow: %d after %v, want 504 soon after 200ms", a.status, time.Since(start).Round(time.Millisecond))
		}
		if a := get(t, client, base+"/", ""); a.status != 200 || a.body != "ok" {
			t.Errorf("GET / after the timeout: %d %q, want 200 ok", a.status, a.body)
		}
	})
}

func TestAKeptAliveConnectionStalledInItsNextHeadIsCutButAnIdleOneIsKept(t *testing.T) {
	fastModes(t, func(t *testing.T, opts ServerOptions) {
		opts.ReadHeaderTimeout = 300 * time.Millisecond
		opts.IdleTimeout = 10 * time.Second
		addr := strings.TrimPrefix(serveOptions(t, opts, http.HandlerFunc(echoHeaders)), "http://")
		// dialServed opens a connection and has one request answered on it.
		dialServed := func() (net.Conn, *bufio.Reader) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: web\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(resp.Body)
			return c, br
		}
		stalled, stalledReader := dialServed()
		idle, idleReader := dialServed()
		io.WriteString(stalled, "GET / HTTP/1.1\r\nHost: web\r\nX-Slow: ")
		start := time.Now()
		if _, err := stalledReader.ReadByte(); err != io.EOF {
			t.Fatalf("a connection stalled in its second head: %v, want it closed (EOF)", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("a connection stalled in its second head was closed after %v, want about 300ms", d)
		}
		// The idle one waits well past readHeaderTimeout.
		time.Sleep(time.Until(start.Add(3 * opts.ReadHeaderTimeout)))
		io.WriteString(idle, "GET / HTTP/1.1\r\nHost: web\r\n\r\n")
		resp, err := http.ReadResponse(idleReader, nil)
		if err != nil {
			t.Fatalf("a kept-alive connection idle for %v (under idleTimeout): %v", time.Since(start).Round(time.Millisecond), err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("second request on the idle connection: %s", resp.Status)
		}
	})
}
