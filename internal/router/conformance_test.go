package router

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The conformance corpus: raw bytes sent on one client connection to each
// of the router's HTTP engines (net/http, the fast path with a goroutine
// per connection, the fast path on the event loops), with what RFC 9110
// and 9112 make of them: the status of each answer, whether the router
// closes the connection after them, and what the apps behind it received.
// Every case ends with a probe request (Connection: close); an open
// connection answers it, a closed one does not, and a router that took
// part of a body for a request of its own answers more than it should.
//
// Apps: "web" at / and "api" at /api, both on a recording echo backend.

// probeRequest follows every case's bytes.
const probeRequest = "GET /conformance-probe HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"

// conformanceCase is one entry of the corpus.
type conformanceCase struct {
	name string
	send string
	// statuses are the answers before the probe's, in order.
	statuses []int
	// closed: the router closes the connection after them, so the probe
	// gets no answer.
	closed bool
	// seen is what the apps received, one "app METHOD URI bodyLength"
	// per request, in order, the probe's excepted.
	seen []string
	// host is the Host every request the apps received carried; "" is
	// "t", "*" is not checked.
	host string
	// head: the requests are HEAD, whose answers have no body.
	head bool
	// note says why an expectation is what it is where the RFCs leave a
	// choice, or where engines could legitimately differ.
	note string
}

// Shorthands for the corpus.
func refused(name, send string) conformanceCase {
	return conformanceCase{name: name, send: send, statuses: []int{400}, closed: true}
}

func served(name, send string, seen ...string) conformanceCase {
	st := make([]int, len(seen))
	for i := range st {
		st[i] = 200
	}
	return conformanceCase{name: name, send: send, statuses: st, seen: seen}
}

func getRaw(target string) string {
	return "GET " + target + " HTTP/1.1\r\nHost: t\r\n\r\n"
}

func withHeaders(method, target string, fields ...string) string {
	return method + " " + target + " HTTP/1.1\r\nHost: t\r\n" + strings.Join(fields, "\r\n") + "\r\n\r\n"
}

// smuggled is the request hidden in a body that a lenient reader would
// serve as a second one.
const smuggled = "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"

