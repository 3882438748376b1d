package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// longLivedDrain is the drainTimeout of the long-lived tests: short, so a
// test waits little for the close, and long enough for several messages
// to cross the drain.
const (
	longLivedDrain     = 2 * time.Second
	longLivedDrainFlag = "2s"
	// closeSlack is how long after drainTimeout the close may take to
	// reach the client (the router polls, writes close frames, the race
	// detector slows everything).
	closeSlack = 5 * time.Second
)

// startCLI runs the CLI against s's admin API in the background; the
// result arrives on the channel. ctx bounds the run.
func (s *setup) startCLI(ctx context.Context, args ...string) <-chan result {
	done := make(chan result, 1)
	go func() {
		cmd := exec.CommandContext(ctx, cutoverBin, args...)
		cmd.Env = append(os.Environ(), "CUTOVER_ADMIN="+s.adminURL())
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
			errb.WriteString(err.Error())
		}
		done <- result{stdout: out.String(), stderr: errb.String(), code: code}
	}()
	return done
}

// waitCLI waits for a background CLI run and fails the test unless it
// exits 0 within timeout.
func waitCLI(t *testing.T, run <-chan result, what string, timeout time.Duration) {
	t.Helper()
	select {
	case r := <-run:
		if r.code != 0 {
			t.Fatalf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", what, r.code, r.stdout, r.stderr)
		}
	case <-time.After(timeout):
		t.Fatalf("%s did not return within %s", what, timeout)
	}
}

// metricLine fails the test unless the admin /metrics has line.
func (s *setup) metricLine(t *testing.T, line string) {
	t.Helper()
	resp, err := http.Get(s.adminURL() + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read /metrics: %v", err)
	}
	for l := range strings.Lines(string(body)) {
		if strings.TrimSpace(l) == line {
			return
		}
	}
	var drained []string
	for l := range strings.Lines(string(body)) {
		if strings.HasPrefix(l, "cutover_drained") {
			drained = append(drained, strings.TrimSpace(l))
		}
	}
	t.Errorf("/metrics lacks %q; cutover_drained lines: %q", line, drained)
}

// wsClient is a WebSocket through the router with a reader that runs
// all the time, as a live client's does, so a close frame is read (and
// answered) as soon as it arrives.
type wsClient struct {
	conn    *websocket.Conn
	replies chan string
	end     chan error // the error that ended the reader
}

func dialWS(ctx context.Context, t *testing.T, url string) *wsClient {
	t.Helper()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	w := &wsClient{conn: c, replies: make(chan string, 16), end: make(chan error, 1)}
	go func() {
		for {
			_, msg, err := c.Read(ctx)
			if err != nil {
				w.end <- err
				return
			}
			select {
			case w.replies <- string(msg):
			case <-ctx.Done():
				w.end <- ctx.Err()
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = c.CloseNow()
		<-w.end
	})
	return w
}

// echo sends msg and returns the answer, or the error that ended the
// connection first.
func (w *wsClient) echo(ctx context.Context, msg string) (string, error) {
	if err := w.conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		// The connection may have closed under the write; the reader
		// has the close frame if one came.
		select {
		case err := <-w.end:
			w.end <- err
			return "", err
		case <-ctx.Done():
			return "", fmt.Errorf("write %q: %w", msg, err)
		}
	}
	select {
	case r := <-w.replies:
		return r, nil
	case err := <-w.end:
		w.end <- err // keep it for Cleanup
		return "", err
	case <-ctx.Done():
		return "", fmt.Errorf("no answer to %q: %w", msg, ctx.Err())
	}
}

