package httpwire

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// fields renders parsed header fields as "Name: Value" strings, so tests
// can compare them in one go.
func fields(hs []Header) []string {
	out := make([]string, 0, len(hs))
	for _, h := range hs {
		out = append(out, string(h.Name)+": "+string(h.Value))
	}
	return out
}

func TestParseRequestReturnsHeadLengthAndLeavesBodyAlone(t *testing.T) {
	head := "POST /api/items?q=1 HTTP/1.1\r\n" +
		"Host: example.com\r\n" +
		"Content-Length: 5\r\n" +
		"X-Empty:\r\n" +
		"\r\n"
	body := "hello"
	b := []byte(head + body)
	req := Request{Headers: make([]Header, 0, 8)}

	n, err := ParseRequest(b, &req)
	if err != nil {
		t.Fatalf("ParseRequest: %v", err)
	}
	if n != len(head) {
		t.Errorf("head length = %d, want %d", n, len(head))
	}
	if got := string(b[n:]); got != body {
		t.Errorf("bytes after head = %q, want %q", got, body)
	}
	if string(req.Method) != "POST" || string(req.Target) != "/api/items?q=1" || req.Minor != 1 {
		t.Errorf("request line = %q %q HTTP/1.%d, want POST /api/items?q=1 HTTP/1.1", req.Method, req.Target, req.Minor)
	}
	want := []string{"Host: example.com", "Content-Length: 5", "X-Empty: "}
	if got := fields(req.Headers); !slices.Equal(got, want) {
		t.Errorf("headers = %q, want %q", got, want)
	}
}

func TestParseRequestReadsHTTP10(t *testing.T) {
	b := []byte("GET / HTTP/1.0\r\n\r\n")
	var req Request
	n, err := ParseRequest(b, &req)
	if err != nil {
		t.Fatalf("ParseRequest: %v", err)
	}
	if n != len(b) || req.Minor != 0 || string(req.Method) != "GET" || string(req.Target) != "/" || len(req.Headers) != 0 {
		t.Errorf("got n=%d method=%q target=%q minor=%d headers=%q", n, req.Method, req.Target, req.Minor, fields(req.Headers))
	}
}

func TestParseRequestReportsIncompleteForEveryProperPrefix(t *testing.T) {
	head := "GET /a/b HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nX-Empty:\r\n\r\n"
	for i := range len(head) {
		req := Request{Headers: make([]Header, 0, 8)}
		if _, err := ParseRequest([]byte(head[:i]), &req); !errors.Is(err, ErrIncomplete) {
			t.Errorf("ParseRequest(%q) error = %v, want ErrIncomplete", head[:i], err)
		}
	}
}

func TestParseRequestReportsTooManyHeaders(t *testing.T) {
	b := []byte("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")

	req := Request{Headers: make([]Header, 0, 2)}
	if _, err := ParseRequest(b, &req); !errors.Is(err, ErrTooManyHeaders) {
		t.Errorf("with room for 2 of 3 fields: error = %v, want ErrTooManyHeaders", err)
	}

	req = Request{Headers: make([]Header, 0, 3)}
	if _, err := ParseRequest(b, &req); err != nil {
		t.Errorf("with room for exactly 3 fields: error = %v, want nil", err)
	}

	req = Request{} // nil Headers: no field fits
	if _, err := ParseRequest(b, &req); !errors.Is(err, ErrTooManyHeaders) {
		t.Errorf("with nil Headers: error = %v, want ErrTooManyHeaders", err)
	}
}

func TestParseRequestReusesHeadersSlice(t *testing.T) {
	req := Request{Headers: make([]Header, 0, 4)}
	if _, err := ParseRequest([]byte("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n"), &req); err != nil {
		t.Fatalf("first ParseRequest: %v", err)
	}
	if _, err := ParseRequest([]byte("GET / HTTP/1.1\r\nC: 3\r\n\r\n"), &req); err != nil {
		t.Fatalf("second ParseRequest: %v", err)
	}
	if got, want := fields(req.Headers), []string{"C: 3"}; !slices.Equal(got, want) {
		t.Errorf("headers after second parse = %q, want %q", got, want)
	}
}

