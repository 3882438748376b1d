package httpwire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http/httputil"
	"net/textproto"
	"strings"
	"testing"
)

// chunkedBody uses every part of the chunked grammar: extensions with and
// without values, whitespace before them, upper and lower case hex, an
// extension on the last chunk, and trailer fields.
const chunkedBody = "4;name=value\r\nWiki\r\n" +
	"5\r\npedia\r\n" +
	"E ; ext\r\n in\r\n\r\nchunks.\r\n" +
	"a\r\n0123456789\r\n" +
	"0;last\r\n" +
	"Expires: never\r\n" +
	"X-Trailer: 1\r\n" +
	"\r\n"

// nextMessage stands for the bytes of the next message on the connection,
// which Scan must not take.
const nextMessage = "GET /next HTTP/1.1\r\nHost: x\r\n\r\n"

func TestChunkedScanFindsEndOfBodyGivenAtOnce(t *testing.T) {
	var c Chunked
	n, done, err := c.Scan([]byte(chunkedBody + nextMessage))
	if err != nil || !done || n != len(chunkedBody) {
		t.Fatalf("Scan = %d, %v, %v; want %d, true, nil", n, done, err, len(chunkedBody))
	}
}

func TestChunkedScanFindsEndOfBodyGivenOneByteAtATime(t *testing.T) {
	var c Chunked
	for i := range len(chunkedBody) {
		n, done, err := c.Scan([]byte{chunkedBody[i]})
		last := i == len(chunkedBody)-1
		if err != nil || n != 1 || done != last {
			t.Fatalf("Scan(byte %d %q) = %d, %v, %v; want 1, %v, nil", i, chunkedBody[i], n, done, err, last)
		}
	}
	n, done, err := c.Scan([]byte(nextMessage))
	if err != nil || !done || n != 0 {
		t.Errorf("Scan after the end = %d, %v, %v; want 0, true, nil", n, done, err)
	}
}

func TestChunkedScanFindsEndOfBodySplitAtEveryPosition(t *testing.T) {
	all := []byte(chunkedBody + nextMessage)
	for i := 0; i <= len(chunkedBody); i++ {
		var c Chunked
		n1, done1, err := c.Scan(all[:i])
		if err != nil || n1 != i || done1 != (i == len(chunkedBody)) {
			t.Fatalf("split at %d: first Scan = %d, %v, %v; want %d, %v, nil", i, n1, done1, err, i, i == len(chunkedBody))
		}
		n2, done2, err := c.Scan(all[i:])
		if err != nil || !done2 || n1+n2 != len(chunkedBody) {
			t.Fatalf("split at %d: second Scan = %d, %v, %v; want %d, true, nil", i, n2, done2, err, len(chunkedBody)-i)
		}
	}
}

func TestChunkedScanReportsNotDoneWhileBodyIsIncomplete(t *testing.T) {
	var c Chunked
	n, done, err := c.Scan([]byte("5\r\nhel"))
	if err != nil || done || n != 6 {
		t.Errorf("Scan = %d, %v, %v; want 6, false, nil", n, done, err)
	}
	n, done, err = c.Scan(nil)
	if err != nil || done || n != 0 {
		t.Errorf("Scan(nil) = %d, %v, %v; want 0, false, nil", n, done, err)
	}
}

func TestChunkedScanAcceptsFifteenHexDigitSize(t *testing.T) {
	var c Chunked
	size := "fffffffffffffff" // 15 digits, the most Scan takes
	n, done, err := c.Scan([]byte(size + "\r\nabc"))
	if err != nil || done || n != len(size)+5 {
		t.Errorf("Scan = %d, %v, %v; want %d, false, nil", n, done, err, len(size)+5)
	}
}

func TestChunkedScanRejectsMalformedBodies(t *testing.T) {
	tests := []struct {
		name, body string
	}{
		{"non-hex size", "g\r\n"},
		{"size with 0x prefix", "0x5\r\nhello\r\n"},
		{"empty size", "\r\n"},
		{"leading space before size", " 5\r\nhello\r\n"},
		{"sign before size", "+5\r\nhello\r\n"},
		{"size of 16 hex digits", "1000000000000000\r\n"},
		{"size of 16 zero-padded hex digits", "0000000000000001\r\n"},
		{"LF without CR after size", "5\nhello\r\n0\r\n\r\n"},
		{"LF without CR after extension", "5;a=b\nhello\r\n"},
		{"CR not followed by LF after size", "5\rhello\r\n"},
		{"data longer than size", "3\r\nabcd\r\n"},
		{"LF without CR after data", "3\r\nabc\n0\r\n\r\n"},
		{"CR not followed by LF after data", "3\r\nabc\rX"},
		{"missing CRLF after data", "3\r\nabc0\r\n\r\n"},
		{"LF without CR ending a trailer field", "0\r\nX: 1\n\r\n"},
		{"CR not followed by LF ending a trailer field", "0\r\nX: 1\rY\r\n\r\n"},
		{"CR not followed by LF ending the body", "0\r\n\rX"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Chunked
			n, done, err := c.Scan([]byte(tt.body))
			if !errors.Is(err, ErrChunked) {
				t.Errorf("Scan(%q) = %d, %v, %v; want ErrChunked", tt.body, n, done, err)
			}
			if n > len(tt.body) {
				t.Errorf("Scan(%q) consumed %d bytes of %d", tt.body, n, len(tt.body))
			}
		})
	}
}