func conformanceCorpus() []conformanceCase {
	var cs []conformanceCase
	add := func(c ...conformanceCase) { cs = append(cs, c...) }

	// Plain requests the engines serve.
	add(
		served("GET", getRaw("/"), "web GET / 0"),
		served("GET with query", getRaw("/x?a=1&b=%20"), "web GET /x?a=1&b=%20 0"),
		served("GET api app", getRaw("/api/users"), "api GET /api/users 0"),
		served("GET api prefix exactly", getRaw("/api"), "api GET /api 0"),
		served("GET prefix is not a word prefix", getRaw("/apiary"), "web GET /apiary 0"),
		served("GET paths are case-sensitive", getRaw("/API"), "web GET /API 0"),
		served("GET dots inside names", getRaw("/a.b/c..d/...e"), "web GET /a.b/c..d/...e 0"),
		served("GET well-known", getRaw("/.well-known/acme"), "web GET /.well-known/acme 0"),
		served("GET three dots segment", getRaw("/a/.../b"), "web GET /a/.../b 0"),
		served("GET dot-segment in the query only", getRaw("/x?p=/../api"), "web GET /x?p=/../api 0"),
		served("DELETE", "DELETE /thing HTTP/1.1\r\nHost: t\r\n\r\n", "web DELETE /thing 0"),
		served("OPTIONS", "OPTIONS /o HTTP/1.1\r\nHost: t\r\n\r\n", "web OPTIONS /o 0"),
		served("PUT empty", withHeaders("PUT", "/p", "Content-Length: 0"), "web PUT /p 0"),
		served("POST with length", withHeaders("POST", "/f", "Content-Length: 5")+"hello", "web POST /f 5"),
		served("POST same length twice", withHeaders("POST", "/f", "Content-Length: 5", "Content-Length: 5")+"hello", "web POST /f 5"),
		served("POST chunked", withHeaders("POST", "/c", "Transfer-Encoding: chunked")+"5\r\nhello\r\n0\r\n\r\n", "web POST /c 5"),
		served("POST chunked in odd case", withHeaders("POST", "/c", "tRaNsFeR-eNcOdInG: cHuNkEd")+"5\r\nhello\r\n0\r\n\r\n", "web POST /c 5"),
		served("POST chunked with tab before value", withHeaders("POST", "/c", "Transfer-Encoding:\tchunked\t")+"5\r\nhello\r\n0\r\n\r\n", "web POST /c 5"),
		served("POST chunked with extension", withHeaders("POST", "/c", "Transfer-Encoding: chunked")+"5;ext=1\r\nhello\r\n0\r\n\r\n", "web POST /c 5"),
		served("POST chunked with trailer", withHeaders("POST", "/c", "Transfer-Encoding: chunked")+"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", "web POST /c 5"),
		served("POST chunked in many chunks", withHeaders("POST", "/c", "Transfer-Encoding: chunked")+"1\r\nh\r\n2\r\nel\r\n2\r\nlo\r\n0\r\n\r\n", "web POST /c 5"),
		served("POST chunked then GET", withHeaders("POST", "/c", "Transfer-Encoding: chunked")+"0\r\n\r\n"+getRaw("/next"), "web POST /c 0", "web GET /next 0"),
		served("POST length then pipelined GET", withHeaders("POST", "/f", "Content-Length: 2")+"ab"+getRaw("/next"), "web POST /f 2", "web GET /next 0"),
		served("three pipelined GETs", getRaw("/1")+getRaw("/2")+getRaw("/api/3"), "web GET /1 0", "web GET /2 0", "api GET /api/3 0"),
		served("lower-case method is a method", "get /m HTTP/1.1\r\nHost: t\r\n\r\n", "web get /m 0"),
		served("Connection keep-alive", withHeaders("GET", "/k", "Connection: keep-alive"), "web GET /k 0"),
		served("Host with port", "GET /p HTTP/1.1\r\nHost: t:8080\r\n\r\n", "web GET /p 0"),
		served("header value padded", withHeaders("GET", "/v", "X-A:    padded    "), "web GET /v 0"),
		served("empty header value", withHeaders("GET", "/v", "X-A:"), "web GET /v 0"),
		served("70 header fields", withHeaders("GET", "/many", manyFields(70)...), "web GET /many 0"),
		served("8 KiB header field", withHeaders("GET", "/big", "X-Big: "+strings.Repeat("b", 8<<10)), "web GET /big 0"),
		served("HTTP/1.0 keep-alive", "GET /k HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\n\r\n", "web GET /k 0"),
		served("percent-encoded letters route like the letters", getRaw("/%61pi/x"), "api GET /%61pi/x 0"),
		conformanceCase{name: "HEAD", send: "HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n", statuses: []int{200}, seen: []string{"web HEAD /h 0"}, head: true},
		conformanceCase{name: "Connection close", send: withHeaders("GET", "/c", "Connection: close"), statuses: []int{200}, closed: true, seen: []string{"web GET /c 0"}},
		conformanceCase{name: "HTTP/1.0 closes by default", send: "GET /old HTTP/1.0\r\nHost: t\r\n\r\n", statuses: []int{200}, closed: true, seen: []string{"web GET /old 0"}},
		conformanceCase{name: "HTTP/1.0 without Host", send: "GET /old HTTP/1.0\r\n\r\n", statuses: []int{200}, closed: true, seen: []string{"web GET /old 0"}, host: "*",
			note: "RFC 9112 section 3.2 requires Host of HTTP/1.1 only; the app gets the upstream's address as Host"},
		conformanceCase{name: "empty Host", send: "GET /e HTTP/1.1\r\nHost: \r\n\r\n", statuses: []int{200}, seen: []string{"web GET /e 0"}, host: "*",
			note: "an empty Host is valid (RFC 9112 section 3.2); the app gets the upstream's address as Host"},
	)

	// Slashes: routed by the merged path, passed on as sent.
	add(
		served("double slash routes like one", getRaw("//api/x"), "api GET //api/x 0"),
		served("triple slash routes like one", getRaw("///api"), "api GET ///api 0"),
		served("double slash inside", getRaw("/api//x"), "api GET /api//x 0"),
		served("double slash to web", getRaw("//x"), "web GET //x 0"),
	)

	// Dot-segments: route and app could resolve them differently.
	for _, p := range []string{
		"/public/../api", "/public/../api/x", "/./api", "/api/.", "/api/..", "/a/./b", "/..", "/.",
		"/public/%2e%2e/api", "/public/%2E%2E/api", "/public/.%2e/api", "/public/%2e./api", "/%2e/api",
		"/public%2f..%2fapi", "/public%2F..%2Fapi", "/public\\..\\api", "/public%5c..%5capi",
		"/public/..?x=1", "//..//api",
	} {
		add(refused("dot-segment "+p, getRaw(p)))
	}

	// Host (RFC 9112 section 3.2): one, and a host.
	for _, h := range []string{
		"t@evil x", "t, evil", "t,evil", "t@evil", "a b", "a/b", "a\\b", "a;b=c", "a%20b", "\"t\"", "t:8o", "t:123456", "[::1", "t]",
	} {
		add(refused(fmt.Sprintf("Host %q", h), "GET / HTTP/1.1\r\nHost: "+h+"\r\n\r\n"))
	}
	add(
		refused("no Host", "GET / HTTP/1.1\r\n\r\n"),
		refused("two Hosts", "GET / HTTP/1.1\r\nHost: t\r\nHost: evil\r\n\r\n"),
		refused("two equal Hosts", "GET / HTTP/1.1\r\nHost: t\r\nHost: t\r\n\r\n"),
		refused("Host folded", "GET / HTTP/1.1\r\nHost: t\r\n evil\r\n\r\n"),
	)

	// Transfer-Encoding beside Content-Length (RFC 9112 section 6.1),
	// in every spelling: 400 and close, never the smuggled request.
	body := "0\r\n\r\n" + smuggled
	for _, te := range []string{
		"Transfer-Encoding: chunked", "transfer-encoding: chunked", "TRANSFER-ENCODING: CHUNKED", "Transfer-Encoding: Chunked",
		"Transfer-Encoding:  chunked", "Transfer-Encoding:\tchunked", "Transfer-Encoding: chunked ", "Transfer-Encoding: chunked\t",
		"Transfer-Encoding: gzip, chunked", "Transfer-Encoding: identity, chunked", "Transfer-Encoding: chunked, chunked",
	} {
		l := fmt.Sprint(len(body))
		add(
			refused(fmt.Sprintf("CL then %q", te), withHeaders("POST", "/", "Content-Length: "+l, te)+body),
			refused(fmt.Sprintf("%q then CL", te), withHeaders("POST", "/", te, "Content-Length: "+l)+body),
		)
	}
	add(
		refused("TE with space before colon", withHeaders("POST", "/", "Transfer-Encoding : chunked")+body),
		refused("TE with tab before colon", withHeaders("POST", "/", "Transfer-Encoding\t: chunked")+body),
		refused("TE folded", withHeaders("POST", "/", "Transfer-Encoding:", " chunked")+body),
		refused("TE folded with tab", withHeaders("POST", "/", "Transfer-Encoding: gzip,", "\tchunked")+body),
		refused("TE folded beside CL", withHeaders("POST", "/", "Content-Length: 3", "Transfer-Encoding:", " chunked")+body),
		refused("TE after bare LF", "POST / HTTP/1.1\r\nHost: t\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"+body),
		refused("TE head with bare LFs", "POST / HTTP/1.1\nHost: t\nTransfer-Encoding: chunked\n\n"+body),
		refused("CL head with bare LFs", "POST / HTTP/1.1\nHost: t\nContent-Length: 3\n\nabc"),
		refused("TE on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"+body),
		refused("TE on HTTP/1.0 beside CL", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"+body),
		refused("TE on HTTP/1.0 keep-alive", "POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"+body),
	)
	// The final coding must be chunked (RFC 9112 section 6.3).
	for _, v := range []string{"gzip", "identity", "chunked, gzip", "xchunked", "chunkedx", "chunked;q=1", "", "\"chunked\""} {
		add(refused(fmt.Sprintf("TE %q", v), withHeaders("POST", "/", "Transfer-Encoding: "+v)+body))
	}
	// Chunked last, after codings net/http does not implement: 501.
	for _, v := range []string{"gzip, chunked", "chunked, chunked"} {
		add(conformanceCase{name: "TE " + v + " alone", send: withHeaders("POST", "/", "Transfer-Encoding: "+v) + body,
			statuses: []int{501}, closed: true, note: "RFC 9112 section 6.1: a coding the server does not understand is 501"})
	}
	add(conformanceCase{name: "TE twice", send: withHeaders("POST", "/", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked") + body,
		statuses: []int{501}, closed: true, note: "two fields make the list chunked, chunked"})

	// Content-Length (RFC 9112 section 6.3): one valid number.
	for _, v := range []string{"4, 4", "+4", "-1", "4a", "0x4", "4 4", "99999999999999999999", ""} {
		add(refused(fmt.Sprintf("CL %q", v), withHeaders("POST", "/", "Content-Length: "+v)+"abcd"+smuggled))
	}
	add(refused("CL differing", withHeaders("POST", "/", "Content-Length: 4", "Content-Length: 40")+"abcd"+smuggled))

	// Malformed heads.
	add(
		refused("bare LF head", "GET / HTTP/1.1\nHost: t\n\n"),
		refused("bare LF after request line", "GET / HTTP/1.1\nHost: t\r\n\r\n"),
		refused("bare LF ending the head", "GET / HTTP/1.1\r\nHost: t\r\n\n"),
		refused("bare CR in a field", "GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n"),
		refused("NUL in a field", "GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n"),
		refused("DEL in a field", "GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x7fb\r\n\r\n"),
		refused("space in a field name", "GET / HTTP/1.1\r\nHost: t\r\nX A: b\r\n\r\n"),
		refused("field without colon", "GET / HTTP/1.1\r\nHost: t\r\nXA\r\n\r\n"),
		refused("empty field name", "GET / HTTP/1.1\r\nHost: t\r\n: b\r\n\r\n"),
		refused("folded field", "GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n"),
		refused("leading empty line", "\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n"),
		refused("HTTP/0.9", "GET /\r\n\r\n"),
		refused("HTTP/1.2", "GET / HTTP/1.2\r\nHost: t\r\n\r\n"),
		refused("HTTP/2.0 line", "GET / HTTP/2.0\r\nHost: t\r\n\r\n"),
		refused("lower-case version", "GET / http/1.1\r\nHost: t\r\n\r\n"),
		refused("two spaces", "GET  / HTTP/1.1\r\nHost: t\r\n\r\n"),
		refused("space in target", "GET /a b HTTP/1.1\r\nHost: t\r\n\r\n"),
		refused("trailing space", "GET / HTTP/1.1 \r\nHost: t\r\n\r\n"),
		refused("method not a token", "G(T / HTTP/1.1\r\nHost: t\r\n\r\n"),
		refused("NUL in method", "G\x00T / HTTP/1.1\r\nHost: t\r\n\r\n"),
		conformanceCase{name: "GET then refused", send: getRaw("/first") + "GET / HTTP/1.1\r\nHost: t@evil\r\n\r\n", statuses: []int{200, 400}, closed: true,
			seen: []string{"web GET /first 0"}},
		conformanceCase{name: "GET then CL and TE", send: getRaw("/first") + withHeaders("POST", "/", "Content-Length: 41", "Transfer-Encoding: chunked") + body,
			statuses: []int{200, 400}, closed: true, seen: []string{"web GET /first 0"}},
		conformanceCase{name: "chunked POST then CL and TE", send: withHeaders("POST", "/c", "Transfer-Encoding: chunked") + "0\r\n\r\n" +
			withHeaders("POST", "/", "Content-Length: 41", "Transfer-Encoding: chunked") + body,
			statuses: []int{200, 400}, closed: true, seen: []string{"web POST /c 0"},
			note: "the first request takes net/http's path on every engine: the check must hold for the requests after it"},
		conformanceCase{name: "declined upgrade then CL and TE", send: withHeaders("GET", "/ws", "Upgrade: websocket", "Connection: Upgrade") +
			withHeaders("POST", "/", "Content-Length: 41", "Transfer-Encoding: chunked") + body,
			statuses: []int{200, 400}, closed: true, seen: []string{"web GET /ws 0"},
			note: "the app answered the upgrade with 200: what follows is HTTP again, and checked"},
		conformanceCase{name: "declined CONNECT then CL and TE", send: "CONNECT t:443 HTTP/1.1\r\nHost: t:443\r\n\r\n" +
			withHeaders("POST", "/", "Content-Length: 41", "Transfer-Encoding: chunked") + body,
			statuses: []int{404, 400}, closed: true,
			note: "no route takes CONNECT's authority form (404); what follows is checked"},
		conformanceCase{name: "header too large", send: withHeaders("GET", "/", "X-Big: "+strings.Repeat("b", 70<<10)), statuses: []int{431}, closed: true},
	)

	// Malformed chunked bodies: the connection ends, the bytes after the
	// body are never a request. Last, as what reaches the app of these
	// may reach it after the client's connection ended.
	for name, b := range map[string]string{
		"bad size":           "zz\r\nhello\r\n0\r\n\r\n",
		"size overflow":      "fffffffffffffffffff\r\nx\r\n0\r\n\r\n",
		"missing CRLF":       "5\r\nhelloX0\r\n\r\n",
		"bare LF after size": "5\nhello\r\n0\r\n\r\n",
		"bare LF at end":     "5\r\nhello\r\n0\n\n",
	} {
		add(conformanceCase{name: "chunked " + name, send: withHeaders("POST", "/", "Transfer-Encoding: chunked") + b + smuggled,
			closed: true, note: "the status is whatever the engine had reached (400 or 502); the point is the close"})
	}

	return cs
}

func manyFields(n int) []string {
	fs := make([]string, n)
	for i := range fs {
		fs[i] = fmt.Sprintf("X-F%d: %d", i, i)
	}
	return fs
}

// recordingApp is the apps' backend: it notes every request but its
// health checks and answers with what it got.
type recordingApp struct {
	app  string
	mu   *sync.Mutex
	seen *[]seenRequest
	busy *atomic.Int64 // requests in the handler
}

type seenRequest struct{ line, host string }

func (a recordingApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		return
	}
	a.busy.Add(1)
	defer a.busy.Add(-1)
	n, _ := io.Copy(io.Discard, r.Body)
	line := fmt.Sprintf("%s %s %s %d", a.app, r.Method, r.RequestURI, n)
	if r.RequestURI != "/conformance-probe" {
		a.mu.Lock()
		*a.seen = append(*a.seen, seenRequest{line, r.Host})
		a.mu.Unlock()
	}
	io.WriteString(w, line)
}

// conformanceEngines starts one router per engine, with apps web and api
// on recording backends, and returns their addresses by engine and a
// function that takes what the apps saw since its last call.
func conformanceEngines(t *testing.T) (map[string]string, func() []seenRequest) {
	var mu sync.Mutex
	var seen []seenRequest
	var busy atomic.Int64
	// No ServeMux: it would redirect the paths the corpus sends.
	web, api := &slot{name: "blue"}, &slot{name: "blue"}
	web.start(t, recordingApp{app: "web", mu: &mu, seen: &seen, busy: &busy})
	api.start(t, recordingApp{app: "api", mu: &mu, seen: &seen, busy: &busy})
	api.backend.App = "api"
	const listen = "127.0.0.1:0"
	routes := []Route{{Listen: listen, App: "web"}, {Listen: listen, App: "api", PathPrefix: "/api"}}
	engines := map[string]ServerOptions{
		"net-http":   {DisableFastPath: true},
		"goroutine":  {DisableEventLoop: true},
		"event-loop": {},
	}
	addrs := make(map[string]string)
	for name, so := range engines {
		so.ReadHeaderTimeout = 10 * time.Second
		r := startRouter(t, Options{Server: so, Logger: slog.New(slog.DiscardHandler)}, routes...)
		r.SetBackend("web", false, web.backend)
		r.SetBackend("api", false, api.backend)
		addrs[name] = r.Addr(listen).String()
	}
	take := func() []seenRequest {
		// A request the router gave up on may still be on its way
		// to the app: wait until none is in flight on either side.
		waitIdle(t, web)
		waitIdle(t, api)
		for deadline := time.Now().Add(5 * time.Second); busy.Load() > 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		s := seen
		seen = nil
		return s
	}
	return addrs, take
}

func TestConformanceCorpusOnEveryEngine(t *testing.T) {
	corpus := conformanceCorpus()
	if len(corpus) < 150 {
		t.Fatalf("the corpus has %d cases; keep it well over a hundred", len(corpus))
	}
	addrs, take := conformanceEngines(t)
	for _, engine := range []string{"net-http", "goroutine", "event-loop"} {
		t.Run(engine, func(t *testing.T) {
			for _, c := range corpus {
				t.Run(c.name, func(t *testing.T) {
					take()
					statuses, probed, err := sendCase(addrs[engine], c)
					if err != nil {
						t.Fatal(err)
					}
					checkCase(t, c, statuses, probed, take())
					if c.statuses == nil {
						settle(take)
					}
				})
			}
		})
	}
}

// settle waits until a broken request the router gave up on has reached
// the app, or surely will not: until the apps saw nothing for 100 ms.
func settle(take func() []seenRequest) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		if len(take()) == 0 {
			return
		}
	}
}

