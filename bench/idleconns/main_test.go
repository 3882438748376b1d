package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// idleCounter serves "ok" and counts the connections that are idle after a
// request.
type idleCounter struct {
	mu   sync.Mutex
	idle map[net.Conn]bool
}

func (c *idleCounter) connState(conn net.Conn, s http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idle[conn] = s == http.StateIdle
}

func (c *idleCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, idle := range c.idle {
		if idle {
			n++
		}
	}
	return n
}

func TestOpenAllLeavesEveryConnectionIdleOnTheServer(t *testing.T) {
	counter := &idleCounter{idle: map[net.Conn]bool{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	srv.Config.ConnState = counter.connState
	srv.Start()
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/")

	const n = 100
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conns, errs := openAll(ctx, u, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if len(conns) != n || len(errs) != 0 {
		t.Fatalf("opened %d of %d, errors %v", len(conns), n, errs)
	}
	deadline := time.Now().Add(5 * time.Second)
	for counter.count() != n {
		if time.Now().After(deadline) {
			t.Fatalf("server sees %d idle connections, want %d", counter.count(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOpenAllCountsConnectionsTheServerClosesAsFailed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conns, errs := openAll(ctx, u, 5)
	if len(conns) != 0 {
		t.Errorf("kept %d connections the server closed", len(conns))
	}
	if got := errs["server closed the connection after the answer"]; got != 5 {
		t.Errorf("errors %v, want 5 closed by the server", errs)
	}
}

func TestRunRefusesURLsOffLoopback(t *testing.T) {
	for _, arg := range []string{"http://example.com:80/", "https://127.0.0.1:443/", "http://127.0.0.1/"} {
		if err := run(1, 0, time.Second, []string{arg}); err == nil {
			t.Errorf("run accepted %s", arg)
		}
	}
}
