package router

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/upstream"
)

// mirrorSink is a replica that records the requests it gets and answers
// each with its status.
type mirrorSink struct {
	*slot
	status int
	// hold, when set, keeps each request until the test ends.
	hold bool

	mu   sync.Mutex
	got  []sunkRequest
	done chan struct{}
}

// sunkRequest is what a replica saw of one request.
type sunkRequest struct {
	method, path string
	header       http.Header
	body         []byte
}

func newMirrorSink(t *testing.T, name string, status int, hold bool) *mirrorSink {
	t.Helper()
	s := &mirrorSink{status: status, hold: hold, done: make(chan struct{})}
	// Closed before the replica's server closes (cleanups run last
	// first), which waits for the requests it holds.
	s.slot = newSlotWith(t, name, http.HandlerFunc(s.serve))
	t.Cleanup(func() { close(s.done) })
	return s
}

func (s *mirrorSink) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.got = append(s.got, sunkRequest{r.Method, r.URL.Path, r.Header.Clone(), body})
	s.mu.Unlock()
	if s.hold {
		select {
		case <-s.done:
		case <-r.Context().Done():
		}
	}
	w.WriteHeader(s.status)
	fmt.Fprintf(w, "%s %s %x", s.name, r.URL.Path, sha256.Sum256(body))
}

func (s *mirrorSink) requests() []sunkRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sunkRequest(nil), s.got...)
}

// waitRequests waits until the sink has n requests, and then a little
// longer to see that no more come.
func (s *mirrorSink) waitRequests(t *testing.T, n int) []sunkRequest {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(s.requests()) < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	got := s.requests()
	if len(got) != n {
		t.Fatalf("%s got %d requests, want %d", s.name, len(got), n)
	}
	return got
}

// send sends a request and returns its status and body, failing the test
// on a transport error.
func send(t *testing.T, client *http.Client, method, url string, body []byte, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body = http.NoBody
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, text := do(t, client, req)
	return resp.StatusCode, text
}

func TestMirrorCopiesExactlyPercentOfStableRequestsAndMarksThem(t *testing.T) {
	const requests, percent = 200, 20
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			blue := newMirrorSink(t, "blue", http.StatusOK, false)
			green := newMirrorSink(t, "green", http.StatusOK, false)
			split := &Split{Stable: blue.backend, Mirror: &Mirror{Backend: green.backend, Percent: percent}}
			onEngine(t, e.opts, split, func(base string) {
				client := keepAliveClient(t)
				for i := range requests {
					status, body := send(t, client, http.MethodGet, fmt.Sprintf("%s/r%d", base, i), nil)
					if status != 200 || servedBy(body) != "blue" {
						t.Fatalf("request %d: %d %q, want 200 from blue", i, status, body)
					}
				}
				got := green.waitRequests(t, requests*percent/100)
				for _, r := range got {
					if r.header.Get("X-Cutover-Mirror") != "1" {
						t.Errorf("copy of %s lacks X-Cutover-Mirror: 1 (header %v)", r.path, r.header)
					}
					if r.header.Get("X-Forwarded-For") == "" {
						t.Errorf("copy of %s lacks the forwarding headers stable gets (header %v)", r.path, r.header)
					}
				}
				if n := len(blue.requests()); n != requests {
					t.Errorf("stable got %d requests, want all %d", n, requests)
				}
				// Evenly spread: every 5th request, as a weight would
				// be. The copies arrive in any order.
				copied := make(map[string]bool)
				for _, r := range got {
					copied[r.path] = true
				}
				for i := 100/percent - 1; i < requests; i += 100 / percent {
					if !copied[fmt.Sprintf("/r%d", i)] {
						t.Errorf("request /r%d was not copied; want every %dth", i, 100/percent)
					}
				}
			})
		})
	}
}

// onEngine serves app web with split on a new router with server options
// opts, and runs test with its base URL.
func onEngine(t *testing.T, opts ServerOptions, split *Split, test func(base string)) {
	t.Helper()
	const listen = "127.0.0.1:0"
	r := startRouter(t, Options{Server: opts}, Route{Listen: listen, App: "web"})
	r.SetSplit("web", split)
	test(baseURL(t, r, listen))
}

