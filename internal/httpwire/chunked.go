package httpwire

import "errors"

// ErrChunked is the error of a malformed chunked body.
var ErrChunked = errors.New("httpwire: malformed chunked body")

// maxChunkSizeDigits bounds a chunk size line's hex digits, so a size
// cannot overflow.
const maxChunkSizeDigits = 15

// Chunked follows a body in chunked transfer coding (RFC 9112 section 7.1)
// as it passes through, trailers included, to find where it ends. The zero
// value is ready for the start of a body.
type Chunked struct {
	state  chunkState
	left   int64 // data bytes left in the current chunk
	digits int
}

type chunkState uint8

const (
	chunkSize     chunkState = iota // hex digits of a chunk size
	chunkExt                        // chunk extensions up to CR
	chunkSizeLF                     // LF ending the size line
	chunkData                       // left bytes of data
	chunkDataCR                     // CR after the data
	chunkDataLF                     // LF after the data
	trailerStart                    // start of a trailer line, or the final CRLF
	trailerLine                     // inside a trailer field up to CR
	trailerLineLF                   // LF ending a trailer field
	finalLF                         // LF of the final CRLF
	chunkDone                       // the body has ended
)

// Scan consumes p, the next bytes of the body, and returns how many of
// them belong to it. done reports that the body ended at p[n-1]; bytes
// after it belong to the next message. After done, Scan consumes nothing.
func (c *Chunked) Scan(p []byte) (n int, done bool, err error) {
	for n < len(p) {
		b := p[n]
		switch c.state {
		case chunkSize:
			v, ok := hexValue(b)
			switch {
			case ok:
				if c.digits == maxChunkSizeDigits {
					return n, false, ErrChunked
				}
				c.left = c.left<<4 | int64(v)
				c.digits++
			case c.digits == 0:
				return n, false, ErrChunked
			case b == '\r':
				c.state = chunkSizeLF
			case b == ';' || b == ' ' || b == '\t':
				c.state = chunkExt
			default:
				return n, false, ErrChunked
			}
		case chunkExt:
			if b == '\r' {
				c.state = chunkSizeLF
			} else if b == '\n' {
				return n, false, ErrChunked
			}
		case chunkSizeLF:
			if b != '\n' {
				return n, false, ErrChunked
			}
			c.digits = 0
			if c.left == 0 {
				c.state = trailerStart
			} else {
				c.state = chunkData
			}
		case chunkData:
			k := int64(len(p) - n)
			if k > c.left {
				k = c.left
			}
			n += int(k)
			c.left -= k
			if c.left == 0 {
				c.state = chunkDataCR
			}
			continue
		case chunkDataCR:
			if b != '\r' {
				return n, false, ErrChunked
			}
			c.state = chunkDataLF
		case chunkDataLF:
			if b != '\n' {
				return n, false, ErrChunked
			}
			c.state = chunkSize
		case trailerStart:
			switch b {
			case '\r':
				c.state = finalLF
			case '\n':
				// A bare LF would end the body for some readers
				// and not others: the way to smuggle a request.
				return n, false, ErrChunked
			default:
				c.state = trailerLine
			}
		case trailerLine:
			if b == '\r' {
				c.state = trailerLineLF
			} else if b == '\n' {
				return n, false, ErrChunked
			}
		case trailerLineLF:
			if b != '\n' {
				return n, false, ErrChunked
			}
			c.state = trailerStart
		case finalLF:
			if b != '\n' {
				return n, false, ErrChunked
			}
			c.state = chunkDone
			return n + 1, true, nil
		case chunkDone:
			return n, true, nil
		}
		n++
	}
	return n, c.state == chunkDone, nil
}

func hexValue(b byte) (byte, bool) {
	switch {
	case '0' <= b && b <= '9':
		return b - '0', true
	case 'a' <= b && b <= 'f':
		return b - 'a' + 10, true
	case 'A' <= b && b <= 'F':
		return b - 'A' + 10, true
	}
	return 0, false
}