// sendCase writes c's bytes and the probe on one connection at once and
// reads the answers until the router closes it. It returns the statuses
// before the probe's and whether the probe was answered.
func sendCase(addr string, c conformanceCase) (statuses []int, probed bool, err error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, false, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return nil, false, err
	}
	if _, err := io.WriteString(conn, c.send+probeRequest); err != nil {
		return nil, false, fmt.Errorf("write: %w", err)
	}
	br := bufio.NewReader(conn)
	for {
		method := http.MethodGet
		if c.head && len(statuses) < len(c.statuses) {
			method = http.MethodHead
		}
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err) {
				return statuses, false, nil
			}
			return statuses, false, fmt.Errorf("after answers %v: %w", statuses, err)
		}
		b, err := io.ReadAll(res.Body)
		if err != nil && !isReset(err) {
			return statuses, false, fmt.Errorf("read an answer's body: %w", err)
		}
		if string(b) == "web GET /conformance-probe 0" {
			return statuses, true, nil
		}
		statuses = append(statuses, res.StatusCode)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout() && !errors.Is(err, os.ErrDeadlineExceeded)
}

func checkCase(t *testing.T, c conformanceCase, statuses []int, probed bool, seen []seenRequest) {
	t.Helper()
	if c.note != "" {
		t.Log(c.note)
	}
	if c.statuses != nil && !slices.Equal(statuses, c.statuses) || c.statuses == nil && len(statuses) > 1 {
		t.Errorf("answers %v, want %v", statuses, c.statuses)
	}
	if probed == c.closed {
		state := "open"
		if !probed {
			state = "closed"
		}
		t.Errorf("the connection was left %s after the answers; want closed=%v", state, c.closed)
	}
	var lines []string
	for _, s := range seen {
		lines = append(lines, s.line)
		want := c.host
		if want == "" {
			want = "t"
			if strings.Contains(c.send, "Host: t:8080") {
				want = "t:8080"
			}
		}
		if want != "*" && s.host != want {
			t.Errorf("the app got Host %q for %s, want %q", s.host, s.line, want)
		}
	}
	if c.seen == nil && c.statuses == nil {
		// Malformed bodies: whatever reached the app, never the
		// request smuggled after it.
		for _, l := range lines {
			if strings.Contains(l, "/smuggled") {
				t.Errorf("the app got the smuggled request: %q", lines)
			}
		}
		return
	}
	if !slices.Equal(lines, c.seen) {
		t.Errorf("the apps got %q, want %q", lines, c.seen)
	}
}
