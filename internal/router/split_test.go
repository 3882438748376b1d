package router

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/upstream"
)

// splitRouter serves app "web" on a new router with split published, and
// returns the router and its URL.
func splitRouter(t testing.TB, split *Split) (*Router, string) {
	t.Helper()
	const listen = "127.0.0.1:0"
	r := newRouter(t, Route{Listen: listen, App: "web"})
	r.SetSplit("web", split)
	return r, baseURL(t, r, listen)
}

// keepAliveClient is a client reusing its connections, closed when the
// test ends.
func keepAliveClient(t testing.TB) *http.Client {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}, Timeout: 10 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// servedBy returns the slot name a test replica put first in its answer.
func servedBy(body string) string {
	name, _, _ := strings.Cut(body, " ")
	return name
}

// do sends req with client and reads the whole answer.
func do(t testing.TB, client *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// waitWindow polls m's window until cond holds on its last minute or 5 s
// pass: the router records a request just after the client has its answer.
func waitWindow(t *testing.T, what string, m *metrics.BackendMetrics, cond func(metrics.WindowStats) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := m.Window().Stats(time.Minute)
		if cond(s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: window shows %d requests, %d errors", what, s.Requests, s.Errors)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSplitSendsExactlyWeightPercentOfRequestsToCanary(t *testing.T) {
	const requests = 2000
	for _, weight := range []int{10, 25, 50} {
		t.Run(fmt.Sprint(weight), func(t *testing.T) {
			t.Parallel()
			blue, green := newSlot(t, "blue"), newSlot(t, "green")
			_, base := splitRouter(t, &Split{Stable: blue.backend, Canary: green.backend, Weight: weight})
			client := keepAliveClient(t)
			toCanary := make([]bool, requests)
			for i := range toCanary {
				got := get(t, client, base+"/", "")
				if got.status != 200 {
					t.Fatalf("request %d: status %d", i, got.status)
				}
				toCanary[i] = servedBy(got.body) == "green"
			}

			total, lastCanary, maxGap := 0, -1, 0
			for i, c := range toCanary {
				if !c {
					continue
				}
				total++
				maxGap = max(maxGap, i-lastCanary)
				lastCanary = i
			}
			if want := requests * weight / 100; total != want {
				t.Errorf("%d of %d requests reached the canary, want exactly %d", total, requests, want)
			}
			for start := 0; start+100 <= requests; start += 100 {
				n := 0
				for _, c := range toCanary[start : start+100] {
					if c {
						n++
					}
				}
				if n < weight-1 || n > weight+1 {
					t.Errorf("requests %d..%d: %d reached the canary, want %d±1", start, start+99, n, weight)
				}
			}
			// Evenly spread, not in bursts: the canary's turns come
			// every 100/weight requests.
			if limit := (100 + weight - 1) / weight; maxGap > limit {
				t.Errorf("longest run between canary requests is %d, want at most %d", maxGap, limit)
			}
		})
	}
}

func TestSplitWeightZeroNeverAndHundredAlwaysReachesCanary(t *testing.T) {
	blue, green := newSlot(t, "blue"), newSlot(t, "green")
	r, base := splitRouter(t, nil)
	client := keepAliveClient(t)
	for _, tt := range []struct {
		weight int
		want   string
	}{{0, "blue"}, {100, "green"}} {
		r.SetSplit("web", &Split{Stable: blue.backend, Canary: green.backend, Weight: tt.weight})
		for i := range 200 {
			if got := get(t, client, base+"/", ""); servedBy(got.body) != tt.want {
				t.Fatalf("weight %d, request %d: served by %q, want %s", tt.weight, i, got.body, tt.want)
			}
		}
	}
}

func TestSplitMatchesSendRequestsToCanaryWhateverTheWeight(t *testing.T) {
	blue, green := newSlot(t, "blue"), newSlot(t, "green")
	_, base := splitRouter(t, &Split{
		Stable: blue.backend,
		Canary: green.backend,
		Weight: 0,
		Matches: []Match{
			{Header: "x-canary", Exact: "yes"},
			{Header: "X-Group", Prefix: "beta-"},
			{Header: "User-Agent", Regex: regexp.MustCompile(`(?i)\bmobile\b`)},
			{Cookie: "canary", Exact: "always"},
		},
	})
	client := keepAliveClient(t)

	tests := []struct {
		name    string
		headers [][2]string
		want    string
	}{
		{"no header", nil, "blue"},
		{"header exact", [][2]string{{"X-Canary", "yes"}}, "green"},
		{"header exact other value", [][2]string{{"X-Canary", "no"}}, "blue"},
		{"header exact is whole value", [][2]string{{"X-Canary", "yes please"}}, "blue"},
		{"second header value", [][2]string{{"X-Canary", "no"}, {"X-Canary", "yes"}}, "green"},
		{"header prefix", [][2]string{{"X-Group", "beta-7"}}, "green"},
		{"header prefix mismatch", [][2]string{{"X-Group", "alpha-beta-7"}}, "blue"},
		{"header regex", [][2]string{{"User-Agent", "Foo/1.0 (Mobile; x)"}}, "green"},
		{"header regex mismatch", [][2]string{{"User-Agent", "Foo/1.0 (Automobile)"}}, "blue"},
		{"cookie", [][2]string{{"Cookie", "a=1; canary=always; b=2"}}, "green"},
		{"quoted cookie", [][2]string{{"Cookie", `canary="always"`}}, "green"},
		{"cookie in second header", [][2]string{{"Cookie", "a=1"}, {"Cookie", "canary=always"}}, "green"},
		{"cookie other value", [][2]string{{"Cookie", "canary=never"}}, "blue"},
		{"cookie value in other cookie", [][2]string{{"Cookie", "notcanary=always"}}, "blue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 5 {
				req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
				for _, h := range tt.headers {
					req.Header.Add(h[0], h[1])
				}
				if _, body := do(t, client, req); servedBy(body) != tt.want {
					t.Fatalf("served by %q, want %s", body, tt.want)
				}
			}
		})
	}
}

