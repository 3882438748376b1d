package upstream

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// A chunked answer gets its first read before its head goes out (see
// checkAnswer); the head of a stream that comes alone must not wait for
// the stream's first bytes.
func TestStreamHeadAloneGoesOutAtOnce(t *testing.T) {
	for _, contentType := range []string{"text/event-stream", "application/x-ndjson"} {
		t.Run(contentType, func(t *testing.T) {
			headSeen := make(chan struct{})
			r := newReplicaWith(t, "stream", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", contentType)
				w.WriteHeader(http.StatusOK)
				http.NewResponseController(w).Flush()
				select {
				case <-headSeen:
				case <-r.Context().Done():
					return
				}
				fmt.Fprint(w, "data: one\n\n")
				http.NewResponseController(w).Flush()
			}))
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			// The replica sends its first event only once the
			// client has the head: a proxy that held the head back
			// for it would block here until the timeout.
			_, resp, err := openStream(ctx, t, r)
			if err != nil {
				t.Fatalf("no head while the stream waits for its first event: %v", err)
			}
			defer resp.Body.Close()
			close(headSeen)
			if ev, err := readEvent(bufio.NewReader(resp.Body)); err != nil || ev != "data: one" {
				t.Fatalf("first event = %q, %v", ev, err)
			}
		})
	}
}

// openStream starts a pool of r behind a proxy and asks it for /events
// within ctx; it returns once the answer's head is in.
func openStream(ctx context.Context, t *testing.T, r *replica) (*Pool, *http.Response, error) {
	t.Helper()
	p := startPoolWith(t, Options{Health: fastHealth}, r)
	waitAllReady(t, p)
	req, err := http.NewRequestWithContext(ctx, "GET", front(t, p).URL+"/events", nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	return p, resp, err
}
