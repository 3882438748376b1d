package upstream

import (
	"fmt"
	"sync"
	"time"
)

// An endpoint may answer a request before it has read the whole body (a
// 413 for an upload too large, an early 200) and then stop reading, or
// close. Sending the whole body before reading the answer would then
// block on a full socket, or fail on the close, and lose the answer to a
// 502. So while a body streams to the endpoint, a goroutine of its own
// reads the answer; once the answer's head is in, no more of the body is
// sent, as nginx does, and the answer goes to the client. Only requests
// with a body to stream (RestLen > 0) take this path.

// aLongTimeAgo is a deadline in the past: it ends a blocked read or write
// at once.
var aLongTimeAgo = time.Unix(1, 0)

// deadlineSetter is a connection whose reads a deadline can interrupt.
type deadlineSetter interface {
	SetReadDeadline(t time.Time) error
}

// upload is one request body on its way to the endpoint while its answer
// is watched for.
type upload struct {
	c   *rawConn
	req *RawRequest

	mu sync.Mutex
	// bodyDone: the body is sent, or given up; early: the answer (or an
	// error of the endpoint) came first, and ended the sending.
	bodyDone, early bool
}

// upload sends b, req's head and body prefix, then the rest of the body,
// and reads the answer's head into res meanwhile. It reports whether any
// of the rest was read from the client. When the answer came before the
// body was sent whole, res.BodyCut is set and c is not kept.
func (c *rawConn) upload(req *RawRequest, res *RawResponse, b []byte, timeout time.Duration) (bool, error) {
	if _, err := c.nc.Write(b); err != nil {
		return false, err
	}
	// The answer may take as long as the body does: the response-header
	// timeout starts once the body is sent.
	if err := c.nc.SetReadDeadline(time.Time{}); err != nil {
		return false, err
	}
	c.deadlineLifted = false
	u := &upload{c: c, req: req}
	answer := make(chan error, 1)
	go func() {
		err := c.readHeadOn(res, req)
		u.answered()
		answer <- err
	}()
	fromClient, err := u.sendBody()
	u.mu.Lock()
	u.bodyDone = true
	early := u.early
	u.mu.Unlock()
	switch {
	case early:
		// err is the interruption, or the endpoint's close that came
		// with its answer.
		err = nil
	case fromClient:
		// The client is gone or too slow: the answer is not wanted.
		_ = c.nc.SetReadDeadline(aLongTimeAgo)
		<-answer
		return true, err
	default:
		// The body went whole, or the endpoint stopped taking it: its
		// answer may still come, within the timeout.
		if derr := c.nc.SetReadDeadline(time.Now().Add(timeout)); derr != nil && err == nil {
			err = derr
		}
	}
	if aerr := <-answer; aerr != nil {
		if err != nil {
			return true, err
		}
		return true, aerr
	}
	if early || err != nil {
		res.BodyCut, res.reusable = true, false
	}
	return true, nil
}

// sendBody copies the rest of the body from the client to the endpoint
// until it is sent or an early answer ends it. An error says whether it
// came from the client.
func (u *upload) sendBody() (fromClient bool, err error) {
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	for left := u.req.RestLen; left > 0; {
		n, rerr := u.req.Rest.Read(buf[:min(int64(len(buf)), left)])
		if n > 0 {
			if _, werr := u.c.nc.Write(buf[:n]); werr != nil {
				return false, werr
			}
			left -= int64(n)
		}
		if rerr != nil && left > 0 {
			return true, fmt.Errorf("read request body from client: %w", rerr)
		}
	}
	return false, nil
}

// answered ends the sending of the body, when it is still going on: the
// answer's head, or the endpoint's error, came first. A write blocked on
// the endpoint, and a read of the body from the client (when Rest can
// take a deadline), end at once.
func (u *upload) answered() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.bodyDone {
		return
	}
	u.early = true
	_ = u.c.nc.SetWriteDeadline(aLongTimeAgo)
	if d, ok := u.req.Rest.(deadlineSetter); ok {
		_ = d.SetReadDeadline(aLongTimeAgo)
	}
}