// A trailer section is field lines each ending in CRLF, then CRLF. net/http
// (and other parsers reading lines up to LF) end the trailer section at a
// bare LF; a Scan that reads on instead ends the body later than the
// upstream does, and the bytes between are a request the proxy never saw.
func TestChunkedScanRejectsBareLFAtStartOfTrailerLine(t *testing.T) {
	for _, body := range []string{
		"0\r\n\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
		"0\r\nX: 1\r\n\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		var c Chunked
		if n, done, err := c.Scan([]byte(body)); !errors.Is(err, ErrChunked) {
			t.Errorf("Scan(%q) = %d, %v, %v; want ErrChunked", body, n, done, err)
		}
	}
}

func TestChunkedScanFindsEndOfBodiesFromNetHTTPChunkedWriter(t *testing.T) {
	payload := strings.Repeat("0123456789abcdef", 300)
	tests := []struct {
		name   string
		writes []int // lengths of successive writes to the chunked writer
	}{
		{"no data", nil},
		{"one byte", []int{1}},
		{"one large chunk", []int{len(payload)}},
		{"many chunk sizes", []int{1, 15, 16, 17, 255, 256, 4095, 4096}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := httputil.NewChunkedWriter(&buf)
			var want []byte
			for _, l := range tt.writes {
				chunk := []byte(payload[:l])
				want = append(want, chunk...)
				if _, err := w.Write(chunk); err != nil {
					t.Fatalf("chunked write: %v", err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatalf("chunked close: %v", err)
			}
			buf.WriteString("\r\n") // NewChunkedWriter leaves the empty trailer section to its caller
			body := bytes.Clone(buf.Bytes())

			var c Chunked
			n, done, err := c.Scan(append(body, nextMessage...))
			if err != nil || !done || n != len(body) {
				t.Fatalf("Scan = %d, %v, %v; want %d, true, nil", n, done, err, len(body))
			}
			got, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(body[:n])))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("net/http reads back %d bytes, %v; want the %d bytes written", len(got), err, len(want))
			}
		})
	}
}

// FuzzChunkedScan checks that Scan stays within its input, does not depend
// on how the input is split, and never ends a body where net/http would not.
func FuzzChunkedScan(f *testing.F) {
	f.Add([]byte(chunkedBody + nextMessage))
	f.Add([]byte("0\r\n\r\n"))
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("1;a=\"b\"\r\nx\r\nA\r\n0123456789\r\n0\r\nX: y\r\n\r\nrest"))
	f.Add([]byte("3\r\nabc\n0\r\n\r\n"))
	f.Add([]byte("0\r\n\nGET /smuggled HTTP/1.1\r\n\r\n")) // skipped until the trailer bug is fixed

	f.Fuzz(func(t *testing.T, input []byte) {
		var whole Chunked
		n, done, err := whole.Scan(input)
		if n < 0 || n > len(input) {
			t.Fatalf("Scan(%q) consumed %d of %d bytes", input, n, len(input))
		}

		var bytewise Chunked
		var bn int
		var bdone bool
		var berr error
		for i := 0; i < len(input) && berr == nil && !bdone; i++ {
			var k int
			k, bdone, berr = bytewise.Scan(input[i : i+1])
			bn += k
		}
		if bn != n || bdone != done || (berr == nil) != (err == nil) {
			t.Fatalf("Scan(%q) at once = %d, %v, %v; one byte at a time = %d, %v, %v", input, n, done, err, bn, bdone, berr)
		}
		if err != nil || !done {
			return
		}

		body := input[:n]
		br := bufio.NewReader(bytes.NewReader(body))
		_, err = io.Copy(io.Discard, httputil.NewChunkedReader(br))
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("Scan ends %q at %d, but net/http reads on past it: %v", input, n, err)
			}
			// Scan is more lenient than net/http on the size line:
			// it takes whitespace before ";" (BWS, valid in RFC 9112)
			// and any bytes after the size's whitespace or ";". Only
			// those bodies may fail in net/http.
			if !bytes.ContainsAny(body, " \t;") {
				t.Fatalf("Scan accepts %q but net/http fails: %v", body, err)
			}
			return
		}

		// net/http's chunked reader stops after the last chunk's size
		// line; the rest is the trailer section, which net/http's body
		// reader parses as a MIME header.
		rest, _ := io.ReadAll(br)
		if string(rest) == "\r\n" {
			return
		}
		if rest[0] == '\n' || bytes.Contains(rest, []byte("\n\n")) {
			t.Fatal("(see TestChunkedScanRejectsBareLFAtStartOfTrailerLine): bare LF starts a trailer line")
		}
		tr := bufio.NewReader(bytes.NewReader(rest))
		if _, err := textproto.NewReader(tr).ReadMIMEHeader(); err != nil {
			return // net/http refuses the trailers, so no one reads past them
		}
		if left, _ := io.ReadAll(tr); len(left) != 0 {
			t.Fatalf("Scan ends %q at %d, but net/http's trailer section ends %d bytes earlier", input, n, len(left))
		}
	})
}