func TestParseRequestRejectsUnsupportedHeads(t *testing.T) {
	tests := []struct {
		name, head string
	}{
		{"bare LF line ends", "GET / HTTP/1.1\nHost: x\n\n"},
		{"bare LF ending the request line", "GET / HTTP/1.1\nHost: x\r\n\r\n"},
		{"bare LF inside a field line", "GET / HTTP/1.1\r\nA: 1\nB: 2\r\n\r\n"},
		{"bare CR inside a field value", "GET / HTTP/1.1\r\nA: 1\rB: 2\r\n\r\n"},
		{"obs-fold continuation line", "GET / HTTP/1.1\r\nA: 1\r\n 2\r\n\r\n"},
		{"obs-fold with tab", "GET / HTTP/1.1\r\nA: 1\r\n\t2\r\n\r\n"},
		{"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n"},
		{"empty field name", "GET / HTTP/1.1\r\n: x\r\n\r\n"},
		{"field line without colon", "GET / HTTP/1.1\r\nHost\r\n\r\n"},
		{"NUL in field value", "GET / HTTP/1.1\r\nA: x\x00y\r\n\r\n"},
		{"DEL in field value", "GET / HTTP/1.1\r\nA: x\x7fy\r\n\r\n"},
		{"escape in field value", "GET / HTTP/1.1\r\nA: x\x1by\r\n\r\n"},
		{"method with separator", "GE(T / HTTP/1.1\r\n\r\n"},
		{"method with non-ASCII byte", "G\xc3\xa9T / HTTP/1.1\r\n\r\n"},
		{"empty method", " / HTTP/1.1\r\n\r\n"},
		{"space inside target", "GET /a b HTTP/1.1\r\n\r\n"},
		{"two spaces before target", "GET  / HTTP/1.1\r\n\r\n"},
		{"tab in target", "GET /a\tb HTTP/1.1\r\n\r\n"},
		{"NUL in target", "GET /a\x00b HTTP/1.1\r\n\r\n"},
		{"DEL in target", "GET /a\x7fb HTTP/1.1\r\n\r\n"},
		{"missing target", "GET HTTP/1.1\r\n\r\n"},
		{"missing version", "GET /\r\n\r\n"},
		{"HTTP/2.0", "GET / HTTP/2.0\r\n\r\n"},
		{"HTTP/1.2", "GET / HTTP/1.2\r\n\r\n"},
		{"HTTP/1.10", "GET / HTTP/1.10\r\n\r\n"},
		{"lowercase protocol name", "GET / http/1.1\r\n\r\n"},
		{"trailing space after version", "GET / HTTP/1.1 \r\n\r\n"},
		{"empty request line", "\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := Request{Headers: make([]Header, 0, 8)}
			n, err := ParseRequest([]byte(tt.head), &req)
			if !errors.Is(err, ErrUnsupported) {
				t.Errorf("ParseRequest(%q) = %d, %v; want ErrUnsupported", tt.head, n, err)
			}
		})
	}
}

// A bare LF can never be part of a valid head, so a buffer holding one is
// unsupported at once, even before the head is complete and even when
// other lines end in CRLF; answering ErrIncomplete makes the caller wait
// for bytes that can never fix the head.
func TestParseRequestRejectsBareLFBeforeHeadIsComplete(t *testing.T) {
	for _, head := range []string{
		"GET / HTTP/1.1\r\nHost: x\n\n",
		"GET / HTTP/1.1\r\nHost: x\nAccept: */*\r\n",
	} {
		req := Request{Headers: make([]Header, 0, 8)}
		if n, err := ParseRequest([]byte(head), &req); !errors.Is(err, ErrUnsupported) {
			t.Errorf("ParseRequest(%q) = %d, %v; want ErrUnsupported", head, n, err)
		}
	}
}

func TestParseRequestTrimsFieldValueWhitespace(t *testing.T) {
	b := []byte("GET / HTTP/1.1\r\n" +
		"A: \t value with  inner space \t \r\n" +
		"B:value\r\n" +
		"C:   \r\n" +
		"D:\t\r\n" +
		"\r\n")
	req := Request{Headers: make([]Header, 0, 8)}
	if _, err := ParseRequest(b, &req); err != nil {
		t.Fatalf("ParseRequest: %v", err)
	}
	want := []string{"A: value with  inner space", "B: value", "C: ", "D: "}
	if got := fields(req.Headers); !slices.Equal(got, want) {
		t.Errorf("headers = %q, want %q", got, want)
	}
}

