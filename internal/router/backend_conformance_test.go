package router

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/upstream"
)

// The backend conformance corpus puts a hand-written backend, raw bytes on
// a TCP socket, behind each HTTP engine of the router and checks what a
// raw client gets when the backend misbehaves, by RFC 9112 and RFC 9110:
// bytes after an answer are never served as another request's answer (RFC
// 9112 section 6.3: a client must not forward such extra data as a
// separate response), a broken answer is a 502 when nothing of it went out
// and a cut connection when it did, interim answers pass (RFC 9110 section
// 15.2), and an answer that comes before the end of an upload is
// forwarded.

// engines are the router's HTTP engines, each case runs on all of them.
var engines = []struct {
	name string
	opts ServerOptions
}{
	{"net-http", ServerOptions{DisableFastPath: true}},
	{"goroutine", ServerOptions{DisableEventLoop: true}},
	{"event-loop", ServerOptions{}},
}

// poisoned is a whole answer a backend sends where no request asked for
// one: served to a client, it would be another request's answer.
const poisoned = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nPOISONED"

// backendCase is what a backend does with a request to /case, and what the
// client must get.
type backendCase struct {
	name string
	// method of the request ("" is GET), its body (sent with a
	// Content-Length) and extra header lines, each ending in CRLF;
	// http10 sends it as HTTP/1.0.
	method, body, header string
	http10               bool
	// answer is what the backend writes at once; late what it writes
	// once the client has the head of its final answer; then it closes
	// the connection when end is set.
	answer, late string
	end          bool
	// upload, when set, is the size of a body the client sends in the
	// background (not read by anyone but serve) with the request, and
	// serve answers it in place of answer and late; pause makes the
	// client stop after that many bytes of it until it has an answer.
	upload, pause int
	serve         func(b *rawBackend, conn net.Conn, br *bufio.Reader)
	want          caseWant
	// netHTTP is what the net/http engine gives where it cannot do as
	// want says, nil when it can: ReverseProxy writes the head before
	// it reads the body, and may flush it or not before a body cut
	// after the bytes that came with the head aborts the answer.
	netHTTP *caseWant
}

// caseWant is what the client must get.
type caseWant struct {
	status int // the final answer's status
	// or is another status RFC 9112 allows (with any body), 0 for none.
	or      int
	body    string
	interim []int // the 1xx answers before it, in order
	// cut: the connection ends before the message does (no final
	// chunk, fewer bytes than its Content-Length).
	cut bool
	// reuse: the endpoint connection may take another request; when
	// false, the backend must see none on it.
	reuse bool
	// orNone: no answer at all, the connection closed, is allowed too.
	orNone bool
}

// abortedByNetHTTP is what the net/http engine gives for an answer whose
// body breaks: the head, flushed or not, and a cut connection.
var abortedByNetHTTP = &caseWant{status: 200, cut: true, orNone: true}

const (
	ok5      = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
	chunked5 = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	hints    = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
	chunkedH = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	upload4M = 4 << 20
)

