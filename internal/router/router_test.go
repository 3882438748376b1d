package router

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/upstream"
)

// slot is one running revision for tests: a replica server that answers
// "NAME PATH", its started and ready pool, and the Backend to publish.
// /healthz is the health check and is not counted; /slow blocks until
// release is closed; /status/404 answers 404.
type slot struct {
	name     string
	srv      *httptest.Server
	pool     *upstream.Pool
	backend  *Backend
	requests atomic.Int64

	slowStarted chan struct{}
	release     chan struct{}
	startOnce   sync.Once
}

func newSlot(t testing.TB, name string) *slot {
	t.Helper()
	s := &slot{name: name, slowStarted: make(chan struct{}), release: make(chan struct{})}
	s.start(t, http.HandlerFunc(s.serve))
	return s
}

// newSlotWith is a slot whose replica answers /healthz itself and
// everything else with h.
func newSlotWith(t testing.TB, name string, h http.Handler) *slot {
	t.Helper()
	s := &slot{name: name}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(http.ResponseWriter, *http.Request) {})
	mux.Handle("/", h)
	s.start(t, mux)
	return s
}

// start runs h as the slot's replica behind a started pool and waits until
// the pool is ready.
func (s *slot) start(t testing.TB, h http.Handler) {
	t.Helper()
	s.srv = httptest.NewServer(h)
	t.Cleanup(s.srv.Close)

	u, err := url.Parse(s.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	hc := upstream.HealthCheck{Path: "/healthz", Interval: 20 * time.Millisecond, Timeout: time.Second}
	s.pool = upstream.NewPool([]*url.URL{u}, upstream.Options{Health: hc})
	s.pool.Start(context.Background())
	t.Cleanup(s.pool.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.pool.WaitAllReady(ctx); err != nil {
		t.Fatal(err)
	}
	s.backend = &Backend{App: "web", Slot: s.name, Version: "v-" + s.name, Pool: s.pool}
}

func (s *slot) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		return
	}
	s.requests.Add(1)
	switch r.URL.Path {
	case "/slow":
		s.startOnce.Do(func() { close(s.slowStarted) })
		select {
		case <-s.release:
		case <-time.After(5 * time.Second):
		}
	case "/status/404":
		w.WriteHeader(http.StatusNotFound)
	}
	io.WriteString(w, s.name+" "+r.URL.Path)
}

// newRouter returns a router serving routes, shut down when the test ends.
func newRouter(t testing.TB, routes ...Route) *Router {
	t.Helper()
	r := New(Options{})
	if err := r.SetRoutes(routes); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return r
}