func TestStickyCookieKeepsEveryClientOnOneBackend(t *testing.T) {
	const (
		clients    = 200
		perClient  = 20
		weight     = 30
		concurrent = 10
	)
	blue, green := newSlot(t, "blue"), newSlot(t, "green")
	_, base := splitRouter(t, &Split{Stable: blue.backend, Canary: green.backend, Weight: weight, StickyCookie: "cutover-web"})
	transport := &http.Transport{MaxIdleConnsPerHost: concurrent}
	t.Cleanup(transport.CloseIdleConnections)

	var (
		onCanary atomic.Int64
		work     = make(chan int, clients)
		wg       sync.WaitGroup
	)
	for i := range clients {
		work <- i
	}
	close(work)
	for range concurrent {
		wg.Go(func() {
			for id := range work {
				jar, _ := cookiejar.New(nil)
				client := &http.Client{Transport: transport, Jar: jar, Timeout: 10 * time.Second}
				first := ""
				for n := range perClient {
					req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
					resp, err := client.Do(req)
					if err != nil {
						t.Errorf("client %d request %d: %v", id, n, err)
						return
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					got := servedBy(string(body))
					if n == 0 {
						first = got
						if got == "green" {
							onCanary.Add(1)
						}
						continue
					}
					if got != first {
						t.Errorf("client %d switched from %s to %s on request %d", id, first, got, n)
						return
					}
					if sc := resp.Header.Values("Set-Cookie"); len(sc) != 0 {
						t.Errorf("client %d got Set-Cookie %q on request %d though it is pinned", id, sc, n)
					}
				}
			}
		})
	}
	wg.Wait()
	// The first request of each client is assigned by weight: 30% exactly
	// when no snapshot swap intervenes.
	if n := onCanary.Load(); n < clients*weight/100-10 || n > clients*weight/100+10 {
		t.Errorf("%d of %d clients landed on the canary, want about %d", n, clients, clients*weight/100)
	}
}

func TestStickyCookieIsSetWithPathHttpOnlyAndSameSite(t *testing.T) {
	blue, green := newSlot(t, "blue"), newSlot(t, "green")
	r, base := splitRouter(t, nil)
	client := keepAliveClient(t)

	for _, tt := range []struct {
		weight int
		slot   string
	}{{100, "green"}, {0, "blue"}} {
		r.SetSplit("web", &Split{Stable: blue.backend, Canary: green.backend, Weight: tt.weight, StickyCookie: "pin"})
		req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		resp, body := do(t, client, req)
		want := "pin=" + tt.slot + "; Path=/; HttpOnly; SameSite=Lax"
		if got := resp.Header.Values("Set-Cookie"); len(got) != 1 || got[0] != want || servedBy(body) != tt.slot {
			t.Errorf("weight %d: served by %q with Set-Cookie %q, want %s with %q", tt.weight, body, got, tt.slot, want)
		}
	}
}

func TestStickyCookieBeatsWeightAndIsReassignedWhenItsSlotLeftTheSplit(t *testing.T) {
	blue, green := newSlot(t, "blue"), newSlot(t, "green")
	_, base := splitRouter(t, &Split{Stable: blue.backend, Canary: green.backend, Weight: 100, StickyCookie: "pin"})
	client := keepAliveClient(t)

	tests := []struct {
		cookie, want, wantSetCookie string
	}{
		{"pin=blue", "blue", ""},
		{"pin=green", "green", ""},
		{"pin=purple", "green", "pin=green; Path=/; HttpOnly; SameSite=Lax"},
		{"other=blue", "green", "pin=green; Path=/; HttpOnly; SameSite=Lax"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		req.Header.Set("Cookie", tt.cookie)
		resp, body := do(t, client, req)
		if servedBy(body) != tt.want || resp.Header.Get("Set-Cookie") != tt.wantSetCookie {
			t.Errorf("cookie %s: served by %q with Set-Cookie %q, want %s with %q",
				tt.cookie, body, resp.Header.Get("Set-Cookie"), tt.want, tt.wantSetCookie)
		}
	}
}

// failingCanary is a canary replica that fails every request with fail and
// counts the requests by method.
type failingCanary struct {
	*slot
	methods sync.Map // method → *atomic.Int64
}

func (c *failingCanary) count(method string) int64 {
	if n, ok := c.methods.Load(method); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

func newCountingSlot(t *testing.T, name string, h http.HandlerFunc) *failingCanary {
	t.Helper()
	c := &failingCanary{}
	c.slot = newSlotWith(t, name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := c.methods.LoadOrStore(r.Method, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		h(w, r)
	}))
	return c
}

// answerName answers "NAME PATH" like newSlot's replicas.
func answerName(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, name+" "+r.URL.Path)
	}
}