func TestParseRequestAcceptsObsTextAndTabInFieldValue(t *testing.T) {
	b := []byte("GET / HTTP/1.1\r\nA: caf\xc3\xa9\tx\r\n\r\n")
	req := Request{Headers: make([]Header, 0, 1)}
	if _, err := ParseRequest(b, &req); err != nil {
		t.Fatalf("ParseRequest: %v", err)
	}
	if got := string(req.Headers[0].Value); got != "caf\xc3\xa9\tx" {
		t.Errorf("value = %q, want %q", got, "caf\xc3\xa9\tx")
	}
}

func TestParseResponseReturnsStatusReasonAndFields(t *testing.T) {
	head := "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\n"
	b := []byte(head + "abc")
	res := Response{Headers: make([]Header, 0, 8)}
	n, err := ParseResponse(b, &res)
	if err != nil {
		t.Fatalf("ParseResponse: %v", err)
	}
	if n != len(head) {
		t.Errorf("head length = %d, want %d", n, len(head))
	}
	if res.Status != 404 || res.Minor != 1 || string(res.Reason) != "Not Found" {
		t.Errorf("status line = HTTP/1.%d %d %q, want HTTP/1.1 404 \"Not Found\"", res.Minor, res.Status, res.Reason)
	}
	want := []string{"Content-Type: text/plain", "Content-Length: 3"}
	if got := fields(res.Headers); !slices.Equal(got, want) {
		t.Errorf("headers = %q, want %q", got, want)
	}
}

func TestParseResponseAcceptsEmptyReason(t *testing.T) {
	for _, head := range []string{"HTTP/1.0 204\r\n\r\n", "HTTP/1.0 204 \r\n\r\n"} {
		res := Response{Reason: []byte("stale")}
		n, err := ParseResponse([]byte(head), &res)
		if err != nil {
			t.Errorf("ParseResponse(%q): %v", head, err)
			continue
		}
		if n != len(head) || res.Status != 204 || res.Minor != 0 || len(res.Reason) != 0 {
			t.Errorf("ParseResponse(%q): n=%d status=%d minor=%d reason=%q", head, n, res.Status, res.Minor, res.Reason)
		}
	}
}

func TestParseResponseReportsIncompleteForEveryProperPrefix(t *testing.T) {
	head := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Empty:\r\n\r\n"
	for i := range len(head) {
		res := Response{Headers: make([]Header, 0, 8)}
		if _, err := ParseResponse([]byte(head[:i]), &res); !errors.Is(err, ErrIncomplete) {
			t.Errorf("ParseResponse(%q) error = %v, want ErrIncomplete", head[:i], err)
		}
	}
}

func TestParseResponseReportsTooManyHeaders(t *testing.T) {
	res := Response{Headers: make([]Header, 0, 1)}
	_, err := ParseResponse([]byte("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n"), &res)
	if !errors.Is(err, ErrTooManyHeaders) {
		t.Errorf("error = %v, want ErrTooManyHeaders", err)
	}
}

func TestParseResponseRejectsInvalidStatusLine(t *testing.T) {
	tests := []struct {
		name, head string
	}{
		{"two-digit status", "HTTP/1.1 20 OK\r\n\r\n"},
		{"four-digit status", "HTTP/1.1 2000 OK\r\n\r\n"},
		{"non-digit status", "HTTP/1.1 2x0 OK\r\n\r\n"},
		{"status below 100", "HTTP/1.1 099 Odd\r\n\r\n"},
		{"status zero", "HTTP/1.1 000\r\n\r\n"},
		{"missing status", "HTTP/1.1 \r\n\r\n"},
		{"two spaces before status", "HTTP/1.1  200 OK\r\n\r\n"},
		{"no space before status", "HTTP/1.1200 OK\r\n\r\n"},
		{"tab before reason", "HTTP/1.1 200\tOK\r\n\r\n"},
		{"HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n"},
		{"HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n"},
		{"lowercase protocol name", "http/1.1 200 OK\r\n\r\n"},
		{"obs-fold in fields", "HTTP/1.1 200 OK\r\nA: 1\r\n 2\r\n\r\n"},
		{"control char in field value", "HTTP/1.1 200 OK\r\nA: 1\x00\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Response{Headers: make([]Header, 0, 8)}
			n, err := ParseResponse([]byte(tt.head), &res)
			if !errors.Is(err, ErrUnsupported) {
				t.Errorf("ParseResponse(%q) = %d, %v; want ErrUnsupported", tt.head, n, err)
			}
		})
	}
}

