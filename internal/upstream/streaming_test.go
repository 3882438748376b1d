package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// readEvent reads one server-sent event and returns its lines.
func readEvent(br *bufio.Reader) (string, error) {
	var lines []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return strings.Join(lines, "\n"), err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return strings.Join(lines, "\n"), nil
		}
		lines = append(lines, line)
	}
}

func TestEventStreamIsDeliveredAsWrittenAndCutByCloseLongLived(t *testing.T) {
	next := make(chan struct{})
	backendEnded := make(chan struct{})
	sse := newReplicaWith(t, "sse", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(backendEnded)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "data: two\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	p, resp, err := openStream(ctx, t, sse)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	// The replica writes "two" only after the client has read "one": a
	// proxy that buffered would block here until the timeout.
	if ev, err := readEvent(br); err != nil || ev != "data: one" {
		t.Fatalf("first event = %q, %v", ev, err)
	}
	close(next)
	if ev, err := readEvent(br); err != nil || ev != "data: two" {
		t.Fatalf("second event = %q, %v", ev, err)
	}
	if n := p.LongLived(); n != 1 {
		t.Fatalf("LongLived = %d with one event stream open, want 1", n)
	}

	if n := p.CloseLongLived(); n != 1 {
		t.Errorf("CloseLongLived = %d, want 1", n)
	}
	if _, err := io.ReadAll(br); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("reading the rest of the stream: %v, want it cut short (unexpected EOF)", err)
	}
	select {
	case <-backendEnded:
	case <-ctx.Done():
		t.Fatal("the replica's request was not canceled")
	}
	eventually(t, "the stream leaves LongLived", func() bool { return p.LongLived() == 0 })
	waitIdle(t, p)
}

func TestResponseWithKnownLengthIsNotLongLived(t *testing.T) {
	r := newReplica(t, "a", true)
	p := startPool(t, fastHealth, r)
	waitAllReady(t, p)
	srv := front(t, p)
	if code, body := send(t, "GET", srv.URL+"/x", ""); code != http.StatusOK || body != "a /x" {
		t.Fatalf("got %d %q", code, body)
	}
	if n := p.CloseLongLived(); n != 0 {
		t.Errorf("CloseLongLived = %d after a plain request ended, want 0", n)
	}
	waitIdle(t, p)
}
