package sampleapp

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// The long-lived routes, /ws and /sse, stay open for as long as the client
// likes, which makes them the connections that a drain must end. On
// shutdown the app ends them itself: a WebSocket gets a close frame 1001
// "going away" and a stream stops, so clients see the same thing they see
// when cutover closes them at drainTimeout.

// sseInterval is the time between two events of GET /sse.
const sseInterval = 100 * time.Millisecond

// wsWriteTimeout bounds writing one echo to a WebSocket peer that does not read.
const wsWriteTimeout = 10 * time.Second

// textEventStream is the Content-Type of GET /sse.
var textEventStream = []string{"text/event-stream"}

// longLived tells the long-lived handlers that the server shuts down and
// lets the shutdown wait for the WebSocket handlers, whose hijacked
// connections http.Server.Shutdown does not track. The zero value is not
// usable; use newLongLived.
type longLived struct {
	stopping chan struct{} // closed by stop
	stopOnce sync.Once
	sockets  sync.WaitGroup // WebSocket handlers running
}

func newLongLived() *longLived {
	return &longLived{stopping: make(chan struct{})}
}

// stop asks every long-lived handler to end; it is safe to call more than once.
func (l *longLived) stop() {
	l.stopOnce.Do(func() { close(l.stopping) })
}

// wait returns nil once every WebSocket handler has returned, or ctx's
// error when ctx is done first.
func (l *longLived) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		l.sockets.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("WebSocket handlers still running: %w", ctx.Err())
	}
}

// serveWS is a WebSocket echo: each text message is answered with
// "V: message". It ends when the client closes or goes away, and closes
// with 1001 "going away" when the app shuts down.
func (b *behaviour) serveWS(w http.ResponseWriter, r *http.Request) {
	b.long.sockets.Add(1)
	defer b.long.sockets.Done()
	w.Header()["X-Version"] = b.versionHeader // on the 101 answer
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered the client with what was wrong
	}
	defer func() { _ = c.CloseNow() }()

	// The watcher closes the connection on shutdown, which also ends the
	// Read below; the handler waits for it before returning.
	var watcher sync.WaitGroup
	done := make(chan struct{})
	watcher.Go(func() {
		select {
		case <-b.long.stopping:
			_ = c.Close(websocket.StatusGoingAway, "sample app shutting down")
		case <-done:
		}
	})
	defer func() {
		close(done)
		watcher.Wait()
	}()

	prefix := b.version + ": "
	ctx := r.Context()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return // closed by the client, by the watcher, or gone
		}
		if typ != websocket.MessageText {
			_ = c.Close(websocket.StatusUnsupportedData, "text messages only")
			return
		}
		wctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
		err = c.Write(wctx, websocket.MessageText, append([]byte(prefix), msg...))
		cancel()
		if err != nil {
			return
		}
	}
}

// serveSSE streams server-sent events "data: V n" (n from 1) every
// sseInterval, the first at once, until the client goes away or the app
// shuts down.
func (b *behaviour) serveSSE(w http.ResponseWriter, r *http.Request) {
	b.header(w, textEventStream)
	w.Header().Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	tick := time.NewTicker(sseInterval)
	defer tick.Stop()
	for n := 1; ; n++ {
		if _, err := fmt.Fprintf(w, "data: %s %d\n\n", b.version, n); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return
		case <-b.long.stopping:
			return
		}
	}
}
