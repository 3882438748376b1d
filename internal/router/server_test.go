package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"
)

// startRouter starts a router with opts serving routes, shut down when the
// test ends.
func startRouter(t testing.TB, opts Options, routes ...Route) *Router {
	t.Helper()
	r := New(opts)
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

// serveOptions publishes h as the backend of app "web" on a new router
// with server options so, and returns the router's URL.
func serveOptions(t *testing.T, so ServerOptions, h http.Handler) string {
	t.Helper()
	const listen = "127.0.0.1:0"
	r := startRouter(t, Options{Server: so}, Route{Listen: listen, App: "web"})
	r.SetBackend("web", false, newSlotWith(t, "blue", h).backend)
	return baseURL(t, r, listen)
}

// echoed is what echoHeaders answers: the request as the app saw it.
type echoed struct {
	Header http.Header
	Body   string
}

// echoHeaders answers with the request's headers and body as JSON, after
// reading the whole body.
func echoHeaders(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(echoed{Header: r.Header, Body: string(body)})
}

// seen sends req and decodes the request echoHeaders saw.
func seen(t *testing.T, client *http.Client, req *http.Request) (*http.Response, echoed) {
	t.Helper()
	resp, body := do(t, client, req)
	var e echoed
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s %s", req.Method, req.URL, resp.Status, body)
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("decode echo %q: %v", body, err)
	}
	return resp, e
}

func TestClientThatNeverFinishesItsHeadersIsDisconnectedAfterReadHeaderTimeout(t *testing.T) {
	base := serveOptions(t, ServerOptions{ReadHeaderTimeout: 300 * time.Millisecond}, http.HandlerFunc(echoHeaders))
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: web\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	// Far beyond the timeout, far below the 10 s default.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(conn)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatal("a client stalled in its headers was still connected after 5 s")
	}
}

func TestRequestHeadersOverMaxHeaderBytesGet431(t *testing.T) {
	base := serveOptions(t, ServerOptions{MaxHeaderBytes: 1024}, http.HandlerFunc(echoHeaders))
	for _, tc := range []struct {
		size int
		want int
	}{
		{size: 100, want: http.StatusOK},
		{size: 16 << 10, want: http.StatusRequestHeaderFieldsTooLarge},
	} {
		req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		req.Header.Set("X-Big", strings.Repeat("x", tc.size))
		resp, body := do(t, &http.Client{Timeout: 5 * time.Second}, req)
		if resp.StatusCode != tc.want {
			t.Errorf("%d-byte header: got %s %q, want %d", tc.size, resp.Status, body, tc.want)
		}
	}
}

func TestRequestBodyOverMaxBodyBytesGets413(t *testing.T) {
	var mu sync.Mutex
	reached := make(map[string]bool)
	base := serveOptions(t, ServerOptions{MaxBodyBytes: 1024}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reached[r.URL.Path] = true
		mu.Unlock()
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return
		}
		fmt.Fprintf(w, "read %d", n)
	}))
	client := &http.Client{Timeout: 5 * time.Second}
	// chunked hides the length so that the limit is only found while the
	// body streams through.
	chunked := func(n int) io.Reader { return io.MultiReader(bytes.NewReader(make([]byte, n))) }
	const tooLarge = "cutover: request body larger than 1024 bytes\n"
	for _, tc := range []struct {
		path     string
		body     io.Reader
		want     int
		wantBody string
	}{
		{"/small-with-length", bytes.NewReader(make([]byte, 512)), http.StatusOK, "read 512"},
		{"/small-chunked", chunked(512), http.StatusOK, "read 512"},
		{"/large-with-length", bytes.NewReader(make([]byte, 2048)), http.StatusRequestEntityTooLarge, tooLarge},
		{"/large-chunked", chunked(64 << 10), http.StatusRequestEntityTooLarge, tooLarge},
	} {
		req, _ := http.NewRequest(http.MethodPost, base+tc.path, tc.body)
		resp, body := do(t, client, req)
		if resp.StatusCode != tc.want || body != tc.wantBody {
			t.Errorf("%s: got %s %q, want %d %q", tc.path, resp.Status, body, tc.want, tc.wantBody)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if reached["/large-with-length"] {
		t.Error("a body announced larger than the limit reached the app")
	}
}

func TestExpectContinueIsAnsweredAndBodyReachesApp(t *testing.T) {
	base := serveOptions(t, ServerOptions{MaxBodyBytes: 1 << 20}, http.HandlerFunc(echoHeaders))
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	var got100 bool
	ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{Got100Continue: func() { got100 = true }})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, base+"/doc", strings.NewReader("the body"))
	req.Header.Set("Expect", "100-continue")
	_, e := seen(t, client, req)
	if !got100 {
		t.Error("client got no 100 Continue before sending its body")
	}
	if e.Body != "the body" {
		t.Errorf("app got body %q, want %q", e.Body, "the body")
	}
}

func TestExpectContinueWithBodyOverLimitIsRefusedBeforeTheBodyIsSent(t *testing.T) {
	base := serveOptions(t, ServerOptions{MaxBodyBytes: 10}, http.HandlerFunc(echoHeaders))
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	var got100 bool
	ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{Got100Continue: func() { got100 = true }})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, base+"/doc", strings.NewReader("more than ten bytes"))
	req.Header.Set("Expect", "100-continue")
	resp, _ := do(t, client, req)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || got100 {
		t.Errorf("got %s after 100 Continue %v, want 413 without 100 Continue", resp.Status, got100)
	}
}

func TestSetServerOptionsAppliesListenerTimeoutsOnNextSetRoutes(t *testing.T) {
	const listen = "127.0.0.1:0"
	routes := []Route{{Listen: listen, App: "web"}}
	r := startRouter(t, Options{}, routes...)
	r.SetBackend("web", false, newSlot(t, "blue").backend)
	addr := r.Addr(listen).String()

	r.SetServerOptions(ServerOptions{ReadHeaderTimeout: 300 * time.Millisecond})
	if err := r.SetRoutes(routes); err != nil {
		t.Fatal(err)
	}
	if got := r.Addr(listen).String(); got != addr {
		t.Fatalf("listener moved from %s to %s", addr, got)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: web\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			t.Fatal("the new ReadHeaderTimeout did not apply to the kept listener")
		}
	}
	if got := get(t, http.DefaultClient, "http://"+addr+"/", ""); got.status != http.StatusOK {
		t.Errorf("request after the change: %d, want 200", got.status)
	}
}