// backendCases is the corpus.
var backendCases = []backendCase{
	// Bytes after a whole answer, sent once the client has it: the
	// endpoint connection is unusable (RFC 9112 section 6.3).
	{name: "HEAD then a late answer", method: "HEAD", answer: "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n", late: poisoned,
		want: caseWant{status: 200}},
	{name: "HEAD chunked then a late body", method: "HEAD", answer: chunkedH, late: "8\r\nPOISONED\r\n0\r\n\r\n" + poisoned,
		want: caseWant{status: 200}},
	{name: "204 then a late answer", answer: "HTTP/1.1 204 No Content\r\n\r\n", late: poisoned,
		want: caseWant{status: 204}},
	{name: "204 with a length then that many late bytes", answer: "HTTP/1.1 204 No Content\r\nContent-Length: 8\r\n\r\n", late: "POISONED" + poisoned,
		want: caseWant{status: 204}},
	{name: "304 then a late answer", answer: "HTTP/1.1 304 Not Modified\r\nContent-Length: 8\r\n\r\n", late: poisoned,
		want: caseWant{status: 304}},
	{name: "Content-Length body then a late answer", answer: ok5, late: poisoned,
		want: caseWant{status: 200, body: "hello"}},
	{name: "chunked body then a late answer", answer: chunked5, late: poisoned,
		want: caseWant{status: 200, body: "hello"}},
	{name: "chunked body with trailers then a late answer", answer: chunkedH + "5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n", late: poisoned,
		want: caseWant{status: 200, body: "hello"}},
	{name: "empty body then one late byte", answer: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", late: "X",
		want: caseWant{status: 200}},
	{name: "POST answered then a late answer", method: "POST", body: "data", answer: ok5, late: poisoned,
		want: caseWant{status: 200, body: "hello"}},
	{name: "DELETE answered then a late answer", method: "DELETE", answer: ok5, late: poisoned,
		want: caseWant{status: 200, body: "hello"}},
	{name: "interim then final then a late answer", answer: hints + ok5, late: poisoned,
		want: caseWant{status: 200, body: "hello", interim: []int{103}}},
	{name: "late answer then close", answer: ok5, late: poisoned, end: true,
		want: caseWant{status: 200, body: "hello"}},
	{name: "HTTP/1.0 keep-alive then a late answer", answer: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello", late: poisoned,
		want: caseWant{status: 200, body: "hello"}},

	// Bytes beyond the answer's end in the same write.
	{name: "HEAD answered with a body", method: "HEAD", answer: "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nPOISONED",
		want: caseWant{status: 200}},
	{name: "204 with a body", answer: "HTTP/1.1 204 No Content\r\n\r\n" + poisoned,
		want: caseWant{status: 204}},
	{name: "304 with a body", answer: "HTTP/1.1 304 Not Modified\r\n\r\nPOISONED",
		want: caseWant{status: 304}},
	{name: "more bytes than Content-Length", answer: ok5 + poisoned,
		want: caseWant{status: 200, body: "hello"}},
	{name: "bytes after the last chunk", answer: chunked5 + poisoned,
		want: caseWant{status: 200, body: "hello"}},
	{name: "a body after 100", answer: "HTTP/1.1 100 Continue\r\nContent-Length: 8\r\n\r\nPOISONED" + ok5,
		want: caseWant{status: 502}},
	{name: "a body after 103", answer: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nContent-Length: 8\r\n\r\nPOISONED" + ok5,
		want: caseWant{status: 502, interim: []int{103}}},

	// Answers whose framing is broken before any of them went out: 502
	// (RFC 9112 section 6.3: a proxy closes the connection to the
	// server, discards the answer and sends 502).
	{name: "invalid Content-Length", answer: "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nhello",
		want: caseWant{status: 502}},
	{name: "two different Content-Lengths", answer: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
		want: caseWant{status: 502}},
	{name: "negative Content-Length", answer: "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello",
		want: caseWant{status: 502}},
	{name: "signed Content-Length", answer: "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
		want: caseWant{status: 502}},
	{name: "bad chunk size", answer: chunkedH + "zz\r\nhello\r\n0\r\n\r\n",
		want: caseWant{status: 502}},
	{name: "chunk longer than its size", answer: chunkedH + "3\r\nhello\r\n0\r\n\r\n",
		want: caseWant{status: 502}},
	{name: "chunk size past 64 bits", answer: chunkedH + "fffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
		want: caseWant{status: 502}},
	{name: "chunk size with a bare LF", answer: chunkedH + "5\nhello\n0\n\n",
		want: caseWant{status: 502}},
	{name: "Transfer-Encoding other than chunked", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello", end: true,
		want: caseWant{status: 502}},
	{name: "Content-Length and Transfer-Encoding", answer: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		want: caseWant{status: 502, or: 200, reuse: true}},
	{name: "malformed status line", answer: "HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n",
		want: caseWant{status: 502}},
	{name: "not HTTP", answer: "SSH-2.0-OpenSSH_9.6\r\n", end: true,
		want: caseWant{status: 502}},
	{name: "closed without an answer", end: true,
		want: caseWant{status: 502}},
	{name: "101 to a request without Upgrade", answer: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n",
		want: caseWant{status: 502}},
	{name: "head larger than 64 KB", answer: "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 64<<10) + "\r\nContent-Length: 0\r\n\r\n",
		want: caseWant{status: 502}},

	// Answers that break after they started to go out: the client's
	// connection is cut, never ended cleanly.
	{name: "bad chunk after the head went out", answer: chunkedH + "5\r\nhello\r\n", late: "zz\r\n",
		want: caseWant{status: 200, cut: true}},
	{name: "chunked body cut by a close", answer: chunkedH + "5\r\nhello\r\n", end: true,
		want: caseWant{status: 200, cut: true}},
	{name: "Content-Length body cut by a close", answer: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", end: true,
		want: caseWant{status: 200, cut: true}, netHTTP: abortedByNetHTTP},

	// Answers that are well formed, if unusual.
	{name: "head larger than a read buffer", answer: "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 20<<10) + "\r\nContent-Length: 5\r\n\r\nhello",
		want: caseWant{status: 200, body: "hello", reuse: true}},
	{name: "folded header line", answer: "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 5\r\n\r\nhello",
		want: caseWant{status: 502, or: 200, reuse: true}},

	// Answers that end the connection, though the backend keeps it.
	{name: "Connection: close left open", answer: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
		want: caseWant{status: 200, body: "hello"}},
	{name: "HTTP/1.0 without keep-alive left open", answer: "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		want: caseWant{status: 200, body: "hello"}},
	{name: "body until close", answer: "HTTP/1.1 200 OK\r\n\r\nhello", end: true,
		want: caseWant{status: 200, body: "hello"}},

	// Interim answers pass (RFC 9110 section 15.2); a 100 Continue only
	// to a client that asked for it.
	{name: "103 before the answer", answer: hints + ok5,
		want: caseWant{status: 200, body: "hello", interim: []int{103}, reuse: true}},
	{name: "two 103s before the answer", answer: hints + hints + chunked5,
		want: caseWant{status: 200, body: "hello", interim: []int{103, 103}, reuse: true}},
	{name: "103 before a HEAD answer", method: "HEAD", answer: hints + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
		want: caseWant{status: 200, interim: []int{103}, reuse: true}},
	{name: "103 before a 204", method: "POST", body: "data", answer: hints + "HTTP/1.1 204 No Content\r\n\r\n",
		want: caseWant{status: 204, interim: []int{103}, reuse: true}},
	{name: "103 to an HTTP/1.0 client", http10: true, answer: hints + ok5,
		want: caseWant{status: 200, body: "hello", reuse: true}},
	{name: "102 before the answer", answer: "HTTP/1.1 102 Processing\r\n\r\n" + ok5,
		want: caseWant{status: 200, body: "hello", interim: []int{102}, reuse: true}},
	{name: "100 nobody asked for", answer: "HTTP/1.1 100 Continue\r\n\r\n" + ok5,
		want: caseWant{status: 200, body: "hello", reuse: true}},

	// An answer before the end of a large upload is forwarded.
	{name: "413 early then half-close and drain", method: "POST", upload: upload4M, serve: answerEarly(
		"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 9\r\n\r\ntoo large", drainAfterHalfClose),
		want: caseWant{status: 413, body: "too large"}},
	{name: "200 early and the backend reads on", method: "POST", upload: upload4M, serve: answerEarly(
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly", readOn),
		want: caseWant{status: 200, body: "early", reuse: true}},
	{name: "413 early then the backend stops reading", method: "POST", upload: upload4M, serve: answerEarly(
		"HTTP/1.1 413 Content Too Large\r\nContent-Length: 9\r\n\r\ntoo large", stopReading),
		want: caseWant{status: 413, body: "too large"}},
	{name: "413 early to a client still sending", method: "POST", upload: upload4M, pause: 256 << 10, serve: answerEarly(
		"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 9\r\n\r\ntoo large", drainAfterHalfClose),
		want: caseWant{status: 413, body: "too large"}},
	{name: "413 to a client paused mid-upload", method: "POST", upload: upload4M, pause: 256 << 10, serve: readThenAnswer(256<<10,
		"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 9\r\n\r\ntoo large", drainAfterHalfClose),
		want: caseWant{status: 413, body: "too large"}},
	{name: "103 then 413 early", method: "POST", upload: upload4M, serve: answerEarly(
		hints+"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 9\r\n\r\ntoo large", drainAfterHalfClose),
		want: caseWant{status: 413, body: "too large", interim: []int{103}}},
	{name: "whole upload read then answered", method: "POST", upload: upload4M, serve: answerAfterBody,
		want: caseWant{status: 200, body: "4194304", reuse: true}},
}

func TestBackendConformance(t *testing.T) {
	for _, bc := range backendCases {
		for _, e := range engines {
			t.Run(e.name+"/"+bc.name, func(t *testing.T) {
				want := bc.want
				if e.opts.DisableFastPath {
					if bc.netHTTP != nil {
						want = *bc.netHTTP
					}
				}
				runBackendCase(t, e.opts, &bc, want)
			})
		}
	}
}

// rawBackend is a replica written by hand: it answers /case as its case
// says and anything else with a 200 "fresh".
type rawBackend struct {
	c  *backendCase
	ln net.Listener
	// headSeen is closed once the client has its final answer's head,
	// lateSent once the backend is done with /case.
	headSeen, lateSent chan struct{}
	seenOnce, sentOnce sync.Once
	// taintedGone is closed when the connection that served /case (and
	// must not take another request) is closed.
	taintedGone chan struct{}
	goneOnce    sync.Once
	// stop ends what serve functions wait for, at the end of the test.
	stop chan struct{}

	mu     sync.Mutex
	misuse []string // requests on a connection that must not take any
}

func startRawBackend(t *testing.T, c *backendCase) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{c: c, ln: ln, headSeen: make(chan struct{}), lateSent: make(chan struct{}),
		taintedGone: make(chan struct{}), stop: make(chan struct{})}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(b.stop)
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				b.serveConn(conn)
			}()
		}
	}()
	return b
}

