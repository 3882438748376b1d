package router

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer collects JSON log records written from many goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(b.buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

// accessLogRouter serves app "web" from slot blue with the access log
// going to a buffer, and returns the router, its URL and the buffer.
func accessLogRouter(t *testing.T, sample float64) (*Router, string, *logBuffer) {
	t.Helper()
	buf := &logBuffer{}
	so := ServerOptions{RequestID: true, AccessLog: slog.New(slog.NewJSONHandler(buf, nil)), AccessLogSample: sample}
	const listen = "127.0.0.1:0"
	r := startRouter(t, Options{Server: so}, Route{Listen: listen, App: "web"})
	blue := newSlot(t, "blue")
	r.SetBackend("web", false, blue.backend)
	return r, baseURL(t, r, listen), buf
}

// shutdown stops r, which returns once every request has finished and so
// has been logged.
func shutdown(t *testing.T, r *Router) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAccessLogRecordsEachRequestWithWhereItWent(t *testing.T) {
	r, base, buf := accessLogRouter(t, 0)
	resp, body := do(t, http.DefaultClient, mustRequest(t, http.MethodGet, base+"/hello?x=1", "web.example"))
	shutdown(t, r)

	recs := buf.records(t)
	if len(recs) != 1 {
		t.Fatalf("got %d access log records, want 1", len(recs))
	}
	rec := recs[0]
	for k, want := range map[string]any{
		"level":      "INFO",
		"method":     "GET",
		"host":       "web.example",
		"path":       "/hello",
		"status":     float64(200),
		"bytes":      float64(len(body)),
		"app":        "web",
		"slot":       "blue",
		"version":    "v-blue",
		"request_id": resp.Header.Get("X-Request-Id"),
	} {
		if rec[k] != want {
			t.Errorf("record %s = %v, want %v", k, rec[k], want)
		}
	}
	for _, k := range []string{"duration", "upstream", "remote"} {
		if v, ok := rec[k]; !ok || v == "" {
			t.Errorf("record lacks %s: %v", k, rec)
		}
	}
}

func TestAccessLogSampleLogsAboutThatFractionOfRequests(t *testing.T) {
	r, base, buf := accessLogRouter(t, 0.5)
	client := keepAliveClient(t)
	const n = 1000
	for range n {
		resp, err := client.Get(base + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	shutdown(t, r)
	// Binomial(1000, 0.5) has a standard deviation of about 16: this
	// window is six of them either side.
	if got := len(buf.records(t)); got < 400 || got > 600 {
		t.Errorf("sample 0.5 logged %d of %d requests, want about half", got, n)
	}
}

func mustRequest(t *testing.T, method, url, host string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	return req
}
