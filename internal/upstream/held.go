package upstream

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/sockfd"
)

// Held connections let an event loop (the router's) exchange a request
// with an endpoint without a goroutine: the loop polls the connection's
// descriptor, and Send and Read never wait. They take the common case
// only, a request sent whole with one write. At any point before the
// answer is passed on, the loop may hand the exchange to a goroutine that
// goes on as Exchange would (RawResponse.Relay, or Exchange again when the
// request may be sent twice).

// AnswerState is where a held exchange stands after Read.
type AnswerState int

const (
	// AnswerPending: more of the answer is still to come.
	AnswerPending AnswerState = iota
	// AnswerReady: the answer's head is parsed into the RawResponse,
	// which the caller relays or discards as after Exchange.
	AnswerReady
	// AnswerResend: the connection broke before any byte of an answer;
	// a request that may be sent twice goes again on another
	// connection, and the endpoint is not blamed (as in Exchange).
	AnswerResend
	// AnswerFailed: the endpoint failed the request; it was counted
	// against the endpoint, and Read's error says how.
	AnswerFailed
)

// HeldConn is an endpoint connection held by an event loop. Go's
// netpoller does not watch it meanwhile: the loop polls FD itself.
type HeldConn struct {
	c  *rawConn
	ep *Endpoint
	// FD is the connection's descriptor, the loop's to poll.
	FD int
	// idleSince is when the connection last finished an exchange.
	idleSince time.Time
}

// Hold takes the most recently used of e's idle connections that is
// quiet (see rawConn) for an event loop, or returns nil when there is
// none. It never dials.
func (e *Endpoint) Hold() *HeldConn {
	c := e.idleConn()
	if c == nil {
		return nil
	}
	fd, err := sockfd.Take(c.nc)
	if err != nil {
		_ = c.nc.Close()
		return nil
	}
	return &HeldConn{c: c, ep: e, FD: fd, idleSince: c.idleAt}
}

// Endpoint is the endpoint h is connected to.
func (h *HeldConn) Endpoint() *Endpoint { return h.ep }

// Expired reports whether h idled past its pool's idle timeout at now, or
// its endpoint was retired: the loop closes it then.
func (h *HeldConn) Expired(now time.Time) bool {
	if now.Sub(h.idleSince) > h.ep.pool.idleConnTimeout {
		return true
	}
	idle := &h.ep.idle
	idle.mu.Lock()
	defer idle.mu.Unlock()
	return idle.closed
}

// AnswerDeadline is when an answer's head sent at now must have arrived.
func (h *HeldConn) AnswerDeadline(now time.Time) time.Time {
	return now.Add(h.ep.pool.responseHeaderTimeout)
}

// Quiet reports whether the endpoint sent nothing on h since its last
// answer, as Exchange checks every connection before reuse: one
// non-blocking peek. A connection that is not quiet must be closed.
func (h *HeldConn) Quiet() bool {
	return quietFD(h.FD)
}

// Send writes req's head for h's endpoint, with the body prefix, in one
// write that does not wait. req must have no body left to read (RestLen
// 0). It returns AnswerPending when the request went whole; otherwise h is
// to be closed, and the state says whether the request goes again
// (AnswerResend: it may be sent twice) or failed (AnswerFailed, with the
// error for FailureAnswer), as Exchange decides.
func (h *HeldConn) Send(req *RawRequest, scratch []byte) ([]byte, AnswerState, error) {
	scratch = req.Head.AppendHead(scratch[:0], h.ep.headHost())
	scratch = append(scratch, req.Body...)
	h.c.r, h.c.w = 0, 0
	n, err := retryEINTR(syscall.Write, h.FD, scratch)
	if err == nil && n < len(scratch) {
		// The socket's buffer is full; the endpoint may have some of
		// the request, which it cannot take for a whole one.
		err = fmt.Errorf("upstream: wrote %d of %d bytes: %w", n, len(scratch), syscall.EPIPE)
	}
	if err == nil {
		return scratch, AnswerPending, nil
	}
	st, err := h.broke(req, err)
	return scratch, st, err
}

// broke decides about a request whose connection broke before any byte of
// an answer: sent again when it may be sent twice, else failed.
func (h *HeldConn) broke(req *RawRequest, err error) (AnswerState, error) {
	if req.Idempotent && connectionBroke(err) {
		return AnswerResend, err
	}
	return h.fail(err)
}

