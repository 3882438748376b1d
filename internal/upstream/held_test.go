package upstream

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fixedHead is a request head for Exchange and HeldConn.Send, with HOST
// standing for the endpoint's host.
type fixedHead string

func (h fixedHead) AppendHead(b []byte, host string) []byte {
	return append(b, strings.ReplaceAll(string(h), "HOST", host)...)
}

func get(path string) *RawRequest {
	return &RawRequest{Head: fixedHead("GET " + path + " HTTP/1.1\r\nHost: HOST\r\n\r\n"), Idempotent: true}
}

// held returns the pool's only endpoint, counted in flight until the test
// ends, and a held connection to it: one exchange leaves a kept-alive
// connection, which Hold takes.
func held(t *testing.T, p *Pool) (*Endpoint, *HeldConn) {
	t.Helper()
	waitAllReady(t, p)
	e := p.Acquire()
	t.Cleanup(e.Release)
	var res RawResponse
	if _, err := e.Exchange(get("/warm"), &res, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := res.Relay(io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	h := e.Hold()
	if h == nil {
		t.Fatal("Hold found no idle connection right after an exchange")
	}
	return e, h
}

// answer polls h.Read, as an event loop would on each readiness, until
// the answer is no longer pending; the test fails after 5 s.
func answer(t *testing.T, h *HeldConn, req *RawRequest, res *RawResponse) (AnswerState, error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := h.Read(req, res)
		if st != AnswerPending {
			return st, err
		}
		if time.Now().After(deadline) {
			t.Fatal("no answer within 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestAHeldConnectionExchangesRequestsWithoutWaiting(t *testing.T) {
	p := startPool(t, fastHealth, newReplica(t, "a", true))
	_, h := held(t, p)
	defer h.Close()
	for _, path := range []string{"/one", "/two"} {
		req := get(path)
		if _, st, err := h.Send(req, nil); st != AnswerPending || err != nil {
			t.Fatalf("Send %s: %v %v", path, st, err)
		}
		var res RawResponse
		if st, err := answer(t, h, req, &res); st != AnswerReady || err != nil {
			t.Fatalf("Read %s: %v %v", path, st, err)
		}
		body, whole := res.Buffered()
		if res.Status != 200 || !whole || string(body) != "a "+path {
			t.Fatalf("%s: %d %q (whole %v), want 200 %q", path, res.Status, body, whole, "a "+path)
		}
		if !res.Finish(h) {
			t.Fatalf("%s: the connection may not take another request", path)
		}
	}
}

func TestABrokenHeldConnectionResendsOnlyRequestsThatMayBeSentTwice(t *testing.T) {
	// The replica closes the connection on /drop without a word.
	r := newReplicaWith(t, "a", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/drop" {
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close()
			return
		}
		io.WriteString(w, "ok")
	}))
	p := startPoolWith(t, Options{Health: fastHealth, PassiveFailures: 5}, r)
	for _, tc := range []struct {
		req      *RawRequest
		want     AnswerState
		failures int64
	}{
		{get("/drop"), AnswerResend, 0},
		{&RawRequest{Head: fixedHead("POST /drop HTTP/1.1\r\nHost: HOST\r\nContent-Length: 0\r\n\r\n")}, AnswerFailed, 1},
	} {
		e, h := held(t, p)
		e.failures.Store(0)
		if _, st, err := h.Send(tc.req, nil); st != AnswerPending {
			t.Fatalf("Send: %v %v", st, err)
		}
		var res RawResponse
		st, err := answer(t, h, tc.req, &res)
		h.Close()
		if st != tc.want || err == nil {
			t.Errorf("idempotent %v: %v (%v), want %v", tc.req.Idempotent, st, err, tc.want)
		}
		if n := e.failures.Load(); n != tc.failures {
			t.Errorf("idempotent %v: %d failures counted against the endpoint, want %d", tc.req.Idempotent, n, tc.failures)
		}
	}
}

func TestAHeldConnectionSkipsEarlyHintsAndHandsALargeAnswerToRelay(t *testing.T) {
	large := strings.Repeat("x", 100<<10)
	r := newReplicaWith(t, "a", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Content-Length", fmt.Sprint(len(large)))
		io.WriteString(w, large)
	}))
	p := startPool(t, fastHealth, r)
	_, h := held(t, p)
	req := get("/large")
	if _, st, err := h.Send(req, nil); st != AnswerPending {
		t.Fatalf("Send: %v %v", st, err)
	}
	var res RawResponse
	if st, err := answer(t, h, req, &res); st != AnswerReady {
		t.Fatalf("Read: %v %v", st, err)
	}
	if res.Status != 200 {
		t.Fatalf("status %d, want the final 200 after 103", res.Status)
	}
	if _, whole := res.Buffered(); whole {
		t.Fatal("a 100 KiB body is whole in a 4 KiB buffer")
	}
	if err := h.Detach(&res); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	n, err := res.Relay(&got, []byte("HEAD|"))
	if err != nil || n != int64(len(large)) || got.String() != "HEAD|"+large {
		t.Fatalf("Relay after Detach: %d bytes, %v; got %d bytes", n, err, got.Len())
	}
}
