package sampleapp

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// maxSleep bounds GET /sleep.
const maxSleep = 60 * time.Second

// Readiness overrides set by POST /admin/ready.
const (
	readinessFromFlags int32 = iota // --never-ready and --ready-after decide
	readinessUp
	readinessDown
)

// Shared, never modified header values, so the hot path allocates none.
var (
	textPlain = []string{"text/plain; charset=utf-8"}
	appJSON   = []string{"application/json"}
)

// behaviour is the app's state. The switchable parts are atomics so that the
// request path takes no locks.
type behaviour struct {
	version       string
	versionHeader []string
	okBody        []byte // "version=V\n"
	failBody      []byte // "error version=V\n"
	neverReady    bool
	readyAt       time.Time

	failRate  atomic.Uint64 // math.Float64bits of the fraction
	latency   atomic.Int64  // time.Duration
	readiness atomic.Int32  // readinessFromFlags, readinessUp or readinessDown

	long *longLived // the /ws and /sse handlers' shutdown signal
}

func newBehaviour(o options, start time.Time) *behaviour {
	b := &behaviour{
		version:       o.version,
		versionHeader: []string{o.version},
		okBody:        []byte("version=" + o.version + "\n"),
		failBody:      []byte("error version=" + o.version + "\n"),
		neverReady:    o.neverReady,
		readyAt:       start.Add(o.readyAfter),
		long:          newLongLived(),
	}
	b.failRate.Store(math.Float64bits(o.failRate))
	b.latency.Store(int64(o.latency))
	return b
}

func (b *behaviour) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", b.serveRoot)
	mux.HandleFunc("GET /health", b.serveHealth)
	mux.HandleFunc("GET /version", b.serveVersion)
	mux.HandleFunc("GET /sleep", b.serveSleep)
	mux.HandleFunc("GET /echo", b.serveEcho)
	mux.HandleFunc("GET /ws", b.serveWS)
	mux.HandleFunc("GET /sse", b.serveSSE)
	// Without a method in the pattern, so that a GET gets 405 here rather
	// than falling through to the catch-all /.
	mux.HandleFunc("/admin/fail-rate", postOnly(b.setFailRate))
	mux.HandleFunc("/admin/latency", postOnly(b.setLatency))
	mux.HandleFunc("/admin/ready", postOnly(b.setReady))
	return mux
}

// postOnly answers anything but POST with 405.
func postOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, r.Method+" not allowed: switches take POST, like curl -X POST '"+r.URL.Path+"?value=...'",
				http.StatusMethodNotAllowed)
			return
		}
		h(w, r)
	}
}

// header sets the headers every response carries.
func (b *behaviour) header(w http.ResponseWriter, contentType []string) {
	h := w.Header()
	h["X-Version"] = b.versionHeader
	h["Content-Type"] = contentType
}

// serveRoot is the benchmarked path: two atomic loads, no allocation of its own.
func (b *behaviour) serveRoot(w http.ResponseWriter, r *http.Request) {
	b.header(w, textPlain)
	if d := time.Duration(b.latency.Load()); d > 0 && !sleep(r.Context(), d) {
		return
	}
	if rate := math.Float64frombits(b.failRate.Load()); rate > 0 && rand.Float64() < rate {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write(b.failBody)
		return
	}
	_, _ = w.Write(b.okBody)
}

func (b *behaviour) ready(now time.Time) bool {
	switch b.readiness.Load() {
	case readinessUp:
		return true
	case readinessDown:
		return false
	}
	return !b.neverReady && !now.Before(b.readyAt)
}

func (b *behaviour) serveHealth(w http.ResponseWriter, _ *http.Request) {
	b.header(w, textPlain)
	if !b.ready(time.Now()) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready"))
		return
	}
	_, _ = w.Write([]byte("ok"))
}

func (b *behaviour) serveVersion(w http.ResponseWriter, _ *http.Request) {
	b.header(w, textPlain)
	_, _ = w.Write([]byte(b.version))
}

// serveSleep holds the request for ?d=, which makes it the in-flight request
// of drain and shutdown tests. It gives up without answering if the client
// goes away.
func (b *behaviour) serveSleep(w http.ResponseWriter, r *http.Request) {
	b.header(w, textPlain)
	d, err := time.ParseDuration(r.URL.Query().Get("d"))
	if err != nil || d < 0 || d > maxSleep {
		http.Error(w, fmt.Sprintf("d=%q: want a duration from 0s to %v, like d=3s", r.URL.Query().Get("d"), maxSleep),
			http.StatusBadRequest)
		return
	}
	if !sleep(r.Context(), d) {
		return
	}
	fmt.Fprintf(w, "version=%s slept=%v", b.version, d)
}

// serveEcho answers with the request's headers as a JSON object of lists,
// with the Host the request was sent to under "Host".
func (b *behaviour) serveEcho(w http.ResponseWriter, r *http.Request) {
	b.header(w, appJSON)
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h["Host"] = []string{r.Host}
	_ = json.NewEncoder(w).Encode(h)
}

func (b *behaviour) setFailRate(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query().Get("value")
	rate, err := strconv.ParseFloat(v, 64)
	if err != nil || !(rate >= 0 && rate <= 1) {
		badValue(w, v, "a fraction from 0 to 1, like value=0.5")
		return
	}
	b.failRate.Store(math.Float64bits(rate))
	b.header(w, textPlain)
	fmt.Fprintf(w, "fail-rate=%v\n", rate)
}

func (b *behaviour) setLatency(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query().Get("value")
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		badValue(w, v, "a non-negative duration, like value=200ms")
		return
	}
	b.latency.Store(int64(d))
	b.header(w, textPlain)
	fmt.Fprintf(w, "latency=%v\n", d)
}

// setReady forces /health up (true) or down (false), overriding
// --never-ready and --ready-after.
func (b *behaviour) setReady(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query().Get("value")
	up, err := strconv.ParseBool(v)
	if err != nil {
		badValue(w, v, "true or false")
		return
	}
	if up {
		b.readiness.Store(readinessUp)
	} else {
		b.readiness.Store(readinessDown)
	}
	b.header(w, textPlain)
	fmt.Fprintf(w, "ready=%v\n", up)
}

func badValue(w http.ResponseWriter, got, want string) {
	http.Error(w, fmt.Sprintf("value=%q: want %s", got, want), http.StatusBadRequest)
}

// sleep waits d and reports whether it did; false means ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