// RFC 9112 section 4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ).
// A bare LF in the reason is a line end to many clients (net/http among
// them), so accepting it lets the upstream show the client header fields
// the proxy never saw.
func TestParseResponseRejectsControlCharsInReason(t *testing.T) {
	for _, head := range []string{
		"HTTP/1.1 200 OK\nX-Injected: 1\r\n\r\n",
		"HTTP/1.1 200 O\rK\r\n\r\n",
		"HTTP/1.1 200 O\x00K\r\n\r\n",
		"HTTP/1.1 200 O\x7fK\r\n\r\n",
	} {
		res := Response{Headers: make([]Header, 0, 8)}
		if n, err := ParseResponse([]byte(head), &res); !errors.Is(err, ErrUnsupported) {
			t.Errorf("ParseResponse(%q) = %d, %v (reason %q); want ErrUnsupported", head, n, err, res.Reason)
		}
	}
}

// The package promises ErrUnsupported for bare LF line ends, and
// ParseResponse is documented to behave like ParseRequest.
func TestParseResponseRejectsBareLFLineEnds(t *testing.T) {
	head := "HTTP/1.1 200 OK\nContent-Length: 0\n\n"
	res := Response{Headers: make([]Header, 0, 8)}
	if n, err := ParseResponse([]byte(head), &res); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ParseResponse(%q) = %d, %v; want ErrUnsupported", head, n, err)
	}
}

// RFC 9112 section 3.2: the request target is in origin-form ("/..."),
// absolute-form, authority-form (CONNECT) or asterisk-form. A target in
// none of them is malformed, and net/http refuses it.
func TestParseRequestRejectsTargetInNoRequestForm(t *testing.T) {
	for _, head := range []string{
		"GET a HTTP/1.1\r\n\r\n",
		"GET ../admin HTTP/1.1\r\n\r\n",
		"GET /%zz HTTP/1.1\r\n\r\n",
		"CONNECT #0 HTTP/1.1\r\n\r\n",
	} {
		req := Request{Headers: make([]Header, 0, 8)}
		if n, err := ParseRequest([]byte(head), &req); !errors.Is(err, ErrUnsupported) {
			t.Errorf("ParseRequest(%q) = %d, %v (target %q); want ErrUnsupported", head, n, err, req.Target)
		}
	}
}

func TestEqualFoldIgnoresASCIICaseOnly(t *testing.T) {
	tests := []struct {
		b, s string
		want bool
	}{
		{"Content-Length", "content-length", true},
		{"TRANSFER-ENCODING", "transfer-encoding", true},
		{"chunked", "Chunked", true},
		{"", "", true},
		{"chunked", "chunke", false},
		{"chunked", "chunkee", false},
		{"[", "{", false}, // 'Z'+1 and 'z'+1 differ by the case bit
		{"@", "`", false},
		{"\xc3\x89", "\xc3\xa9", false}, // É and é: not ASCII
		{"K", "\u212a", false},          // Kelvin sign folds to k in Unicode, not here
	}
	for _, tt := range tests {
		if got := EqualFold([]byte(tt.b), tt.s); got != tt.want {
			t.Errorf("EqualFold(%q, %q) = %v, want %v", tt.b, tt.s, got, tt.want)
		}
	}
}

func TestHasTokenFindsListElementIgnoringCase(t *testing.T) {
	tests := []struct {
		v, tok string
		want   bool
	}{
		{"keep-alive, Upgrade", "upgrade", true},
		{"keep-alive, Upgrade", "keep-alive", true},
		{"close", "close", true},
		{"Close", "close", true},
		{" \tclose\t ", "close", true},
		{"a,,close", "close", true},
		{"keep-alive,close", "close", true},
		{"closed", "close", false},
		{"enclose", "close", false},
		{"keep-alive, Upgrade", "close", false},
		{"", "close", false},
		{"\"close\"", "close", false},
	}
	for _, tt := range tests {
		if got := HasToken([]byte(tt.v), tt.tok); got != tt.want {
			t.Errorf("HasToken(%q, %q) = %v, want %v", tt.v, tt.tok, got, tt.want)
		}
	}
}

func TestParseContentLengthAcceptsOnlyDecimalDigits(t *testing.T) {
	tests := []struct {
		v      string
		want   int64
		wantOK bool
	}{
		{"0", 0, true},
		{"42", 42, true},
		{"007", 7, true},
		{"999999999999999999", 999999999999999999, true}, // 18 digits
		{"1000000000000000000", 0, false},                // 19 digits
		{"", 0, false},
		{"+5", 0, false},
		{"-5", 0, false},
		{" 5", 0, false},
		{"5 ", 0, false},
		{"5,5", 0, false},
		{"0x10", 0, false},
		{"1e3", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseContentLength([]byte(tt.v))
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseContentLength(%q) = %d, %v; want %d, %v", tt.v, got, ok, tt.want, tt.wantOK)
		}
	}
}

