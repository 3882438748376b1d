package router

import (
	"bufio"
	"net"
	"net/http"
	"sync"
)

var retryWriters = sync.Pool{New: func() any { return &retryWriter{header: make(http.Header)} }}

// retryWriter is the ResponseWriter of a canary attempt that may be retried
// on stable. It holds back the answer until its status is known: a 5xx
// (including the 502 the endpoint writes when it cannot reach the replica)
// marks the attempt failed and is swallowed, headers and body, so that
// nothing reaches the client; any other status passes through, and from
// then on the writer is transparent, Flush and Hijack included.
// Informational answers (1xx other than 101) of such an attempt are
// dropped: the final answer may still come from another backend.
type retryWriter struct {
	w http.ResponseWriter
	// header collects the answer's headers until the status is known.
	header  http.Header
	status  int
	decided bool // the status is known
	failed  bool // the status is 5xx: the answer is swallowed
}

func (rw *retryWriter) reset(w http.ResponseWriter) {
	clear(rw.header)
	*rw = retryWriter{w: w, header: rw.header, status: http.StatusOK}
}

// Header returns the held-back headers until the status is known, then the
// client's.
func (rw *retryWriter) Header() http.Header {
	if rw.decided && !rw.failed {
		return rw.w.Header()
	}
	return rw.header
}

// decide fixes the attempt's outcome by its status and, when it passes
// through, moves the held-back headers to the client's.
func (rw *retryWriter) decide(code int) {
	rw.decided = true
	rw.status = code
	if code >= 500 {
		rw.failed = true
		return
	}
	dst := rw.w.Header()
	for k, v := range rw.header {
		dst[k] = append(dst[k], v...)
	}
}

func (rw *retryWriter) WriteHeader(code int) {
	if !rw.decided {
		if code < 200 && code != http.StatusSwitchingProtocols {
			return
		}
		rw.decide(code)
	}
	if !rw.failed {
		rw.w.WriteHeader(code)
	}
}

func (rw *retryWriter) Write(p []byte) (int, error) {
	if !rw.decided {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.failed {
		return len(p), nil
	}
	return rw.w.Write(p)
}

func (rw *retryWriter) Flush() {
	_ = rw.FlushError()
}

// FlushError is what http.ResponseController.Flush calls.
func (rw *retryWriter) FlushError() error {
	if !rw.decided {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.failed {
		return nil
	}
	return http.NewResponseController(rw.w).Flush()
}

// Hijack hands over the client's connection for an upgrade; ReverseProxy
// then writes the 101 answer on it with the headers from Header.
func (rw *retryWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(rw.w).Hijack()
	if err == nil && !rw.decided {
		rw.decide(http.StatusSwitchingProtocols)
	}
	return conn, brw, err
}

// Unwrap gives http.ResponseController the client's writer for the
// methods retryWriter does not implement, such as deadlines.
func (rw *retryWriter) Unwrap() http.ResponseWriter {
	return rw.w
}