// Read reads what the endpoint has sent, without waiting, and parses the
// answer's head into res when it is whole. For AnswerFailed the error
// says why, as Exchange's would (FailureAnswer).
func (h *HeldConn) Read(req *RawRequest, res *RawResponse) (AnswerState, error) {
	c := h.c
	for {
		if c.w == len(c.buf) {
			if err := c.grow(); err != nil {
				return h.fail(err)
			}
		}
		n, err := retryEINTR(syscall.Read, h.FD, c.buf[c.w:])
		switch {
		case errors.Is(err, syscall.EAGAIN):
			return AnswerPending, nil
		case err == nil && n == 0:
			err = fmt.Errorf("upstream: connection closed before the answer: %w", io.EOF)
		}
		switch {
		case err != nil && c.w == 0:
			return h.broke(req, err)
		case err != nil:
			return h.fail(err)
		}
		c.w += n
		switch whole, err := c.parseHead(res, req); {
		case err != nil:
			return h.fail(err)
		case whole:
			res.conn = c
			res.Endpoint = h.ep
			res.retried = false
			c.deadlineLifted = true // there is none on a held connection
			h.ep.answered()
			return AnswerReady, nil
		}
		// Read on until the socket has nothing more: more of the head,
		// or the end of the stream, may be there already, and epoll
		// (edge-triggered) does not report it again.
	}
}

// fail counts err against h's endpoint (passive health).
func (h *HeldConn) fail(err error) (AnswerState, error) {
	h.ep.failed(err)
	return AnswerFailed, err
}

// TimedOut counts h's endpoint as having failed to answer in time, and
// returns the error for FailureAnswer.
func (h *HeldConn) TimedOut() error {
	err := fmt.Errorf("upstream: no answer within %s: %w", h.ep.pool.responseHeaderTimeout, os.ErrDeadlineExceeded)
	h.ep.failed(err)
	return err
}

// grow makes room in a full buffer for more of an answer's head.
func (c *rawConn) grow() error {
	if c.r > 0 {
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
		return nil
	}
	if len(c.buf) >= maxRawHead {
		return fmt.Errorf("%w: head larger than %d bytes", errRawAnswer, maxRawHead)
	}
	grown := make([]byte, 2*len(c.buf))
	copy(grown, c.buf[:c.w])
	c.buf = grown
	return nil
}

// Buffered returns res's whole body when it is in the buffer already and
// the answer may be passed on in one piece: not streamed, of known length.
func (res *RawResponse) Buffered() ([]byte, bool) {
	c := res.conn
	if c == nil || res.Streamed || res.ContentLength < 0 || int64(c.w-res.bodyStart) < res.ContentLength {
		return nil, false
	}
	return c.buf[res.bodyStart : res.bodyStart+int(res.ContentLength)], true
}

// Finish ends an answer whose Buffered body the caller passed on, and
// reports whether h may take another request: the endpoint allows it and
// sent nothing more. When it may not, h is closed.
func (res *RawResponse) Finish(h *HeldConn) bool {
	c := res.conn
	reusable := res.reusable && res.bodyStart+int(res.ContentLength) == c.w
	res.conn = nil
	res.done()
	if reusable {
		c.r, c.w = 0, 0
		if len(c.buf) > rawBufSize {
			c.buf = make([]byte, rawBufSize)
		}
		h.idleSince = time.Now()
		return true
	}
	h.Close()
	return false
}

// Detach hands the answer Read made ready in res, with h's connection, to
// the blocking path: afterwards res is as after Exchange (Relay or
// Discard it), and the loop must forget h, whose descriptor is closed.
func (h *HeldConn) Detach(res *RawResponse) error {
	nc, err := sockfd.Conn(h.FD)
	h.Close()
	if err != nil {
		res.conn = nil
		res.done()
		return err
	}
	h.c.setConn(nc)
	res.trackStream(h.ep.pool)
	return nil
}

// Close closes h's connection.
func (h *HeldConn) Close() {
	_ = syscall.Close(h.FD)
}

// retryEINTR calls op (a read or write) again while a signal interrupts it.
func retryEINTR(op func(int, []byte) (int, error), fd int, b []byte) (int, error) {
	for {
		n, err := op(fd, b)
		if err != syscall.EINTR {
			return n, err
		}
	}
}
