package router

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// seenByApp is what the differential test's app reports about a request.
type seenByApp struct {
	Method, URI, Body string
	Header            http.Header
}

// reportingApp answers every request with what it saw, as JSON; the path
// picks how: /chunked streams it, /status/N answers status N, anything
// else sends it with a Content-Length.
func reportingApp(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h := r.Header.Clone()
	h.Del(headerRequestID) // random per request; checked on its own
	out, _ := json.Marshal(seenByApp{Method: r.Method, URI: r.RequestURI, Body: string(body), Header: h})
	w.Header().Set("X-Echo", "one")
	w.Header().Add("X-Echo", "two")
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/chunked":
		w.Write(out[:len(out)/2])
		w.(http.Flusher).Flush()
		w.Write(out[len(out)/2:])
	case strings.HasPrefix(r.URL.Path, "/status/"):
		var code int
		fmt.Sscan(strings.TrimPrefix(r.URL.Path, "/status/"), &code)
		w.WriteHeader(code)
		w.Write(out)
	default:
		w.Header().Set("Content-Length", fmt.Sprint(len(out)))
		w.Write(out)
	}
}

// answerSeen is what a client got: status, the end-to-end headers that
// matter, and the body.
type answerSeen struct {
	status int
	echo   []string
	ctype  string
	hasID  bool
	body   string
}

func TestFastPathTreatsRequestsAsTheNetHTTPPathDoes(t *testing.T) {
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	for _, opts := range []ServerOptions{
		{RequestID: true, Via: true},
		{RequestID: false, TrustedProxies: []netip.Prefix{loopback}},
	} {
		t.Run(fmt.Sprintf("trusted=%d,via=%v", len(opts.TrustedProxies), opts.Via), func(t *testing.T) {
			compareFastAndNetHTTP(t, opts)
		})
	}
}

// compareFastAndNetHTTP sends the same requests through routers with the
// fast path (served by the event loops, and by a goroutine per
// connection) and one without, all with opts, and compares what the app
// and the client see.
func compareFastAndNetHTTP(t *testing.T, opts ServerOptions) {
	app := newSlotWith(t, "blue", http.HandlerFunc(reportingApp))
	const listen = "127.0.0.1:0"
	fast := map[string]*Router{"event loop": startRouter(t, Options{Server: opts}, Route{Listen: listen, App: "web"})}
	opts.DisableEventLoop = true
	fast["goroutine"] = startRouter(t, Options{Server: opts}, Route{Listen: listen, App: "web"})
	opts.DisableFastPath = true
	slow := startRouter(t, Options{Server: opts}, Route{Listen: listen, App: "web"})
	for _, r := range []*Router{fast["event loop"], fast["goroutine"], slow} {
		r.SetBackend("web", false, app.backend)
	}

	requests := []string{
		"GET /plain?q=1&r=%20x HTTP/1.1\r\nHost: web.test\r\nUser-Agent: diff/1\r\nAccept: */*\r\n\r\n",
		"GET /chunked HTTP/1.1\r\nHost: web.test:8080\r\nX-Multi: a\r\nX-Multi: b\r\nCookie: c=1; d=2\r\n\r\n",
		"POST /form HTTP/1.1\r\nHost: web.test\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world",
		"PUT /empty HTTP/1.1\r\nHost: web.test\r\nContent-Length: 0\r\n\r\n",
		"DELETE /thing/7 HTTP/1.1\r\nHost: web.test\r\n\r\n",
		"OPTIONS /opts HTTP/1.1\r\nHost: web.test\r\nOrigin: https://x.test\r\n\r\n",
		"HEAD /head HTTP/1.1\r\nHost: web.test\r\n\r\n",
		"GET /status/404 HTTP/1.1\r\nHost: web.test\r\n\r\n",
		"GET /status/503 HTTP/1.1\r\nHost: web.test\r\n\r\n",
		"GET /status/204 HTTP/1.1\r\nHost: web.test\r\n\r\n",
		"GET /fwd HTTP/1.1\r\nHost: web.test\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Forwarded-Host: evil.test\r\nX-Forwarded-Proto: https\r\n\r\n",
		"GET /via HTTP/1.1\r\nHost: web.test\r\nVia: 1.0 upstream-cache\r\nX-Request-Id: given-id\r\n\r\n",
		"GET /hop HTTP/1.1\r\nHost: web.test\r\nConnection: keep-alive\r\nKeep-Alive: 300\r\nTE: trailers\r\n\r\n",
		"GET /emptyvalue HTTP/1.1\r\nHost: web.test\r\nX-Empty:\r\nX-Spaces:   padded   \r\n\r\n",
	}
	for _, raw := range requests {
		name, _, _ := strings.Cut(raw, "\r\n")
		for mode, r := range fast {
			t.Run(mode+"/"+name, func(t *testing.T) {
				got := exchangeSeen(t, r.Addr(listen).String(), raw)
				want := exchangeSeen(t, slow.Addr(listen).String(), raw)
				compareSeen(t, got, want)
			})
		}
	}
}

// compareSeen fails t where got, through the fast path, differs from
// want, through net/http.
func compareSeen(t *testing.T, got, want answerSeen) {
	t.Helper()
	if got.status != want.status || !slices.Equal(got.echo, want.echo) || got.ctype != want.ctype || got.hasID != want.hasID {
		t.Errorf("answer differs:\nfast path %+v\nnet/http  %+v", got, want)
	}
	if got.body == want.body {
		return
	}
	var g, w seenByApp
	if json.Unmarshal([]byte(got.body), &g) != nil || json.Unmarshal([]byte(want.body), &w) != nil {
		t.Fatalf("bodies differ:\nfast path %q\nnet/http  %q", got.body, want.body)
	}
	if g.Method != w.Method || g.URI != w.URI || g.Body != w.Body {
		t.Errorf("the app saw %s %s %q on the fast path, %s %s %q on net/http", g.Method, g.URI, g.Body, w.Method, w.URI, w.Body)
	}
	for _, k := range unionKeys(g.Header, w.Header) {
		if !slices.Equal(g.Header[k], w.Header[k]) {
			t.Errorf("the app saw %s %q on the fast path, %q on net/http", k, g.Header[k], w.Header[k])
		}
	}
}

func exchangeSeen(t *testing.T, addr, raw string) answerSeen {
	t.Helper()
	answer := rawExchange(t, addr, strings.Replace(raw, "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1))
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(answer)), req)
	if err != nil {
		t.Fatalf("answer %q: %v", answer, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return answerSeen{
		status: resp.StatusCode, echo: resp.Header.Values("X-Echo"), ctype: resp.Header.Get("Content-Type"),
		hasID: resp.Header.Get(headerRequestID) != "", body: string(body),
	}
}

func unionKeys(a, b http.Header) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
