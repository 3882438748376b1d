package httpwire

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"testing"
)

func TestCheckRequestHeadRefusesAmbiguousFraming(t *testing.T) {
	cases := []struct {
		name, head string
		want       error // nil: accepted
		framing    Framing
	}{
		{"plain GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", nil, Framing{}},
		{"content length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", nil, Framing{Length: 5}},
		{"same content length twice", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", nil, Framing{Length: 5}},
		{"chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", nil, Framing{Chunked: true}},
		{"chunked odd case", "POST / HTTP/1.1\r\nHost: a\r\ntRANSFER-eNCODING: ChUnKeD\r\n\r\n", nil, Framing{Chunked: true}},
		{"gzip then chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", nil, Framing{Chunked: true}},
		{"upgrade", "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", nil, Framing{}},
		{"connect", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", nil, Framing{}},
		{"HTTP/1.0 without host", "GET / HTTP/1.0\r\n\r\n", nil, Framing{}},
		{"TE and CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", RefusedTEAndLength, Framing{}},
		{"CL and TE with tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\nContent-Length: 4\r\n\r\n", RefusedTEAndLength, Framing{}},
		{"TE on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", RefusedTEOnHTTP10, Framing{}},
		{"TE final not chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", RefusedTENotChunked, Framing{}},
		{"TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", RefusedTENotChunked, Framing{}},
		{"TE empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", RefusedTENotChunked, Framing{}},
		{"TE xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", RefusedTENotChunked, Framing{}},
		{"space before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", RefusedFieldName, Framing{}},
		{"folded TE", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", RefusedObsFold, Framing{}},
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", RefusedBareLF, Framing{}},
		{"bare LF in one line", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", RefusedBareLF, Framing{}},
		{"bare CR", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", RefusedBareCR, Framing{}},
		{"control in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", RefusedFieldValue, Framing{}},
		{"differing CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n", RefusedContentLength, Framing{}},
		{"CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\n", RefusedContentLength, Framing{}},
		{"CL sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\n", RefusedContentLength, Framing{}},
		{"no host", "GET / HTTP/1.1\r\n\r\n", RefusedHostMissing, Framing{}},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", RefusedHostRepeated, Framing{}},
		{"host with at", "GET / HTTP/1.1\r\nHost: t@evil\r\n\r\n", RefusedHostInvalid, Framing{}},
		{"host with comma", "GET / HTTP/1.1\r\nHost: t, evil\r\n\r\n", RefusedHostInvalid, Framing{}},
		{"empty line first", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", RefusedRequestLine, Framing{}},
		{"HTTP/2 line", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", RefusedRequestLine, Framing{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := CheckRequestHead([]byte(tc.head))
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("CheckRequestHead = %v, want %v", err, tc.want)
			}
			if err == nil && f != tc.framing {
				t.Errorf("framing = %+v, want %+v", f, tc.framing)
			}
		})
	}
}

func TestValidHost(t *testing.T) {
	for h, want := range map[string]bool{
		"": true, "example.com": true, "example.com:8080": true, "127.0.0.1:80": true,
		"[::1]": true, "[::1]:8080": true, "under_score.example": true,
		"t@evil": false, "t@evil x": false, "t, evil": false, "t,evil": false, "a b": false,
		"a:": true, "a:b": false, "a:123456": false, "[::1": false, "[]": false, "[::1]x": false,
		"a;b=c": false, "a/b": false, "a%2eb": false,
	} {
		if got := ValidHost(h); got != want {
			t.Errorf("ValidHost(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestHasDotSegment(t *testing.T) {
	for target, want := range map[string]bool{
		"/": false, "/a/b": false, "/a.b/c": false, "/...": false, "/a/.../b": false, "/.well-known/x": false,
		"/a?x=/../b": false, "/a%2eb": false, "/a/.hidden": false,
		"/.": true, "/..": true, "/a/./b": true, "/public/../api": true, "/a/..?x": true,
		"/public/%2e%2e/api": true, "/public/%2E%2E/api": true, "/public/.%2e/api": true,
		"/public%2f..%2fapi": true, "/public\\..\\api": true, "/public%5C..%5Capi": true, "/a/%2e": true,
	} {
		if got := HasDotSegment(target); got != want {
			t.Errorf("HasDotSegment(%q) = %v, want %v", target, got, want)
		}
	}
}

func TestCheckRequestHeadDoesNotAllocate(t *testing.T) {
	head := []byte("POST /api HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
	if n := testing.AllocsPerRun(100, func() { _, _ = CheckRequestHead(head) }); n != 0 {
		t.Errorf("CheckRequestHead allocates %v times per call, want 0", n)
	}
}

// FuzzCheckRequestHead pins what makes CheckRequestHead a guard in front
// of net/http: a head it accepts is framed by net/http exactly as it says
// (the same body length, or chunked), so no byte of a body can become a
// request for one of them and not the other.
func FuzzCheckRequestHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
		"POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		framing, err := CheckRequestHead(head)
		if err != nil || !bytes.HasSuffix(head, []byte("\r\n\r\n")) || bytes.Count(head, []byte("\r\n\r\n")) != 1 {
			return
		}
		req, rerr := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if rerr != nil {
			return // net/http refuses it on its own
		}
		switch {
		case framing.Chunked && req.ContentLength != -1:
			t.Fatalf("guard: chunked; net/http: Content-Length %d", req.ContentLength)
		case !framing.Chunked && req.ContentLength != framing.Length:
			t.Fatalf("guard: Content-Length %d; net/http: %d (chunked: %v)", framing.Length, req.ContentLength, req.TransferEncoding)
		}
	})
}