func answer500(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-From", "canary")
	w.Header().Add("Set-Cookie", "canary-session=1")
	http.Error(w, "canary broke", http.StatusInternalServerError)
}

func resetConnection(w http.ResponseWriter, r *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.SetLinger(0) // close with RST
	}
	conn.Close()
}

func TestRetryOnStableServesIdempotentRequestFromStableWhenCanaryFails(t *testing.T) {
	for _, tt := range []struct {
		name          string
		canary        http.HandlerFunc
		method        string
		wantCanaryErr bool
	}{
		{"canary answers 500", answer500, http.MethodGet, true},
		{"canary resets the connection", resetConnection, http.MethodGet, true},
		{"HEAD to canary answering 500", answer500, http.MethodHead, true},
		{"OPTIONS to canary answering 500", answer500, http.MethodOptions, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New()
			stable := newCountingSlot(t, "blue", answerName("blue"))
			canary := newCountingSlot(t, "green", tt.canary)
			stable.backend.Metrics = m.Backend("web", "blue", "v1")
			canary.backend.Metrics = m.Backend("web", "green", "v2")
			_, base := splitRouter(t, &Split{Stable: stable.backend, Canary: canary.backend, Weight: 100, RetryOnStable: true})

			req, _ := http.NewRequest(tt.method, base+"/x", nil)
			resp, body := do(t, keepAliveClient(t), req)
			if resp.StatusCode != 200 || (tt.method != http.MethodHead && body != "blue /x") {
				t.Errorf("got %s %q, want 200 from blue", resp.Status, body)
			}
			if resp.Header.Get("X-From") != "" || resp.Header.Get("Set-Cookie") != "" {
				t.Errorf("the failed canary answer leaked headers: %v", resp.Header)
			}
			// The transport itself may resend a request whose reused
			// connection broke before any answer; that is still one
			// attempt for the router.
			if n := canary.count(tt.method); n < 1 {
				t.Errorf("canary received %d %s requests, want at least 1", n, tt.method)
			}
			waitWindow(t, "canary", canary.backend.Metrics, func(s metrics.WindowStats) bool { return s.Requests == 1 && s.Errors == 1 })
			waitWindow(t, "stable", stable.backend.Metrics, func(s metrics.WindowStats) bool { return s.Requests == 1 && s.Errors == 0 })
		})
	}
}

