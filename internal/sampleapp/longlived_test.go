package sampleapp

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// dialWS opens a WebSocket to the app's /ws, bounded by ctx.
func dialWS(ctx context.Context, t *testing.T, a *runningApp) (*websocket.Conn, *http.Response) {
	t.Helper()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(a.url, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("dial /ws: %v", err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c, resp
}

// openSSE starts GET /sse, bounded by ctx, and returns the response and a
// reader of its lines.
func openSSE(ctx context.Context, t *testing.T, a *runningApp) (*http.Response, *bufio.Scanner) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url+"/sse", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /sse: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, bufio.NewScanner(resp.Body)
}

// nextEvent returns the next event's data line, skipping the blank
// separators, or "" and false when the stream ended.
func nextEvent(s *bufio.Scanner) (string, bool) {
	for s.Scan() {
		if line := s.Text(); line != "" {
			return line, true
		}
	}
	return "", false
}

func TestWebSocketEchoesTextMessagesWithTheVersion(t *testing.T) {
	a := startApp(t, "--version", "v7")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp := dialWS(ctx, t, a)
	if v := resp.Header.Get("X-Version"); v != "v7" {
		t.Errorf("101 answer has X-Version %q, want v7", v)
	}
	for _, msg := range []string{"hello", "", "second message"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("write %q: %v", msg, err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read the echo of %q: %v", msg, err)
		}
		if want := "v7: " + msg; typ != websocket.MessageText || string(got) != want {
			t.Errorf("echo of %q = %v %q, want text %q", msg, typ, got, want)
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Errorf("close: %v", err)
	}
}

func TestWebSocketRefusesBinaryMessages(t *testing.T) {
	a := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _ := dialWS(ctx, t, a)
	if err := c.Write(ctx, websocket.MessageBinary, []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusUnsupportedData {
		t.Errorf("after a binary message Read = %v (status %d), want close %d", err, got, websocket.StatusUnsupportedData)
	}
}

func TestShutdownClosesWebSocketsWithGoingAway(t *testing.T) {
	a := startApp(t, "--shutdown-delay", "5s")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _ := dialWS(ctx, t, a)
	if err := c.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatalf("read the echo: %v", err)
	}
	// The client keeps reading, as a live client does, so it answers the
	// close frame.
	closed := make(chan error, 1)
	go func() {
		_, _, err := c.Read(ctx)
		closed <- err
	}()
	a.cancel()
	select {
	case err := <-closed:
		if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
			t.Errorf("on shutdown Read = %v (status %d), want close 1001 going away", err, got)
		}
	case <-ctx.Done():
		t.Fatal("the WebSocket was still open 10s after shutdown began")
	}
	if code := a.wait(t); code != 0 {
		t.Errorf("exit code %d after closing the WebSocket, want 0; stderr:\n%s", code, a.stderr)
	}
}

func TestSSEStreamsNumberedEventsWithTheVersion(t *testing.T) {
	a := startApp(t, "--version", "v7")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, events := openSSE(ctx, t, a)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q, want text/event-stream", ct)
	}
	if v := resp.Header.Get("X-Version"); v != "v7" {
		t.Errorf("X-Version = %q, want v7", v)
	}
	for _, want := range []string{"data: v7 1", "data: v7 2", "data: v7 3"} {
		got, ok := nextEvent(events)
		if !ok {
			t.Fatalf("stream ended before %q: %v", want, events.Err())
		}
		if got != want {
			t.Fatalf("event %q, want %q", got, want)
		}
	}
}

func TestSSEStopsWhenTheClientGoesAway(t *testing.T) {
	a := startApp(t, "--shutdown-delay", "2s")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, events := openSSE(ctx, t, a)
	if _, ok := nextEvent(events); !ok {
		t.Fatalf("no first event: %v", events.Err())
	}
	resp.Body.Close()
	cancel()
	// Were the handler still streaming, shutdown would hit its 2s bound and exit 1.
	if code := a.stop(t); code != 0 {
		t.Errorf("exit code %d after the client went away, want 0 (handler still streaming?); stderr:\n%s", code, a.stderr)
	}
}

func TestShutdownEndsSSEStreams(t *testing.T) {
	a := startApp(t, "--shutdown-delay", "5s")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, events := openSSE(ctx, t, a)
	if _, ok := nextEvent(events); !ok {
		t.Fatalf("no first event: %v", events.Err())
	}
	a.cancel()
	for range 100 { // at most 10s of events at 100 ms
		if _, ok := nextEvent(events); !ok {
			if err := events.Err(); err != nil {
				t.Errorf("stream ended with %v, want a clean end", err)
			}
			if code := a.wait(t); code != 0 {
				t.Errorf("exit code %d after ending the stream, want 0; stderr:\n%s", code, a.stderr)
			}
			return
		}
	}
	t.Fatal("the stream went on for 100 events after shutdown began")
}