func baseURL(t testing.TB, r *Router, listen string) string {
	t.Helper()
	addr := r.Addr(listen)
	if addr == nil {
		t.Fatalf("no listener for %s", listen)
	}
	return "http://" + addr.String()
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type answer struct {
	status int
	body   string
	reused bool
}

// holdingRouter returns a router serving app "web" on listen whose first
// request stops right after it took an endpoint: acquired is closed then,
// and the request goes on once the test closes resume.
func holdingRouter(t *testing.T, listen string) (r *Router, acquired, resume chan struct{}) {
	t.Helper()
	acquired, resume = make(chan struct{}), make(chan struct{})
	var once sync.Once
	r = New(Options{})
	r.testHookAcquired = func() {
		once.Do(func() {
			close(acquired)
			<-resume
		})
	}
	if err := r.SetRoutes([]Route{{Listen: listen, App: "web"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	return r, acquired, resume
}

// echoUpgrade answers an upgrade with 101 (and the extra header lines in
// extra), then echoes one line over the hijacked connection.
func echoUpgrade(w http.ResponseWriter, extra string) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n" + extra + "\r\n")
	brw.Flush()
	line, _ := brw.ReadString('\n')
	brw.WriteString(line)
	brw.Flush()
}

// dialUpgrade asks the router at addr to upgrade GET /ws to "echo" and
// returns the connection (closed when the test ends, and cut after 5 s),
// its reader and the answer.
func dialUpgrade(t *testing.T, addr string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: web\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return conn, br, resp
}

// getAsync sends a GET to url in the background; the channel gets its
// answer, or the error as the body.
func getAsync(url string) <-chan answer {
	result := make(chan answer, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			result <- answer{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		result <- answer{status: resp.StatusCode, body: string(body)}
	}()
	return result
}

// get sends one GET with the given Host header and reads the whole answer.
func get(t testing.TB, client *http.Client, rawURL, host string) answer {
	t.Helper()
	var a answer
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { a.reused = info.Reused },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a.status, a.body = resp.StatusCode, string(body)
	return a
}

func TestRoutesByHostThenLongestPathPrefix(t *testing.T) {
	const listen = "127.0.0.1:0"
	r := newRouter(t,
		Route{Listen: listen, App: "web"},
		Route{Listen: listen, App: "api", PathPrefix: "/api"},
		Route{Listen: listen, App: "shop", Hosts: []string{"Shop.Example"}},
		Route{Listen: listen, App: "shopapi", Hosts: []string{"shop.example", "www.shop.example"}, PathPrefix: "/api/"},
	)
	for _, app := range []string{"web", "api", "shop", "shopapi"} {
		r.SetBackend(app, false, newSlot(t, app).backend)
	}
	base := baseURL(t, r, listen)

	tests := []struct{ host, path, want string }{
		{"other.example", "/", "web /"},
		{"other.example", "/api", "api /api"},
		{"other.example", "/api/users", "api /api/users"},
		{"other.example", "/apiary", "web /apiary"},
		{"shop.example", "/", "shop /"},
		{"SHOP.example:8080", "/cart", "shop /cart"},
		{"shop.example.", "/cart", "shop /cart"},
		{"shop.example", "/api/v1", "shopapi /api/v1"},
		{"www.shop.example", "/api/", "shopapi /api/"},
		{"www.shop.example", "/", "web /"},
		{"shop.example", "/api", "shop /api"},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.path, func(t *testing.T) {
			got := get(t, http.DefaultClient, base+tt.path, tt.host)
			if got.status != 200 || got.body != tt.want {
				t.Errorf("got %d %q, want 200 %q", got.status, got.body, tt.want)
			}
		})
	}
}

func TestAnswers404WhenNoRouteMatchesHost(t *testing.T) {
	const listen = "127.0.0.1:0"
	r := newRouter(t, Route{Listen: listen, App: "web", Hosts: []string{"web.example"}})
	r.SetBackend("web", false, newSlot(t, "web").backend)

	got := get(t, http.DefaultClient, baseURL(t, r, listen)+"/", "other.example:80")
	if got.status != 404 || got.body != "cutover: no app for host other.example\n" {
		t.Errorf("got %d %q, want 404 naming the host", got.status, got.body)
	}
}

func TestAnswers503UntilABackendIsPublished(t *testing.T) {
	prod, preview := "127.0.0.1:0", freeAddr(t)
	r := newRouter(t, Route{Listen: prod, App: "web"}, Route{Listen: preview, App: "web", Preview: true})

	got := get(t, http.DefaultClient, baseURL(t, r, prod)+"/", "")
	if got.status != 503 || got.body != "cutover: app web has no ready revision yet\n" {
		t.Errorf("production before any backend: got %d %q", got.status, got.body)
	}
	got = get(t, http.DefaultClient, baseURL(t, r, preview)+"/", "")
	if got.status != 503 || got.body != "cutover: app web has no preview revision\n" {
		t.Errorf("preview before any backend: got %d %q", got.status, got.body)
	}

	blue, green := newSlot(t, "blue"), newSlot(t, "green")
	r.SetBackend("web", false, blue.backend)
	r.SetBackend("web", true, green.backend)
	if got := get(t, http.DefaultClient, baseURL(t, r, prod)+"/", ""); got.body != "blue /" {
		t.Errorf("production after SetBackend: got %d %q, want blue", got.status, got.body)
	}
	if got := get(t, http.DefaultClient, baseURL(t, r, preview)+"/", ""); got.body != "green /" {
		t.Errorf("preview after SetBackend: got %d %q, want green", got.status, got.body)
	}

	r.SetBackend("web", true, nil)
	if got := get(t, http.DefaultClient, baseURL(t, r, preview)+"/", ""); got.status != 503 {
		t.Errorf("preview after SetBackend(nil): got %d, want 503", got.status)
	}
}

func TestAnswers503WhenNoEndpointIsReady(t *testing.T) {
	const listen = "127.0.0.1:0"
	r := newRouter(t, Route{Listen: listen, App: "web"})
	down := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(down.Close)
	u, _ := url.Parse(down.URL)
	pool := upstream.NewPool([]*url.URL{u}, upstream.Options{Health: upstream.HealthCheck{Interval: 10 * time.Millisecond}})
	pool.Start(t.Context())
	t.Cleanup(pool.Close)
	r.SetBackend("web", false, &Backend{App: "web", Slot: "blue", Pool: pool})

	got := get(t, http.DefaultClient, baseURL(t, r, listen)+"/", "")
	if got.status != 503 || got.body != "cutover: app web has no ready endpoint\n" {
		t.Errorf("got %d %q, want 503 no ready endpoint", got.status, got.body)
	}
}

func TestSetRoutesFailsOnBusyAddressAndKeepsOldTable(t *testing.T) {
	const listen = "127.0.0.1:0"
	r := newRouter(t, Route{Listen: listen, App: "web"})
	r.SetBackend("web", false, newSlot(t, "A").backend)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	fresh := freeAddr(t)

	err = r.SetRoutes([]Route{
		{Listen: listen, App: "web", PathPrefix: "/only-this"},
		{Listen: fresh, App: "web"},
		{Listen: busy.Addr().String(), App: "api"},
	})
	if err == nil {
		t.Fatal("SetRoutes with a busy address succeeded")
	}
	if !strings.Contains(err.Error(), busy.Addr().String()) || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %q should name %s and wrap EADDRINUSE", err, busy.Addr())
	}

	if got := get(t, http.DefaultClient, baseURL(t, r, listen)+"/x", ""); got.status != 200 || got.body != "A /x" {
		t.Errorf("old table: got %d %q, want 200 %q", got.status, got.body, "A /x")
	}
	if r.Addr(fresh) != nil {
		t.Errorf("listener %s stayed after the failed SetRoutes", fresh)
	}
	ln, err := net.Listen("tcp", fresh)
	if err != nil {
		t.Fatalf("the failed SetRoutes left %s bound: %v", fresh, err)
	}
	ln.Close()
}

func TestSetRoutesRejectsConflictingRoutes(t *testing.T) {
	r := newRouter(t)
	err := r.SetRoutes([]Route{
		{Listen: "127.0.0.1:0", App: "web", Hosts: []string{"a.example"}},
		{Listen: "127.0.0.1:0", App: "api", Hosts: []string{"A.example"}},
	})
	if err == nil || !strings.Contains(err.Error(), "both claim") {
		t.Errorf("SetRoutes with two apps on the same host and prefix = %v, want a conflict error", err)
	}
	if r.Addr("127.0.0.1:0") != nil {
		t.Error("a rejected route table bound a listener")
	}
}

func TestSetRoutesKeepsListenerInUseAndClosesRemovedOne(t *testing.T) {
	kept, removed := "127.0.0.1:0", freeAddr(t)
	r := newRouter(t, Route{Listen: kept, App: "web"}, Route{Listen: removed, App: "api"})
	a, b := newSlot(t, "A"), newSlot(t, "B")
	r.SetBackend("web", false, a.backend)
	r.SetBackend("api", false, b.backend)
	addr := r.Addr(kept).String()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	if got := get(t, client, "http://"+addr+"/", ""); got.body != "A /" {
		t.Fatalf("before SetRoutes: got %q", got.body)
	}

	if err := r.SetRoutes([]Route{{Listen: kept, App: "api"}}); err != nil {
		t.Fatal(err)
	}
	if r.Addr(kept).String() != addr {
		t.Errorf("kept listener moved from %s to %s", addr, r.Addr(kept))
	}
	got := get(t, client, "http://"+addr+"/", "")
	if got.body != "B /" || !got.reused {
		t.Errorf("after SetRoutes: got %q on reused connection %v, want %q on the same connection", got.body, got.reused, "B /")
	}
	if r.Addr(removed) != nil {
		t.Errorf("removed listener %s still reported", removed)
	}
	ln, err := net.Listen("tcp", removed)
	if err != nil {
		t.Fatalf("removed listener's address is still bound after SetRoutes returned: %v", err)
	}
	ln.Close()
}

func TestShutdownStopsListenersAndLaterSetRoutesFails(t *testing.T) {
	r := New(Options{})
	if err := r.SetRoutes([]Route{{Listen: "127.0.0.1:0", App: "web"}}); err != nil {
		t.Fatal(err)
	}
	addr := r.Addr("127.0.0.1:0").String()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("%s accepts connections after Shutdown", addr)
	}
	if err := r.SetRoutes([]Route{{Listen: "127.0.0.1:0", App: "web"}}); err == nil {
		t.Error("SetRoutes after Shutdown succeeded")
	}
}
