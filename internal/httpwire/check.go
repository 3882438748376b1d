package httpwire

import "bytes"

// A Refusal says why a request is refused; its answer is 400 Bad Request,
// and the connection closes after it, because a reader that disagrees
// with another about where this message ends may already have taken the
// next bytes for a request of their own (RFC 9112 section 11.2).
type Refusal string

func (r Refusal) Error() string { return "httpwire: request refused: " + string(r) }

// Reasons of CheckRequestHead and CheckTarget.
const (
	RefusedBareLF         Refusal = "a line of the head ends in a bare LF (send CRLF)"
	RefusedBareCR         Refusal = "a bare CR in the head"
	RefusedObsFold        Refusal = "obsolete line folding in a header field"
	RefusedFieldName      Refusal = "a header field name that is not a token, or whitespace before its colon"
	RefusedFieldValue     Refusal = "a control character in a header field value"
	RefusedRequestLine    Refusal = "a malformed request line"
	RefusedTEAndLength    Refusal = "both Transfer-Encoding and Content-Length"
	RefusedTEOnHTTP10     Refusal = "Transfer-Encoding in an HTTP/1.0 request"
	RefusedTENotChunked   Refusal = "a Transfer-Encoding whose final coding is not chunked"
	RefusedContentLength  Refusal = "an invalid Content-Length, or several that differ"
	RefusedHostMissing    Refusal = "no Host header in an HTTP/1.1 request"
	RefusedHostRepeated   Refusal = "more than one Host header"
	RefusedHostInvalid    Refusal = "a Host that is not a host name or address with an optional port"
	RefusedDotSegment     Refusal = "a dot-segment (/./ or /../, also percent-encoded) in the path"
	RefusedChunkedFraming Refusal = "a malformed chunked body"
)

// Framing is how a request's body is delimited, as CheckRequestHead
// found it.
type Framing struct {
	// Length is the body's Content-Length; 0 when there is none.
	Length int64
	// Chunked: the body is in chunked transfer coding.
	Chunked bool
}

// CheckRequestHead checks a whole request head as it came from the wire,
// from the request line through the empty line that ends it, where lines
// may end in a bare LF (as lenient readers such as net/http take them). It
// returns the body's framing, or a Refusal for a head that readers could
// frame differently: bare LF or CR, obsolete line folding, malformed
// field names, Transfer-Encoding with Content-Length or on HTTP/1.0, a
// final coding other than chunked, differing Content-Lengths, and a
// missing, repeated or malformed Host. It does not allocate.
func CheckRequestHead(head []byte) (Framing, error) {
	var f Framing
	if i := bytes.IndexByte(head, '\r'); i >= 0 {
		if err := checkCRs(head[i:]); err != nil {
			return f, err
		}
	}
	line, rest, err := nextLine(head)
	if err != nil {
		return f, err
	}
	minor, err := requestLine(line)
	if err != nil {
		return f, err
	}
	var hosts int
	var lengths, te bool
	var lastCoding []byte
	for len(rest) > 0 {
		line, rest, err = nextLine(rest)
		if err != nil {
			return f, err
		}
		if len(line) == 0 {
			break
		}
		name, value, err := field(line)
		if err != nil {
			return f, err
		}
		switch {
		case EqualFold(name, "Host"):
			hosts++
			if hosts > 1 {
				return f, RefusedHostRepeated
			}
			if !ValidHost(value) {
				return f, RefusedHostInvalid
			}
		case EqualFold(name, "Content-Length"):
			n, ok := ParseContentLength(value)
			if !ok || lengths && n != f.Length {
				return f, RefusedContentLength
			}
			f.Length, lengths = n, true
		case EqualFold(name, "Transfer-Encoding"):
			te = true
			for v := value; len(v) > 0; {
				var item []byte
				if item, v = NextToken(v); len(item) > 0 {
					lastCoding = item
				}
			}
		}
	}
	switch {
	case hosts == 0 && minor == 1:
		return f, RefusedHostMissing
	case te && minor == 0:
		return f, RefusedTEOnHTTP10
	case te && lengths:
		return f, RefusedTEAndLength
	case te && !EqualFold(lastCoding, "chunked"):
		return f, RefusedTENotChunked
	}
	f.Chunked = te
	return f, nil
}

// checkCRs refuses a CR that does not end a line.
func checkCRs(b []byte) error {
	for i, c := range b {
		if c == '\r' && (i+1 == len(b) || b[i+1] != '\n') {
			return RefusedBareCR
		}
	}
	return nil
}

// nextLine cuts the first line off b, refusing a bare LF; a last line
// without its LF is taken as it is.
func nextLine(b []byte) (line, rest []byte, err error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil, nil
	}
	if i == 0 || b[i-1] != '\r' {
		return nil, nil, RefusedBareLF
	}
	return b[:i-1], b[i+1:], nil
}

// requestLine checks method SP target SP HTTP-version and returns the
// minor version.
func requestLine(line []byte) (int, error) {
	sp := bytes.IndexByte(line, ' ')
	last := bytes.LastIndexByte(line, ' ')
	if sp <= 0 || last == sp || !isToken(line[:sp]) {
		return 0, RefusedRequestLine
	}
	minor, ok := version(line[last+1:])
	if !ok {
		return 0, RefusedRequestLine
	}
	return minor, nil
}

// field splits a header line into its name and value, refusing folding,
// whitespace before the colon and control characters.
func field(line []byte) (name, value []byte, err error) {
	if line[0] == ' ' || line[0] == '\t' {
		return nil, nil, RefusedObsFold
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !isToken(line[:colon]) {
		return nil, nil, RefusedFieldName
	}
	value = trimOWS(line[colon+1:])
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return nil, nil, RefusedFieldValue
		}
	}
	return line[:colon], value, nil
}