func TestRetryOnStableNeverRetriesNonIdempotentRequests(t *testing.T) {
	stable := newCountingSlot(t, "blue", answerName("blue"))
	canary := newCountingSlot(t, "green", answer500)
	_, base := splitRouter(t, &Split{Stable: stable.backend, Canary: canary.backend, Weight: 100, RetryOnStable: true})
	client := keepAliveClient(t)

	for _, tt := range []struct {
		name, method, body string
	}{
		{"POST with body", http.MethodPost, "order=1"},
		{"POST without body", http.MethodPost, ""},
		{"DELETE", http.MethodDelete, ""},
		{"GET with body", http.MethodGet, "query"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, _ := http.NewRequest(tt.method, base+"/orders", body)
			resp, got := do(t, client, req)
			if resp.StatusCode != 500 || got != "canary broke\n" {
				t.Errorf("got %s %q, want the canary's 500", resp.Status, got)
			}
			if n := stable.count(tt.method); n != 0 {
				t.Errorf("stable received %d %s requests, want 0", n, tt.method)
			}
		})
	}
}

func TestRetryOnStablePassesCanaryAnswersBelow500Through(t *testing.T) {
	canary := newCountingSlot(t, "green", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-From", "canary")
		w.Header().Add("Set-Cookie", "canary-session=1")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "green has no "+r.URL.Path)
	})
	stable := newCountingSlot(t, "blue", answerName("blue"))
	_, base := splitRouter(t, &Split{
		Stable: stable.backend, Canary: canary.backend, Weight: 100, RetryOnStable: true, StickyCookie: "pin",
	})

	req, _ := http.NewRequest(http.MethodGet, base+"/missing", nil)
	resp, body := do(t, keepAliveClient(t), req)
	if resp.StatusCode != 404 || body != "green has no /missing" || resp.Header.Get("X-From") != "canary" {
		t.Errorf("got %s %q %v, want the canary's 404 with its headers", resp.Status, body, resp.Header)
	}
	if got := resp.Header.Values("Set-Cookie"); len(got) != 2 {
		t.Errorf("Set-Cookie %q, want the router's pin and the canary's session", got)
	}
	if n := stable.count(http.MethodGet); n != 0 {
		t.Errorf("stable received %d requests, want 0", n)
	}
}

func TestRetryOnStableStreamsCanaryAnswerBeforeItEnds(t *testing.T) {
	more := make(chan struct{})
	defer close(more)
	canary := newSlotWith(t, "green", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-more:
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		io.WriteString(w, "data: two\n\n")
	}))
	_, base := splitRouter(t, &Split{Stable: newSlot(t, "blue").backend, Canary: canary.backend, Weight: 100, RetryOnStable: true})

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || line != "data: one\n" {
		t.Fatalf("first event: %q, %v; want it before the stream ends", line, err)
	}
}

func TestRetryOnStableTunnelsCanaryUpgrade(t *testing.T) {
	m := metrics.New()
	canary := newSlotWith(t, "green", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		echoUpgrade(w, "X-From: green\r\n")
	}))
	canary.backend.Metrics = m.Backend("web", "green", "v2")
	_, base := splitRouter(t, &Split{Stable: newSlot(t, "blue").backend, Canary: canary.backend, Weight: 100, RetryOnStable: true})

	conn, br, resp := dialUpgrade(t, strings.TrimPrefix(base, "http://"))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("X-From") != "green" {
		t.Fatalf("upgrade answered %s %v, want 101 from green", resp.Status, resp.Header)
	}
	io.WriteString(conn, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo over the tunnel: %q, %v", line, err)
	}
	conn.Close()
	waitWindow(t, "canary", canary.backend.Metrics, func(s metrics.WindowStats) bool { return s.Requests == 1 && s.Errors == 0 })
}

