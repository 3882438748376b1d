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

// eventReplica answers with an event stream: the event "data: one", then
// whatever rest writes.
func eventReplica(t *testing.T, rest func(http.ResponseWriter, *http.Request)) *replica {
	return newReplicaWith(t, "sse", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		http.NewResponseController(w).Flush()
		rest(w, r)
	}))
}

// openFirstEvent opens r's event stream through a pool and reads its first
// event, "data: one"; the stream stays open until the test ends.
func openFirstEvent(t *testing.T, r *replica) (*Pool, *bufio.Reader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	p, resp, err := openStream(ctx, t, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	br := bufio.NewReader(resp.Body)
	if ev, err := readEvent(br); err != nil || ev != "data: one" {
		t.Fatalf("first event = %q, %v", ev, err)
	}
	return p, br
}

func TestEventStreamIsDeliveredAsWrittenAndCutByCloseLongLived(t *testing.T) {
	next := make(chan struct{})
	backendEnded := make(chan struct{})
	sse := eventReplica(t, func(w http.ResponseWriter, r *http.Request) {
		defer close(backendEnded)
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "data: two\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	// The replica writes "two" only after the client has read "one": a
	// proxy that buffered would block here until the timeout.
	p, br := openFirstEvent(t, sse)
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
	case <-time.After(5 * time.Second):
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