func TestMirrorNeverDelaysOrFailsTheClientsRequests(t *testing.T) {
	const requests = 150
	for _, e := range engines {
		for _, mirror := range []struct {
			name   string
			status int
			hold   bool
		}{
			{"failing", http.StatusInternalServerError, false},
			{"hanging", http.StatusOK, true},
			{"closing", 0, false},
		} {
			t.Run(e.name+"/"+mirror.name, func(t *testing.T) {
				m := metrics.New()
				blue := newMirrorSink(t, "blue", http.StatusOK, false)
				var green *slot
				if mirror.status == 0 {
					// Closes every connection without an answer.
					green = newSlotWith(t, "green", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						conn, _, err := http.NewResponseController(w).Hijack()
						if err == nil {
							conn.Close()
						}
					}))
				} else {
					green = newMirrorSink(t, "green", mirror.status, mirror.hold).slot
				}
				green.backend.Metrics = m.Backend("web", "green", "v2")
				split := &Split{Stable: blue.backend, Mirror: &Mirror{Backend: green.backend, Percent: 100}}
				onEngine(t, e.opts, split, func(base string) {
					client := keepAliveClient(t)
					start := time.Now()
					for i := range requests {
						status, body := send(t, client, http.MethodGet, fmt.Sprintf("%s/r%d", base, i), nil)
						if status != 200 || servedBy(body) != "blue" {
							t.Fatalf("request %d: %d %q, want 200 from blue", i, status, body)
						}
					}
					if took := time.Since(start); took > 3*time.Second {
						t.Errorf("%d requests took %s with a %s mirror", requests, took, mirror.name)
					}
					if mirror.hold {
						// The copies wait; those past the bound are dropped.
						want := fmt.Sprintf(`cutover_mirror_dropped_total{app="web",reason="saturated",slot="green",version="v2"} %d`, requests-maxMirrorsInFlight)
						if text := scrape(m); !strings.Contains(text, want) {
							t.Errorf("/metrics lacks %s:\n%s", want, grepLines(text, "cutover_mirror"))
						}
						return
					}
					waitWindow(t, "mirror", green.backend.Metrics, func(s metrics.WindowStats) bool {
						return s.Requests == requests && s.Errors == requests
					})
					want := fmt.Sprintf(`cutover_mirror_requests_total{app="web",code="5xx",slot="green",version="v2"} %d`, requests)
					text := scrape(m)
					if !strings.Contains(text, want) {
						t.Errorf("/metrics lacks %s:\n%s", want, grepLines(text, "cutover_mirror"))
					}
					if !strings.Contains(text, `cutover_http_requests_total{app="web",code="5xx",slot="green",version="v2"} 0`) {
						t.Errorf("copies counted as client requests:\n%s", grepLines(text, "cutover_http_requests_total"))
					}
				})
			})
		}
	}
}

func grepLines(text, prefix string) string {
	var out []string
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

func TestMirrorCopiesUnsafeMethodsOnlyWhenAskedAndSmallBodiesOnly(t *testing.T) {
	small := bytes.Repeat([]byte("s"), 10<<10) // past the fast path's buffer
	large := bytes.Repeat([]byte("L"), MaxMirrorBody+1)
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			for _, tt := range []struct {
				name    string
				methods []string
				body    []byte
				copied  bool
			}{
				{"POST by default", nil, small, false},
				{"POST when asked", []string{http.MethodPost}, small, true},
				{"POST without body when asked", []string{http.MethodPost}, nil, true},
				{"large body", []string{http.MethodPost}, large, false},
			} {
				t.Run(tt.name, func(t *testing.T) {
					m := metrics.New()
					blue := newMirrorSink(t, "blue", http.StatusOK, false)
					green := newMirrorSink(t, "green", http.StatusOK, false)
					green.backend.Metrics = m.Backend("web", "green", "v2")
					split := &Split{Stable: blue.backend, Mirror: &Mirror{Backend: green.backend, Percent: 100, Methods: tt.methods}}
					onEngine(t, e.opts, split, func(base string) {
						client := keepAliveClient(t)
						for i := range 3 {
							status, body := send(t, client, http.MethodPost, base+"/post", tt.body)
							if want := fmt.Sprintf("blue /post %x", sha256.Sum256(tt.body)); status != 200 || body != want {
								t.Fatalf("POST %d: %d %q, want 200 %q: the stable backend must get the body intact", i, status, body, want)
							}
						}
						n := 0
						if tt.copied {
							n = 3
						}
						for _, r := range green.waitRequests(t, n) {
							if r.method != http.MethodPost || !bytes.Equal(r.body, tt.body) {
								t.Errorf("copy is %s with %d bytes, want POST with the %d bytes sent", r.method, len(r.body), len(tt.body))
							}
						}
						if len(tt.body) > MaxMirrorBody {
							want := `cutover_mirror_dropped_total{app="web",reason="body",slot="green",version="v2"} 3`
							if text := scrape(m); !strings.Contains(text, want) {
								t.Errorf("/metrics lacks %s:\n%s", want, grepLines(text, "cutover_mirror"))
							}
						}
					})
				})
			}
		})
	}
}