// serveConn answers the requests on one connection.
func (b *rawBackend) serveConn(conn net.Conn) {
	go func() {
		// Nothing the backend waits for outlives the test.
		<-b.stop
		conn.Close()
	}()
	br := bufio.NewReader(conn)
	tainted := false
	defer func() {
		if tainted {
			b.goneOnce.Do(func() { close(b.taintedGone) })
		}
	}()
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if tainted {
			b.mu.Lock()
			b.misuse = append(b.misuse, req.Method+" "+req.URL.Path)
			b.mu.Unlock()
		}
		if req.URL.Path != "/case" {
			io.Copy(io.Discard, req.Body)
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
			continue
		}
		tainted = !b.c.want.reuse
		if b.c.serve != nil {
			b.c.serve(b, conn, br)
			return
		}
		io.Copy(io.Discard, req.Body)
		io.WriteString(conn, b.c.answer)
		if b.c.late != "" {
			b.waitHead()
			io.WriteString(conn, b.c.late)
		}
		b.sentOnce.Do(func() { close(b.lateSent) })
		if b.c.end {
			// Its own close, not the router's.
			tainted = false
			return
		}
	}
}

// waitHead waits until the client has its answer's head, or the test ends.
func (b *rawBackend) waitHead() {
	select {
	case <-b.headSeen:
	case <-b.stop:
	}
}

