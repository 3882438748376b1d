// Package httpwire reads HTTP/1.1 message heads and body framing straight
// from the bytes on the wire, without allocating. It is the parsing half of
// the router's fast path: a request or response head is parsed in place,
// its fields are slices of the buffer it was read into, and the body's
// framing (Content-Length or chunked) is followed byte by byte so a proxy
// can pass the body on verbatim and know where it ends.
//
// The parsers are strict: they accept what RFC 9112 calls valid and report
// everything else as ErrUnsupported, leaving it to a full HTTP
// implementation (net/http) to answer the odd cases: bare LF line ends,
// obsolete line folding, control characters, HTTP/0.9 or 2. Before such a
// head reaches net/http, CheckRequestHead refuses those a proxy must not
// pass on: the ones readers could frame differently (request smuggling).
package httpwire

import (
	"bytes"
	"errors"
)

// Errors of the head parsers.
var (
	// ErrIncomplete: the buffer does not hold the whole head yet; read
	// more and parse again.
	ErrIncomplete = errors.New("httpwire: incomplete message head")
	// ErrUnsupported: the head is malformed, or valid in a form this
	// package leaves to a full HTTP implementation.
	ErrUnsupported = errors.New("httpwire: message head not handled by the fast path")
	// ErrTooManyHeaders: the head has more header fields than the
	// caller's slice has room for.
	ErrTooManyHeaders = errors.New("httpwire: too many header fields")
)

// Header is one header field; Name and Value are slices of the parsed
// buffer, Value without surrounding whitespace.
type Header struct {
	Name, Value []byte
}

// Request is a parsed request head.
type Request struct {
	Method, Target []byte
	// Minor is the x of HTTP/1.x: 0 or 1.
	Minor int
	// Headers holds the fields in order; ParseRequest appends to
	// Headers[:0], so give it a slice with the capacity you allow.
	Headers []Header
}

// Response is a parsed response head.
type Response struct {
	Status int
	// Minor is the x of HTTP/1.x: 0 or 1.
	Minor  int
	Reason []byte
	// Headers holds the fields in order, like Request.Headers.
	Headers []Header
}

// ParseRequest parses the request head at the start of b into req and
// returns its length, final CRLF included. It fails with ErrIncomplete
// when b ends before the head does, ErrTooManyHeaders when req.Headers
// lacks capacity, and ErrUnsupported otherwise.
func ParseRequest(b []byte, req *Request) (int, error) {
	end, err := headEnd(b)
	if err != nil {
		return 0, err
	}
	head := b[:end+2]
	line, rest := cutLine(head)
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !isToken(line[:sp]) {
		return 0, ErrUnsupported
	}
	req.Method = line[:sp]
	line = line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return 0, ErrUnsupported
	}
	req.Target = line[:sp]
	if !originForm(req.Target) {
		return 0, ErrUnsupported
	}
	minor, ok := version(line[sp+1:])
	if !ok {
		return 0, ErrUnsupported
	}
	req.Minor = minor
	hs, err := parseFields(rest, req.Headers[:0])
	req.Headers = hs
	if err != nil {
		return 0, err
	}
	return end + 4, nil
}

// ParseResponse parses the response head at the start of b into res and
// returns its length, like ParseRequest.
func ParseResponse(b []byte, res *Response) (int, error) {
	end, err := headEnd(b)
	if err != nil {
		return 0, err
	}
	head := b[:end+2]
	line, rest := cutLine(head)
	if len(line) < 12 || line[8] != ' ' {
		return 0, ErrUnsupported
	}
	minor, ok := version(line[:8])
	if !ok {
		return 0, ErrUnsupported
	}
	res.Minor = minor
	status := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, ErrUnsupported
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 {
		return 0, ErrUnsupported
	}
	res.Status = status
	res.Reason = nil
	if len(line) > 12 {
		if line[12] != ' ' {
			return 0, ErrUnsupported
		}
		res.Reason = line[13:]
		for _, c := range res.Reason {
			if c < ' ' && c != '\t' || c == 0x7f {
				return 0, ErrUnsupported
			}
		}
	}
	hs, err := parseFields(rest, res.Headers[:0])
	res.Headers = hs
	if err != nil {
		return 0, err
	}
	return end + 4, nil
}