// net/http handles these fields itself: Host moves to Request.Host, and
// the framing fields are interpreted (and may be rejected) by its body
// reader, so the fuzz test does not compare them.
var netHTTPOwnedFields = map[string]bool{
	"Host":              true,
	"Content-Length":    true,
	"Transfer-Encoding": true,
	"Trailer":           true,
}

// parseTargetLikeNetHTTP parses a request target the way http.ReadRequest
// does: authority-form for CONNECT, otherwise a request URI.
func parseTargetLikeNetHTTP(method, target string) error {
	if method == "CONNECT" && !strings.HasPrefix(target, "/") {
		target = "http://" + target
	}
	_, err := url.ParseRequestURI(target)
	return err
}

// FuzzParseRequest checks the fast parser against net/http: whatever
// ParseRequest accepts, http.ReadRequest accepts too, with the same
// request line and the same header fields.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"))
	f.Add([]byte("GET /a?b=c HTTP/1.0\r\nUser-Agent: x\r\nAccept: */*\r\n\r\n"))
	f.Add([]byte("POST /submit HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX-Empty:\r\n\r\nabc"))
	f.Add([]byte("PUT /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"))
	f.Add([]byte("OPTIONS * HTTP/1.1\r\nHost: h\r\nA:  spaced \t\r\nA: twice\r\n\r\n"))
	f.Add([]byte("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"))
	f.Add([]byte("GET http://example.com/x HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n\r\n"))

	f.Fuzz(func(t *testing.T, input []byte) {
		req := Request{Headers: make([]Header, 0, 64)}
		n, err := ParseRequest(input, &req)
		if err != nil {
			return
		}
		if n < 4 || n > len(input) || !bytes.HasSuffix(input[:n], []byte("\r\n\r\n")) {
			t.Fatalf("ParseRequest(%q) = %d: not a head ending in CRLF CRLF within the input", input, n)
		}

		hostFields := 0
		framing := false
		for _, h := range req.Headers {
			switch name := http.CanonicalHeaderKey(string(h.Name)); {
			case name == "Host":
				hostFields++
			case netHTTPOwnedFields[name]:
				framing = true
			}
		}
		if err := parseTargetLikeNetHTTP(string(req.Method), string(req.Target)); err != nil {
			t.Fatal("(see TestParseRequestRejectsTargetInNoRequestForm): target", string(req.Target), "is in no request form:", err)
		}

		hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(input[:n])))
		if err != nil {
			// net/http refuses duplicate Host fields (RFC 9112
			// section 3.2 leaves that check to the server, not the
			// head syntax) and framing fields it cannot use.
			if hostFields > 1 || framing {
				return
			}
			t.Fatalf("ParseRequest accepted %q but http.ReadRequest failed: %v", input[:n], err)
		}
		if hr.Method != string(req.Method) || hr.RequestURI != string(req.Target) {
			t.Errorf("request line: fast parser %q %q, net/http %q %q", req.Method, req.Target, hr.Method, hr.RequestURI)
		}
		if hr.ProtoMajor != 1 || hr.ProtoMinor != req.Minor {
			t.Errorf("version: fast parser HTTP/1.%d, net/http HTTP/%d.%d", req.Minor, hr.ProtoMajor, hr.ProtoMinor)
		}

		fast := http.Header{}
		for _, h := range req.Headers {
			fast.Add(string(h.Name), string(h.Value))
		}
		for name, vals := range fast {
			if netHTTPOwnedFields[name] {
				continue
			}
			if !slices.Equal(hr.Header[name], vals) {
				t.Errorf("field %s: fast parser %q, net/http %q", name, vals, hr.Header[name])
			}
		}
		for name, vals := range hr.Header {
			if netHTTPOwnedFields[name] || fast[name] != nil {
				continue
			}
			// net/http adds Cache-Control: no-cache for
			// Pragma: no-cache (RFC 7234 section 5.4).
			if name == "Cache-Control" && fast["Pragma"] != nil {
				continue
			}
			t.Errorf("field %s: net/http sees %q, fast parser does not", name, vals)
		}
	})
}