// misused returns the requests that came on a connection that must not
// take any.
func (b *rawBackend) misused() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.misuse)
}

// answerEarly answers an upload with answer as soon as its head is read,
// then goes on with after.
func answerEarly(answer string, after func(b *rawBackend, conn net.Conn, br *bufio.Reader)) func(*rawBackend, net.Conn, *bufio.Reader) {
	return func(b *rawBackend, conn net.Conn, br *bufio.Reader) {
		io.WriteString(conn, answer)
		after(b, conn, br)
	}
}

// readThenAnswer reads n bytes of an upload, then answers as answerEarly
// does: the router is then waiting for more of the body, which a client
// paused after n bytes does not send.
func readThenAnswer(n int64, answer string, after func(b *rawBackend, conn net.Conn, br *bufio.Reader)) func(*rawBackend, net.Conn, *bufio.Reader) {
	early := answerEarly(answer, after)
	return func(b *rawBackend, conn net.Conn, br *bufio.Reader) {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.CopyN(io.Discard, br, n); err == nil {
			early(b, conn, br)
		}
	}
}

// drainAfterHalfClose ends its side and reads the rest, as a server that
// refused a body should, so that its answer is not lost to a reset.
func drainAfterHalfClose(b *rawBackend, conn net.Conn, br *bufio.Reader) {
	conn.(*net.TCPConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.Copy(io.Discard, br)
}

// readOn reads the rest of the body, then serves on.
func readOn(b *rawBackend, conn net.Conn, br *bufio.Reader) {
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.CopyN(io.Discard, br, upload4M); err == nil {
		serveFresh(conn, br)
	}
}

// stopReading reads nothing more and keeps the connection until the
// router closes it or the test ends.
func stopReading(b *rawBackend, conn net.Conn, br *bufio.Reader) {
	<-b.stop
}

// answerAfterBody reads the whole upload and answers with its size.
func answerAfterBody(b *rawBackend, conn net.Conn, br *bufio.Reader) {
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _ := io.CopyN(io.Discard, br, upload4M)
	fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d", len(fmt.Sprint(n)), n)
	serveFresh(conn, br)
}

// serveFresh answers every further request on conn with a 200 "fresh".
func serveFresh(conn net.Conn, br *bufio.Reader) {
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
	}
}