// headEnd returns where the CRLF CRLF ending the head in b starts. A
// bare LF anywhere before it (or in b, while the head is incomplete) is
// ErrUnsupported: readers disagree on where such lines end. It reads b
// once, line by line.
func headEnd(b []byte) (int, error) {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0, ErrIncomplete
		}
		lf := i + j
		if lf == 0 || b[lf-1] != '\r' {
			return 0, ErrUnsupported
		}
		if j == 1 && i > 0 {
			return lf - 3, nil // an empty line ends the head
		}
		i = lf + 1
	}
}

// originForm reports whether target is a request target in origin form
// (RFC 9112 section 3.2.1): an absolute path with an optional query, no
// fragment, and only well-formed percent escapes. The other forms
// (absolute, authority, asterisk) are left to net/http.
func originForm(target []byte) bool {
	if len(target) == 0 || target[0] != '/' {
		return false
	}
	for i := 0; i < len(target); i++ {
		c := target[i]
		switch {
		case c <= ' ' || c == 0x7f || c == '#':
			return false
		case c == '%':
			if i+2 >= len(target) {
				return false
			}
			if _, ok := hexValue(target[i+1]); !ok {
				return false
			}
			if _, ok := hexValue(target[i+2]); !ok {
				return false
			}
		}
	}
	return true
}

// cutLine splits off the first line of b, whose line ends headEnd has
// checked to be CRLF.
func cutLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	return b[:i-1], b[i+1:]
}

// version parses "HTTP/1.0" or "HTTP/1.1" into its minor number.
func version(b []byte) (int, bool) {
	if len(b) != 8 || string(b[:7]) != "HTTP/1." {
		return 0, false
	}
	switch b[7] {
	case '0':
		return 0, true
	case '1':
		return 1, true
	}
	return 0, false
}

// parseFields parses CRLF-terminated header lines, appending to hs.
func parseFields(b []byte, hs []Header) ([]Header, error) {
	for len(b) > 0 {
		var line []byte
		line, b = cutLine(b)
		if len(hs) == cap(hs) {
			return hs, ErrTooManyHeaders
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			// Includes obsolete line folding, which starts
			// with whitespace.
			return hs, ErrUnsupported
		}
		v := trimOWS(line[colon+1:])
		for _, c := range v {
			if c < ' ' && c != '\t' || c == 0x7f {
				return hs, ErrUnsupported
			}
		}
		hs = append(hs, Header{Name: line[:colon], Value: v})
	}
	return hs, nil
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// tokenChars marks the bytes allowed in an RFC 9110 token.
var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()

func isToken(b []byte) bool {
	for _, c := range b {
		if !tokenChars[c] {
			return false
		}
	}
	return len(b) > 0
}

// EqualFold reports whether b equals the ASCII string s, ignoring case.
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// HasToken reports whether the comma-separated list v (such as a
// Connection header) holds token t, ignoring case.
func HasToken(v []byte, t string) bool {
	for len(v) > 0 {
		var item []byte
		item, v = NextToken(v)
		if EqualFold(item, t) {
			return true
		}
	}
	return false
}

// NextToken splits the comma-separated list v into its first element,
// without surrounding whitespace (possibly empty), and the rest.
func NextToken(v []byte) (item, rest []byte) {
	if i := bytes.IndexByte(v, ','); i >= 0 {
		return trimOWS(v[:i]), v[i+1:]
	}
	return trimOWS(v), nil
}

// ParseContentLength parses a Content-Length value: decimal digits, at
// most 18 of them. It reports false for anything else.
func ParseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