func TestInvalidSplitSendsEverythingToStable(t *testing.T) {
	blue, green := newSlot(t, "blue"), newSlot(t, "green")
	_, base := splitRouter(t, &Split{Stable: blue.backend, Canary: green.backend, Weight: 100,
		Matches: []Match{{Header: "X-Canary", Cookie: "canary", Exact: "yes"}}})
	for range 20 {
		if got := get(t, http.DefaultClient, base+"/", ""); got.body != "blue /" {
			t.Fatalf("got %q, want blue", got.body)
		}
	}
}

func TestSplitValidateNamesEachProblem(t *testing.T) {
	pool := upstream.NewPool(nil, upstream.Options{})
	blue := &Backend{Slot: "blue", Pool: pool}
	green := &Backend{Slot: "green", Pool: pool}
	tests := []struct {
		name  string
		split Split
		want  string // "" means valid
	}{
		{"stable only", Split{Stable: blue}, ""},
		{"nothing", Split{}, ""},
		{"full", Split{Stable: blue, Canary: green, Weight: 5, StickyCookie: "pin", RetryOnStable: true,
			Matches: []Match{{Header: "X-A", Regex: regexp.MustCompile("a")}, {Cookie: "c", Prefix: "p"}}}, ""},
		{"canary without stable", Split{Canary: green}, "no stable backend"},
		{"stable without pool", Split{Stable: &Backend{Slot: "blue"}}, "stable backend (slot blue) has no endpoint pool"},
		{"canary without pool", Split{Stable: blue, Canary: &Backend{Slot: "green"}}, "canary backend (slot green) has no endpoint pool"},
		{"weight above 100", Split{Stable: blue, Canary: green, Weight: 101}, "weight 101 is outside 0..100"},
		{"negative weight", Split{Stable: blue, Canary: green, Weight: -1}, "weight -1"},
		{"match with header and cookie", Split{Stable: blue, Canary: green, Matches: []Match{{Header: "A", Cookie: "b", Exact: "x"}}}, "match 0: set exactly one of Header and Cookie"},
		{"match with neither", Split{Stable: blue, Canary: green, Matches: []Match{{Exact: "x"}}}, "match 0: set exactly one of Header and Cookie"},
		{"match with two values", Split{Stable: blue, Canary: green, Matches: []Match{{Header: "A", Exact: "x"}, {Header: "B", Exact: "x", Prefix: "y"}}}, "match 1: header B: set exactly one of Exact, Prefix and Regex"},
		{"match without value", Split{Stable: blue, Canary: green, Matches: []Match{{Cookie: "c"}}}, "match 0: cookie c: set exactly one"},
		{"bad cookie name", Split{Stable: blue, Canary: green, StickyCookie: "a b"}, `sticky cookie name "a b"`},
		{"same slot", Split{Stable: blue, Canary: &Backend{Slot: "blue", Pool: pool}, StickyCookie: "pin"}, `both in slot "blue"`},
		{"empty slot", Split{Stable: blue, Canary: &Backend{Pool: pool}, StickyCookie: "pin"}, `slot name "" cannot be a sticky cookie value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.split.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestChoosingABackendDoesNotAllocate(t *testing.T) {
	pool := upstream.NewPool(nil, upstream.Options{})
	st := newSplitState(&Split{
		Stable: &Backend{Slot: "blue", Pool: pool}, Canary: &Backend{Slot: "green", Pool: pool},
		Weight: 30, StickyCookie: "pin",
		Matches: []Match{{Header: "X-Canary", Exact: "yes"}, {Cookie: "beta", Regex: regexp.MustCompile("^on$")}},
	})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("X-Canary", "no")
	req.Header.Set("Cookie", "a=1; beta=off; pin=green")
	if n := testing.AllocsPerRun(100, func() { st.choose(stdHeader(req.Header)) }); n != 0 {
		t.Errorf("choose allocates %v times per request, want 0", n)
	}
}

func TestSetSplitUnderLoadFailsNoRequestAndRemovedBackendGetsNoNewRequest(t *testing.T) {
	const (
		clients = 16
		rounds  = 15
		pause   = 30 * time.Millisecond
	)
	blue, green := newSlot(t, "blue"), newSlot(t, "green")
	r, base := splitRouter(t, &Split{Stable: blue.backend})
	url := base + "/load"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	var (
		stop      atomic.Bool
		succeeded atomic.Int64
		failed    atomic.Int64
		firstErr  atomic.Value
		load      sync.WaitGroup
	)
	for i := range clients {
		load.Go(func() {
			for n := 0; n < 1_000_000 && !stop.Load(); n++ {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				if n%3 == 0 {
					req.Header.Set("Cookie", fmt.Sprintf("pin=%s", []string{"blue", "green"}[i%2]))
				}
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				succeeded.Add(1)
			}
		})
	}
	defer func() {
		stop.Store(true)
		load.Wait()
	}()

	stable, canary := blue, green
	for i := range rounds {
		// Start a canary, then promote it: the old stable leaves the
		// split and must get no new request once SetSplit returned.
		before := canary.requests.Load()
		r.SetSplit("web", &Split{Stable: stable.backend, Canary: canary.backend, Weight: 10 + 5*i,
			StickyCookie: "pin", RetryOnStable: true})
		// The load reaches the canary soon; how soon depends on a busy
		// machine, so wait for it rather than for a fixed time.
		for deadline := time.Now().Add(10 * time.Second); canary.requests.Load() == before; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: canary %s received no request in 10s", i+1, canary.name)
			}
		}

		r.SetSplit("web", &Split{Stable: canary.backend})
		waitIdle(t, stable)
		frozen := stable.requests.Load()
		time.Sleep(pause)
		if got := stable.requests.Load(); got != frozen {
			t.Errorf("round %d: %s received %d requests after it left the split", i+1, stable.name, got-frozen)
		}
		stable, canary = canary, stable
	}
	stop.Store(true)
	load.Wait()

	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed; first: %v", n, n+succeeded.Load(), firstErr.Load())
	}
	t.Logf("%d requests over %d rounds", succeeded.Load(), rounds)
}

func TestRequestThatAcquiredCanaryDuringSetSplitIsRoutedAgain(t *testing.T) {
	const listen = "127.0.0.1:0"
	blue, green := newSlot(t, "blue"), newSlot(t, "green")
	r, acquired, resume := holdingRouter(t, listen)
	r.SetSplit("web", &Split{Stable: blue.backend, Canary: green.backend, Weight: 100})
	url := baseURL(t, r, listen) + "/held"

	result := getAsync(url)
	select {
	case <-acquired:
	case <-time.After(5 * time.Second):
		t.Fatal("the request never acquired an endpoint")
	}
	r.SetSplit("web", &Split{Stable: blue.backend})
	close(resume)

	if got := <-result; got.status != 200 || got.body != "blue /held" {
		t.Errorf("got %d %q, want 200 from blue", got.status, got.body)
	}
	if n := green.requests.Load(); n != 0 {
		t.Errorf("the removed canary received %d requests", n)
	}
	waitIdle(t, green)
}

// BenchmarkProxyCanarySplit measures a GET through a 50% canary split,
// with and without retry on stable (the canary answers 200, so nothing is
// retried), and with a sticky cookie the client sends back.
func BenchmarkProxyCanarySplit(b *testing.B) {
	blue, green := newSlot(b, "blue"), newSlot(b, "green")
	m := metrics.New()
	blue.backend.Metrics = m.Backend("web", "blue", "v1")
	green.backend.Metrics = m.Backend("web", "green", "v2")
	r, base := splitRouter(b, nil)

	for _, bc := range []struct {
		name   string
		split  Split
		cookie string
	}{
		{"weight50", Split{Weight: 50}, ""},
		{"weight50-retryOnStable", Split{Weight: 50, RetryOnStable: true}, ""},
		{"sticky", Split{Weight: 50, StickyCookie: "pin"}, "pin=green"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			split := bc.split
			split.Stable, split.Canary = blue.backend, green.backend
			r.SetSplit("web", &split)
			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			req, _ := http.NewRequest(http.MethodGet, base+"/bench", nil)
			if bc.cookie != "" {
				req.Header.Set("Cookie", bc.cookie)
			}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %s", resp.Status)
				}
			}
		})
	}
}