// runBackendCase runs c through a router with opts: one client warms an
// endpoint connection, sends the case's request and checks the answer;
// then that client (when its connection may go on) and another one must
// each get a fresh answer, and the backend must have seen no request on a
// connection that cannot take one.
func runBackendCase(t *testing.T, opts ServerOptions, c *backendCase, want caseWant) {
	b := startRawBackend(t, c)
	const listen = "127.0.0.1:0"
	quiet := slog.New(slog.DiscardHandler)
	// One health check, at the start: a later one could take the
	// connection in the moment between an answer and its late bytes,
	// before net/http's transport sees them (see below), which is the
	// engine's limit and not what a case tests.
	health := upstream.HealthCheck{Path: "/healthz", Interval: time.Hour, Timeout: time.Second}
	backend := poolBackend(t, "blue", upstream.Options{Health: health, ResponseHeaderTimeout: 5 * time.Second, Logger: quiet}, "http://"+b.ln.Addr().String())
	r := startRouter(t, Options{Server: opts}, Route{Listen: listen, App: "web"})
	r.SetBackend("web", false, backend)
	addr := r.Addr(listen).String()

	first := dialRaw(t, addr)
	first.expectFresh(t, "/warm")
	got := first.exchange(t, c, b)
	checkAnswer(t, got, want)
	if c.pause > 0 {
		// The client will not send the rest of its body: nothing
		// would end the connection but the router.
		first.expectClose(t)
	}

	if c.serve == nil {
		select {
		case <-b.lateSent:
		case <-time.After(10 * time.Second):
			t.Fatal("the backend never got the request's answer out")
		}
	}
	// net/http's transport closes an idle connection once bytes arrive
	// on it, in a goroutine of its own: a request sent before that
	// goroutine ran would read them (which no check before reuse can
	// rule out either), so wait for the close there. Late bytes written
	// on loopback are as good as there, but the kernel may take a moment.
	switch {
	case opts.DisableFastPath && !want.reuse && !c.end:
		select {
		case <-b.taintedGone:
		case <-time.After(5 * time.Second):
		}
	case c.late != "":
		time.Sleep(200 * time.Millisecond)
	}
	if !got.closed {
		first.expectFresh(t, "/next")
	}
	dialRaw(t, addr).expectFresh(t, "/next")
	if !want.reuse {
		if m := b.misused(); len(m) > 0 {
			t.Errorf("the router sent %q on the endpoint connection after an answer that ends it", m)
		}
	}
}

// rawClient is a client connection written by hand.
type rawClient struct {
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	return &rawClient{conn: conn, br: bufio.NewReader(conn)}
}

// expectFresh asks for path and fails t unless the answer is the
// backend's 200 "fresh".
func (rc *rawClient) expectFresh(t *testing.T, path string) {
	t.Helper()
	fmt.Fprintf(rc.conn, "GET %s HTTP/1.1\r\nHost: web\r\n\r\n", path)
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "fresh" || err != nil {
		t.Fatalf("GET %s: %d %q (%v), want 200 \"fresh\": another request's answer", path, resp.StatusCode, body, err)
	}
}

// expectClose fails t unless the router closes the connection (before
// the deadline dialRaw set).
func (rc *rawClient) expectClose(t *testing.T) {
	t.Helper()
	_, err := io.Copy(io.Discard, rc.br)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("the connection is still open after the answer to an upload the client paused: %v", err)
	}
}

// clientAnswer is what a client got for its request.
type clientAnswer struct {
	interim []*http.Response
	final   *http.Response // nil when none came
	headErr error
	body    string
	bodyErr error
	// closed: the connection cannot take another request.
	closed bool
}

