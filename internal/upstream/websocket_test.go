package upstream

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestWebSocketMessagesFlowThroughAnEndpointAndCloseLongLivedSendsGoingAway(t *testing.T) {
	backendSaw := make(chan websocket.StatusCode, 1)
	echoWS := newReplicaWith(t, "ws", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(t.Context())
			if err != nil {
				backendSaw <- websocket.CloseStatus(err)
				return
			}
			if err := c.Write(t.Context(), typ, msg); err != nil {
				return
			}
		}
	}))
	p := startPoolWith(t, Options{Health: fastHealth}, echoWS)
	waitAllReady(t, p)
	srv := front(t, p)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for _, msg := range []string{"one", "two", "three"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != msg {
			t.Fatalf("echo of %q = %q, %v", msg, got, err)
		}
	}
	if n := p.LongLived(); n != 1 {
		t.Fatalf("LongLived = %d with one WebSocket open, want 1", n)
	}

	if n := p.CloseLongLived(); n != 1 {
		t.Errorf("CloseLongLived = %d, want 1", n)
	}
	_, _, err = c.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
		t.Errorf("client read after CloseLongLived: %v (status %d), want close status 1001", err, got)
	}
	select {
	case got := <-backendSaw:
		if got != websocket.StatusGoingAway {
			t.Errorf("backend saw close status %d, want 1001", got)
		}
	case <-ctx.Done():
		t.Fatal("the backend's connection did not end")
	}
	eventually(t, "the closed connection leaves LongLived", func() bool { return p.LongLived() == 0 })
	waitIdle(t, p)
}
