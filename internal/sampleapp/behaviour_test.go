package sampleapp

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark
// measures the handler alone.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }

func BenchmarkRootHandler(b *testing.B) {
	for _, tc := range []struct {
		name     string
		failRate float64
	}{
		{"ok", 0},
		{"fail-rate-0.3", 0.3},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := newBehaviour(options{version: "v1", failRate: tc.failRate}, time.Now()).routes()
			req := httptest.NewRequest("GET", "/", nil)
			w := &discardWriter{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
	}
}

func TestRootHandlerDoesNotAllocate(t *testing.T) {
	h := newBehaviour(options{version: "v1", failRate: 0.5}, time.Now()).routes()
	req := httptest.NewRequest("GET", "/", nil)
	w := &discardWriter{header: http.Header{}}
	h.ServeHTTP(w, req) // let the mux settle its caches
	if allocs := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, req) }); allocs > 0 {
		t.Errorf("GET / allocates %v times per request in the handler, want 0", allocs)
	}
}