// exchange sends c's request and reads its answer, letting b know when
// the final head is in.
func (rc *rawClient) exchange(t *testing.T, c *backendCase, b *rawBackend) clientAnswer {
	t.Helper()
	method := c.method
	if method == "" {
		method = http.MethodGet
	}
	proto := "HTTP/1.1"
	if c.http10 {
		proto = "HTTP/1.0"
	}
	head := method + " /case " + proto + "\r\nHost: web\r\n" + c.header
	switch {
	case c.upload > 0:
		head += fmt.Sprintf("Content-Length: %d\r\n", c.upload)
	case c.body != "":
		head += fmt.Sprintf("Content-Length: %d\r\n", len(c.body))
	}
	if _, err := io.WriteString(rc.conn, head+"\r\n"+c.body); err != nil {
		t.Fatal(err)
	}
	answered := make(chan struct{})
	defer close(answered)
	if c.upload > 0 {
		go rc.upload(c, answered)
	}
	var got clientAnswer
	defer b.seenOnce.Do(func() { close(b.headSeen) })
	for {
		resp, err := http.ReadResponse(rc.br, &http.Request{Method: method})
		if err != nil {
			got.headErr, got.closed = err, true
			return got
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			got.final = resp
			break
		}
		got.interim = append(got.interim, resp)
	}
	b.seenOnce.Do(func() { close(b.headSeen) })
	body, err := io.ReadAll(got.final.Body)
	got.body, got.bodyErr = string(body), err
	got.closed = err != nil || got.final.Close || c.upload > 0
	return got
}

// upload sends c's body of c.upload bytes, pausing after c.pause of them
// until answered is closed.
func (rc *rawClient) upload(c *backendCase, answered <-chan struct{}) {
	chunk := []byte(strings.Repeat("u", 32<<10))
	for sent := 0; sent < c.upload; sent += len(chunk) {
		if c.pause > 0 && sent == c.pause {
			<-answered
			return
		}
		if _, err := rc.conn.Write(chunk); err != nil {
			return
		}
	}
}

// checkAnswer fails t where got differs from want.
func checkAnswer(t *testing.T, got clientAnswer, want caseWant) {
	t.Helper()
	var interim []int
	for _, r := range got.interim {
		interim = append(interim, r.StatusCode)
		if r.StatusCode == http.StatusEarlyHints && r.Header.Get("Link") == "" {
			t.Errorf("a 103 without its Link field: %v", r.Header)
		}
	}
	if !slices.Equal(interim, want.interim) {
		t.Errorf("interim answers %v, want %v", interim, want.interim)
	}
	if got.final == nil {
		if want.orNone {
			return
		}
		t.Fatalf("no answer (%v), want %d", got.headErr, want.status)
	}
	status := got.final.StatusCode
	if status == want.or && want.or != 0 {
		return
	}
	if status != want.status {
		t.Fatalf("answer %d %q (%v), want %d", status, got.body, got.bodyErr, want.status)
	}
	switch {
	case want.cut && got.bodyErr == nil:
		t.Errorf("the answer ended cleanly with body %q; want the connection cut before its end", got.body)
	case want.cut:
	case got.bodyErr != nil:
		t.Errorf("body %q cut short: %v", got.body, got.bodyErr)
	case status < 500 && got.body != want.body:
		t.Errorf("body %q, want %q", got.body, want.body)
	}
}

func TestAStickyCookieSurvivesAnInterimAnswer(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			c := &backendCase{answer: hints + ok5, want: caseWant{reuse: true}}
			b := startRawBackend(t, c)
			url := "http://" + b.ln.Addr().String()
			quiet := upstream.Options{Logger: slog.New(slog.DiscardHandler)}
			const listen = "127.0.0.1:0"
			r := startRouter(t, Options{Server: e.opts}, Route{Listen: listen, App: "web"})
			r.SetSplit("web", &Split{Stable: poolBackend(t, "blue", quiet, url), Canary: poolBackend(t, "green", quiet, url),
				Weight: 100, StickyCookie: "pin"})
			got := dialRaw(t, r.Addr(listen).String()).exchange(t, c, b)
			checkAnswer(t, got, caseWant{status: 200, body: "hello", interim: []int{103}})
			want := "pin=green; Path=/; HttpOnly; SameSite=Lax"
			if sc := got.final.Header.Values("Set-Cookie"); len(sc) != 1 || sc[0] != want {
				t.Errorf("the answer after a 103 has Set-Cookie %q, want %q", sc, want)
			}
		})
	}
}
