package upstream

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// resetter answers every request by resetting its connection: no status,
// no byte of an answer.
func resetter(hits *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0) // close with RST
		}
		conn.Close()
	})
}

// echo answers with its name, the method and the request body.
func echo(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		io.WriteString(w, name+" "+r.Method+" "+string(body))
	})
}

func send(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body = http.NoBody
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestGetWhoseConnectionIsResetIsRetriedOnAnotherEndpoint(t *testing.T) {
	var resets atomic.Int64
	bad, good := newReplicaWith(t, "bad", resetter(&resets)), newReplicaWith(t, "good", echo("good"))
	p := startPoolWith(t, Options{Health: fastHealth, Retries: 1}, bad, good)
	waitAllReady(t, p)
	srv := front(t, p)

	// Round-robin sends every other request to the resetting endpoint
	// first.
	for i := range 4 {
		code, body := send(t, "GET", srv.URL+"/x", "")
		if code != http.StatusOK || body != "good GET " {
			t.Fatalf("GET %d = %d %q, want 200 from the good endpoint", i, code, body)
		}
	}
	if resets.Load() < 2 {
		t.Errorf("the resetting endpoint saw %d requests, want at least 2", resets.Load())
	}
	waitIdle(t, p)
}

func TestPostWhoseConnectionIsResetIsNotRetried(t *testing.T) {
	var resets, goodPosts atomic.Int64
	good := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		goodPosts.Add(1)
		echo("good").ServeHTTP(w, r)
	})
	bad, ok := newReplicaWith(t, "bad", resetter(&resets)), newReplicaWith(t, "good", good)
	p := startPoolWith(t, Options{Health: fastHealth, Retries: 3}, bad, ok)
	waitAllReady(t, p)
	srv := front(t, p)

	var answered, failed int64
	for range 4 {
		code, body := send(t, "POST", srv.URL+"/order", "one order")
		switch {
		case code == http.StatusOK && body == "good POST one order":
			answered++
		case code == http.StatusBadGateway:
			failed++
		default:
			t.Fatalf("POST = %d %q, want 200 from the good endpoint or 502", code, body)
		}
	}
	if failed == 0 || resets.Load() == 0 {
		t.Fatalf("%d POSTs failed and %d reached the resetting endpoint; round-robin should have sent some there", failed, resets.Load())
	}
	if goodPosts.Load() != answered {
		t.Errorf("the good endpoint got %d POSTs but answered %d: a reset POST was replayed", goodPosts.Load(), answered)
	}
	waitIdle(t, p)
}

func TestRequestThatCannotConnectIsRetriedOnAnotherEndpointWhateverItsMethod(t *testing.T) {
	dead, good := newReplica(t, "dead", true), newReplicaWith(t, "good", echo("good"))
	// No kept-alive connection may outlive the dead replica: a request
	// sent on one would fail after it was written, not at the dial.
	dead.srv.Config.SetKeepAlivesEnabled(false)
	// One check at Start makes both ready; the next comes too late to
	// notice the dead one.
	hc := HealthCheck{Path: "/healthz", Interval: time.Hour, Timeout: time.Second}
	p := startPoolWith(t, Options{Health: hc, Retries: 1}, dead, good)
	waitAllReady(t, p)
	dead.srv.Close()
	srv := front(t, p)

	for i := range 4 {
		code, body := send(t, "POST", srv.URL+"/order", "one order")
		if code != http.StatusOK || body != "good POST one order" {
			t.Fatalf("POST %d = %d %q, want 200 from the good endpoint with the whole body", i, code, body)
		}
	}
	waitIdle(t, p)
}

func TestRetriesZeroAnswers502WhenTheConnectionIsReset(t *testing.T) {
	var resets atomic.Int64
	p := startPoolWith(t, Options{Health: fastHealth}, newReplicaWith(t, "bad", resetter(&resets)), newReplicaWith(t, "good", echo("good")))
	waitAllReady(t, p)
	srv := front(t, p)

	codes := map[int]int{}
	for range 2 {
		code, _ := send(t, "GET", srv.URL+"/x", "")
		codes[code]++
	}
	if codes[http.StatusBadGateway] != 1 || codes[http.StatusOK] != 1 {
		t.Errorf("answers = %v, want one 502 and one 200", codes)
	}
	waitIdle(t, p)
}