func TestWebSocketKeepsItsSlotUntilDrainThenGetsGoingAway(t *testing.T) {
	s := newSetup(t)
	s.DrainTimeout = longLivedDrainFlag
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wsURL := "ws://" + s.Listen + "/ws"
	ws := dialWS(ctx, t, wsURL)
	for i := range 3 {
		msg := fmt.Sprintf("before %d", i)
		if got, err := ws.echo(ctx, msg); err != nil || got != "v1: "+msg {
			t.Fatalf("echo of %q before the deploy = %q, %v; want %q", msg, got, err, "v1: "+msg)
		}
	}

	deploy := s.startCLI(ctx, "deploy", "web", "--version", "v2")
	probe := &http.Client{Timeout: 10 * time.Second}
	defer probe.CloseIdleConnections()
	var (
		flipped     time.Time // when a plain request first reached v2
		pinnedAfter int       // WebSocket answers from v1 after that
		closeErr    error
		sent        int
	)
	// A message every 50 ms (plus the round trips) for at most the
	// deploy's timeout, the drain and the slack.
	limit := time.Now().Add(20*time.Second + longLivedDrain + closeSlack)
	for closeErr == nil {
		if time.Now().After(limit) {
			t.Fatalf("the WebSocket was still open %s after the deploy began (flip seen at %v)", time.Since(limit), flipped)
		}
		if !flipped.IsZero() && time.Since(flipped) > longLivedDrain+closeSlack {
			t.Fatalf("the WebSocket was still open %s after the flip; drainTimeout is %s", time.Since(flipped), longLivedDrain)
		}
		msg := fmt.Sprintf("during %d", sent)
		sent++
		got, err := ws.echo(ctx, msg)
		if err != nil {
			closeErr = err
			break
		}
		if got != "v1: "+msg {
			t.Fatalf("echo of %q = %q, want it from v1: a WebSocket stays on the slot it started on", msg, got)
		}
		if !flipped.IsZero() {
			pinnedAfter++
		} else if version(t, probe, s.appURL()) == "v2" {
			flipped = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := websocket.CloseStatus(closeErr); got != websocket.StatusGoingAway {
		t.Fatalf("the WebSocket ended with %v (close status %d), want close 1001 going away", closeErr, got)
	}
	if flipped.IsZero() {
		t.Fatal("the WebSocket closed before plain requests reached v2: the close came before the flip")
	}
	if pinnedAfter == 0 {
		t.Fatal("no WebSocket message was answered between the flip and the close; the drain did not keep the connection")
	}
	t.Logf("%d messages answered by v1 after the flip; closed %s after the flip was seen", pinnedAfter, time.Since(flipped))

	waitCLI(t, deploy, "cutover deploy web --version v2", time.Minute)
	ws2 := dialWS(ctx, t, wsURL)
	if got, err := ws2.echo(ctx, "after"); err != nil || got != "v2: after" {
		t.Fatalf("echo on a new WebSocket after the deploy = %q, %v; want \"v2: after\"", got, err)
	}
	for range 5 {
		if got := version(t, probe, s.appURL()); got != "v2" {
			t.Fatalf("a plain request after the deploy reached %s, want v2", got)
		}
	}
	s.metricLine(t, `cutover_drained_connections_total{app="web",outcome="closed"} 1`)
}

// sseStream is an event stream through the router, read in the
// background: each "data: ..." line arrives on events, which is closed
// when the stream ends; err then holds why.
type sseStream struct {
	resp   *http.Response
	events chan string
	err    error
}

func openSSE(ctx context.Context, t *testing.T, url string) *sseStream {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		t.Fatalf("GET %s = %d %q, want 200 text/event-stream", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{resp: resp, events: make(chan string, 16)}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			select {
			case s.events <- data:
			case <-ctx.Done():
				s.err = ctx.Err()
				return
			}
		}
		s.err = sc.Err()
	}()
	t.Cleanup(func() {
		resp.Body.Close()
		for range s.events { // until the reader has returned
		}
	})
	return s
}

// next returns the stream's next event, or false once it has ended.
// It fails the test when nothing comes within timeout.
func (s *sseStream) next(t *testing.T, timeout time.Duration) (string, bool) {
	t.Helper()
	select {
	case e, ok := <-s.events:
		return e, ok
	case <-time.After(timeout):
		t.Fatalf("no event and no end of the stream within %s", timeout)
		return "", false
	}
}

func TestSSEStreamAcrossFlip(t *testing.T) {
	s := newSetup(t)
	s.DrainTimeout = longLivedDrainFlag
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sseURL := s.appURL() + "sse"
	stream := openSSE(ctx, t, sseURL)
	if e, ok := stream.next(t, 10*time.Second); !ok || !strings.HasPrefix(e, "v1 ") {
		t.Fatalf("first event %q (stream open: %v), want one from v1", e, ok)
	}

	deploy := s.startCLI(ctx, "deploy", "web", "--version", "v2")
	probe := &http.Client{Timeout: 10 * time.Second}
	defer probe.CloseIdleConnections()
	var (
		flipped     time.Time
		pinnedAfter int
	)
	// An event comes every 100 ms; the loop ends with the stream, which
	// must come within the deploy's timeout, the drain and the slack.
	limit := time.Now().Add(20*time.Second + longLivedDrain + closeSlack)
	for {
		if time.Now().After(limit) {
			t.Fatalf("the stream was still open %s after the deploy began (flip seen at %v)", time.Since(limit), flipped)
		}
		if !flipped.IsZero() && time.Since(flipped) > longLivedDrain+closeSlack {
			t.Fatalf("the stream was still open %s after the flip; drainTimeout is %s", time.Since(flipped), longLivedDrain)
		}
		e, ok := stream.next(t, 5*time.Second)
		if !ok {
			break
		}
		if !strings.HasPrefix(e, "v1 ") {
			t.Fatalf("event %q, want it from v1: a stream stays on the slot it started on", e)
		}
		if !flipped.IsZero() {
			pinnedAfter++
		} else if version(t, probe, s.appURL()) == "v2" {
			flipped = time.Now()
		}
	}
	if flipped.IsZero() {
		t.Fatalf("the stream ended (%v) before plain requests reached v2: it ended before the flip", stream.err)
	}
	if pinnedAfter == 0 {
		t.Fatal("no event arrived between the flip and the end of the stream; the drain did not keep it")
	}
	t.Logf("%d events from v1 after the flip; the stream ended (%v) %s after the flip was seen", pinnedAfter, stream.err, time.Since(flipped))

	waitCLI(t, deploy, "cutover deploy web --version v2", time.Minute)
	stream2 := openSSE(ctx, t, sseURL)
	for range 3 {
		if e, ok := stream2.next(t, 10*time.Second); !ok || !strings.HasPrefix(e, "v2 ") {
			t.Fatalf("event on a new stream after the deploy %q (open: %v), want one from v2", e, ok)
		}
	}
	s.metricLine(t, `cutover_drained_connections_total{app="web",outcome="closed"} 1`)
}