func TestMirrorCopiesOnlyMatchingRequests(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			blue := newMirrorSink(t, "blue", http.StatusOK, false)
			green := newMirrorSink(t, "green", http.StatusOK, false)
			split := &Split{Stable: blue.backend, Mirror: &Mirror{Backend: green.backend, Percent: 100,
				Matches: []Match{{Header: "X-Tenant", Exact: "beta"}}}}
			onEngine(t, e.opts, split, func(base string) {
				client := keepAliveClient(t)
				send(t, client, http.MethodGet, base+"/other", nil, "X-Tenant", "gamma")
				send(t, client, http.MethodGet, base+"/none", nil)
				send(t, client, http.MethodGet, base+"/beta", nil, "X-Tenant", "beta")
				if got := green.waitRequests(t, 1); got[0].path != "/beta" {
					t.Errorf("copied %s, want only /beta", got[0].path)
				}
			})
		})
	}
}

func TestMirrorCopiesOnlyWhatStableServesNotTheCanarysShare(t *testing.T) {
	blue := newMirrorSink(t, "blue", http.StatusOK, false)
	green := newMirrorSink(t, "green", http.StatusOK, false)
	split := &Split{Stable: blue.backend, Canary: green.backend, Weight: 50, Mirror: &Mirror{Backend: green.backend, Percent: 100}}
	onEngine(t, ServerOptions{}, split, func(base string) {
		client := keepAliveClient(t)
		for range 10 {
			send(t, client, http.MethodGet, base+"/", nil)
		}
		got := green.waitRequests(t, 10)
		marked := 0
		for _, r := range got {
			if r.header.Get("X-Cutover-Mirror") != "" {
				marked++
			}
		}
		if marked != 5 {
			t.Errorf("%d of the canary's 10 requests were copies, want the 5 stable served", marked)
		}
	})
}

func TestSplitValidateRefusesABadMirror(t *testing.T) {
	blue := newSlot(t, "blue")
	for _, tt := range []struct {
		mirror Mirror
		want   string
	}{
		{Mirror{Percent: 50}, "no backend"},
		{Mirror{Backend: blue.backend, Percent: 0}, "outside 1..100"},
		{Mirror{Backend: blue.backend, Percent: 10, Methods: []string{"GE T"}}, "not an HTTP method"},
		{Mirror{Backend: blue.backend, Percent: 10, Matches: []Match{{Header: "X"}}}, "match 0"},
	} {
		err := (&Split{Stable: blue.backend, Mirror: &tt.mirror}).Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want an error with %q", tt.mirror, err, tt.want)
		}
	}
}

func TestDecidingWhetherToMirrorDoesNotAllocate(t *testing.T) {
	pool := upstream.NewPool(nil, upstream.Options{})
	m := newMirrorState(&Mirror{Backend: &Backend{Slot: "green", Pool: pool}, Percent: 10,
		Matches: []Match{{Header: "X-Tenant", Prefix: "be"}}})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("X-Tenant", "beta")
	method := []byte("GET")
	n := testing.AllocsPerRun(100, func() {
		in := routeInput{header: stdHeader(req.Header), method: methodName(method), copyable: true}
		m.take(&in).cancel()
	})
	if n != 0 {
		t.Errorf("deciding allocates %v times per request, want 0", n)
	}
}
