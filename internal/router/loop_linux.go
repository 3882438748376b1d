package router

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cutover/cutover/internal/httpwire"
	"github.com/cutover/cutover/internal/sockfd"
	"github.com/cutover/cutover/internal/upstream"
)

// The event loop serves fast-path connections without a goroutine each.
// The profile of the goroutine per connection was mostly Go's netpoller:
// a read before every wait that finds nothing (EAGAIN), then a park and a
// wake-up through the scheduler, twice per request (for the next request
// and for the endpoint's answer). One loop per CPU instead waits on an
// epoll set of its connections and endpoint connections first, and reads
// only what epoll reported ready. Go's netpoller does not watch those
// sockets (sockfd.Take); it watches the loop's epoll descriptor, so the
// loop parks like any goroutine.
//
// The loop serves the common request whole: a request with no body left
// to read, to an endpoint connection kept alive (and quiet: see hold), whose
// answer arrives whole in the connection's buffer. Anything else (a body
// to stream, a large or streamed answer, a canary with retryOnStable, a
// connection to dial, a resend) goes on in a goroutine exactly as without
// the loop (forward, relay), which gives the connection back when its
// request is done. The loop writes without waiting: what the client's
// socket does not take waits in the connection's pending bytes.

// sweepEvery is how often the loop checks its connections' deadlines;
// they fire up to that much late.
const sweepEvery = 100 * time.Millisecond

// What a loop connection waits for, for its deadline.
const (
	waitNext   = iota // the next request
	waitHead          // the rest of a request head
	waitAnswer        // the endpoint's answer
	waitFlush         // the client to take pending bytes
)

var (
	loopsOnce sync.Once
	loops     []*eventLoop
	loopsErr  error
	loopNext  atomic.Uint32
)

// pickLoop returns the event loop for a new connection, starting the
// loops (one per CPU Go uses) on first use, or nil when they cannot run.
func pickLoop() *eventLoop {
	loopsOnce.Do(func() {
		for range runtime.GOMAXPROCS(0) {
			lp, err := newEventLoop()
			if err != nil {
				loopsErr = err
				return
			}
			loops = append(loops, lp)
			go lp.run()
		}
	})
	if len(loops) == 0 {
		return nil
	}
	return loops[int(loopNext.Add(1))%len(loops)]
}

// eventLoop is one loop: an epoll set and the goroutine that serves it.
type eventLoop struct {
	epfd   int
	epoll  *os.File // epfd, which Go's netpoller watches for the loop
	rc     syscall.RawConn
	wakeFD int // an eventfd: other goroutines' items are waiting

	mu    sync.Mutex
	inbox []loopItem

	// The rest is the loop goroutine's own.
	events []unix.EpollEvent
	byFD   map[int32]*loopFD
	conns  map[*fastConn]struct{}
	idle   map[*upstream.Endpoint][]*upstream.HeldConn
	now    time.Time
}

// loopItem is a connection given to the loop: new (back false), or back
// from a goroutine that served a request (keep: it may go on).
type loopItem struct {
	conn       *fastConn
	back, keep bool
}

// loopFD is what a watched descriptor is: a client connection, or an
// endpoint connection, idle or waiting for owner's answer.
type loopFD struct {
	conn  *fastConn
	held  *upstream.HeldConn
	owner *fastConn
}

// newEventLoop makes a loop's epoll set, with its wake-up eventfd in it.
func newEventLoop() (*eventLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wakeFD, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(wakeFD)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakeFD, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakeFD)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(wakeFD)
		return nil, err
	}
	f := os.NewFile(uintptr(epfd), "epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		unix.Close(wakeFD)
		return nil, err
	}
	return &eventLoop{
		epfd: epfd, epoll: f, rc: rc, wakeFD: wakeFD,
		events: make([]unix.EpollEvent, 256),
		byFD:   make(map[int32]*loopFD),
		conns:  make(map[*fastConn]struct{}),
		idle:   make(map[*upstream.Endpoint][]*upstream.HeldConn),
	}, nil
}

// loopBufs are the read buffers of loop connections, which hold one only
// while they have bytes to parse or a request in flight.
var loopBufs = sync.Pool{New: func() any { return new([fastBufSize]byte) }}

// putBuf gives c's buffer back, when it has one and nothing in it.
func putBuf(c *fastConn) {
	if c.bufp == nil || c.r != c.w {
		return
	}
	loopBufs.Put(c.bufp)
	c.bufp, c.buf = nil, nil
	c.r, c.w = 0, 0
}

// post gives the loop an item and wakes it when its inbox was empty.
func (lp *eventLoop) post(it loopItem) {
	lp.mu.Lock()
	lp.inbox = append(lp.inbox, it)
	wake := len(lp.inbox) == 1
	lp.mu.Unlock()
	if wake {
		var one = [8]byte{1}
		_, _ = unix.Write(lp.wakeFD, one[:])
	}
}

// run serves the loop forever: the loops live as long as the process.
func (lp *eventLoop) run() {
	poll := func(uintptr) bool {
		n, _ := unix.EpollWait(lp.epfd, lp.events, 0)
		if n <= 0 {
			return false // wait for the epoll descriptor
		}
		lp.now = time.Now()
		for _, ev := range lp.events[:n] {
			lp.dispatch(ev)
		}
		// Every event after this epoll_wait makes the epoll descriptor
		// readable again for Go's netpoller: wait for that rather than
		// ask again now, unless the batch was full and more wait.
		return n == len(lp.events)
	}
	next := time.Now().Add(sweepEvery)
	_ = lp.epoll.SetReadDeadline(next)
	for {
		err := lp.rc.Read(poll)
		if err == nil && time.Now().Before(next) {
			continue
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			panic("router: event loop: " + err.Error())
		}
		lp.now = time.Now()
		lp.sweep()
		next = lp.now.Add(sweepEvery)
		_ = lp.epoll.SetReadDeadline(next)
	}
}

// dispatch serves one epoll event: the inbox, a client connection, or an
// endpoint connection.
func (lp *eventLoop) dispatch(ev unix.EpollEvent) {
	if ev.Fd == int32(lp.wakeFD) {
		lp.takeInbox()
		return
	}
	w := lp.byFD[ev.Fd]
	switch {
	case w == nil:
	case w.conn != nil:
		c := w.conn
		if c.away || c.gone {
			return
		}
		if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			c.readable = true
		}
		if ev.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 && len(c.pending) > 0 {
			lp.flush(c)
		}
		lp.advance(c)
	case w.owner != nil:
		lp.answer(w.owner, w.held)
	default:
		// An idle endpoint connection has nothing to say: the endpoint
		// closed it.
		lp.dropHeld(w.held)
	}
}

// takeInbox adopts new connections and takes back those a goroutine is
// done with.
func (lp *eventLoop) takeInbox() {
	var b [8]byte
	_, _ = unix.Read(lp.wakeFD, b[:])
	lp.mu.Lock()
	items := lp.inbox
	lp.inbox = nil
	lp.mu.Unlock()
	lp.now = time.Now()
	for _, it := range items {
		c := it.conn
		if !it.back {
			lp.adopt(c)
			continue
		}
		c.away = false
		_ = c.nc.Close() // the socket stays open on c.fd
		if !it.keep {
			lp.drop(c)
			continue
		}
		lp.requestOver(c, true)
		// Edges that came while a goroutine had it are gone: read.
		c.readable = true
		lp.advance(c)
	}
}

// adopt starts watching a new connection.
func (lp *eventLoop) adopt(c *fastConn) {
	w := &loopFD{conn: c}
	lp.byFD[int32(c.fd)] = w
	lp.conns[c] = struct{}{}
	c.wait(waitHead, lp.now)
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(c.fd)}
	if err := unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		lp.drop(c)
	}
}

// advance serves what c has read and reads what epoll said is there,
// until c waits for the client, its endpoint or a goroutine.
func (lp *eventLoop) advance(c *fastConn) {
	for !c.gone && !c.away && c.fr == nil {
		if len(c.pending) > 0 {
			return
		}
		if c.closing {
			lp.drop(c)
			return
		}
		if c.r < c.w {
			if !lp.parse(c) {
				return
			}
			continue
		}
		if !c.readable {
			if c.waiting != waitNext && c.waiting != waitHead {
				c.wait(waitNext, lp.now)
			}
			// An idle connection holds no buffer.
			putBuf(c)
			return
		}
		if !lp.read(c) {
			lp.drop(c)
			return
		}
	}
}

// read reads once into c's buffer and reports whether the connection is
// still open.
func (lp *eventLoop) read(c *fastConn) bool {
	if c.buf == nil {
		c.bufp = loopBufs.Get().(*[fastBufSize]byte)
		c.buf = c.bufp[:]
	}
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
	n, err := unix.Read(c.fd, c.buf[c.w:])
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		c.readable = err == unix.EINTR
		return true
	case err != nil || n == 0:
		return false
	}
	// A short read emptied the socket; a full one may have left more.
	c.readable = n == len(c.buf)-c.w
	c.w += n
	return true
}

// parse parses the head in c's buffer and serves it. It reports whether
// advance goes on: false when the head is incomplete or c is gone.
func (lp *eventLoop) parse(c *fastConn) bool {
	if !c.state.CompareAndSwap(connIdle, connActive) && c.state.Load() == connClosed {
		lp.drop(c)
		return false
	}
	fr := fastRequests.Get().(*fastRequest)
	fr.req.Headers = fr.fields[:0]
	n, err := httpwire.ParseRequest(c.buf[c.r:c.w], &fr.req)
	switch {
	case err == nil:
		lp.serve(c, fr, n)
		return true
	case !errors.Is(err, httpwire.ErrIncomplete):
		fr.release()
		lp.toServer(c)
		return false
	}
	fr.release()
	if c.w == len(c.buf) {
		if c.r == 0 {
			// Larger than the fast path takes (net/http answers
			// 431 past MaxHeaderBytes).
			lp.toServer(c)
			return false
		}
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
	}
	if c.waiting != waitHead {
		c.wait(waitHead, lp.now)
	}
	if !c.readable {
		return false
	}
	if !lp.read(c) {
		lp.drop(c)
		return false
	}
	return true
}

// serve starts the request fr, whose head is n bytes.
func (lp *eventLoop) serve(c *fastConn, fr *fastRequest, n int) {
	fr.conn = c
	switch fr.route(n) {
	case routeHandOff:
		fr.release()
		lp.toServer(c)
		return
	case routeAnswered:
		keep := !fr.closeAfter
		fr.release()
		lp.requestOver(c, keep)
		return
	}
	if fr.raw.RestLen > 0 || fr.rt.retry {
		lp.away(c, fr, false)
		return
	}
	h := lp.hold(fr.ep)
	if h == nil {
		lp.away(c, fr, false)
		return
	}
	var st upstream.AnswerState
	var err error
	fr.scratch, st, err = h.Send(&fr.raw, fr.scratch)
	if st != upstream.AnswerPending {
		lp.dropHeld(h)
		c.fr = fr
		lp.broke(c, st, err)
		return
	}
	c.fr, c.held = fr, h
	lp.byFD[int32(h.FD)].owner = c
	c.wait(waitAnswer, lp.now)
	c.until = h.AnswerDeadline(lp.now)
}

// answer reads what c's endpoint connection h has of the answer, and
// passes a whole one on.
func (lp *eventLoop) answer(c *fastConn, h *upstream.HeldConn) {
	fr := c.fr
	st, err := h.Read(&fr.raw, &fr.res)
	switch st {
	case upstream.AnswerPending:
		return
	case upstream.AnswerResend, upstream.AnswerFailed:
		lp.dropHeld(h)
		c.held = nil
		lp.broke(c, st, err)
		return
	}
	body, whole := fr.res.Buffered()
	if !whole {
		// A goroutine relays the rest as it comes.
		lp.forgetHeld(h)
		c.fr, c.held = nil, nil
		if err := h.Detach(&fr.res); err != nil {
			c.fr = fr
			fr.rec.status, fr.rec.bytes = fr.writeError(fr.ep.FailureAnswer(err))
			lp.finish(c)
			return
		}
		lp.away(c, fr, true)
		return
	}
	fr.rec.ex = exchange{backend: fr.rt.backend, endpoint: fr.ep}
	fr.rec.status = fr.res.Status
	fr.rec.bytes = int64(len(body))
	b := fr.appendResponseHead(fr.out[:0])
	b = append(b, body...)
	if err := lp.write(c, b); err != nil {
		fr.closeAfter = true
	}
	fr.out = b[:0]
	c.held = nil
	if fr.res.Finish(h) {
		lp.byFD[int32(h.FD)].owner = nil
		lp.idle[h.Endpoint()] = append(lp.idle[h.Endpoint()], h)
	} else {
		lp.forgetHeld(h) // closed
	}
	lp.finish(c)
}

// broke goes on with c's request after its endpoint connection broke
// before an answer: a goroutine sends it again (AnswerResend), as Exchange
// does on a kept-alive connection, or it is answered with err.
func (lp *eventLoop) broke(c *fastConn, st upstream.AnswerState, err error) {
	fr := c.fr
	if st == upstream.AnswerResend {
		c.fr = nil
		lp.away(c, fr, false)
		return
	}
	fr.rec.status, fr.rec.bytes = fr.writeError(fr.ep.FailureAnswer(err))
	lp.finish(c)
}

// finish ends c's request in the loop: releases its endpoint, counts and
// logs it, and serves what comes next.
func (lp *eventLoop) finish(c *fastConn) {
	fr := c.fr
	c.fr = nil
	fr.done(fr.rt.backend, fr.ep, fr.start)
	keep := !fr.closeAfter
	fr.release()
	lp.requestOver(c, keep)
	lp.advance(c)
}

// requestOver makes c idle after a request, or marks it for closing once
// its answer is out.
func (lp *eventLoop) requestOver(c *fastConn, keep bool) {
	if !keep || c.gen.fast.closing.Load() || !c.state.CompareAndSwap(connActive, connIdle) {
		c.closing = true
	}
	c.wait(waitNext, lp.now)
}

// away hands c's request fr to a goroutine: forward it, or relay the
// answer Exchange-like reading left in fr.res.
func (lp *eventLoop) away(c *fastConn, fr *fastRequest, relay bool) {
	nc, err := sockfd.Conn(c.fd)
	if err != nil {
		if relay {
			fr.res.Discard()
		}
		c.fr = fr
		fr.rec.status, fr.rec.bytes = fr.writeError(http.StatusBadGateway, "cutover: "+err.Error())
		fr.closeAfter = true
		lp.finish(c)
		return
	}
	c.nc = nc
	c.away = true
	c.waiting = waitNext
	c.until = time.Time{}
	go func() {
		var keep bool
		if relay {
			fr.rec.ex = exchange{backend: fr.rt.backend, endpoint: fr.ep}
			keep = fr.relay(&fr.rec)
			fr.done(fr.rt.backend, fr.ep, fr.start)
		} else {
			keep = fr.forward()
		}
		keep = keep && !fr.closeAfter
		fr.release()
		if !keep {
			c.drainUnread()
		}
		lp.post(loopItem{conn: c, back: true, keep: keep})
	}()
}

// hold returns an endpoint connection for ep: one the loop keeps, else
// one of ep's idle ones, which the loop watches from then on. Every one is
// checked for bytes or a close from the endpoint first, as Exchange
// checks: epoll reports those on the loop's own idle connections, but
// maybe not yet, as they can come just before the connection is taken.
func (lp *eventLoop) hold(ep *upstream.Endpoint) *upstream.HeldConn {
	for list := lp.idle[ep]; len(list) > 0; list = lp.idle[ep] {
		h := list[len(list)-1]
		list[len(list)-1] = nil
		if len(list) == 1 {
			// No entry outlives its endpoint's last connection.
			delete(lp.idle, ep)
		} else {
			lp.idle[ep] = list[:len(list)-1]
		}
		if h.Quiet() {
			return h
		}
		lp.dropHeld(h)
	}
	h := ep.Hold()
	if h == nil {
		return nil
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(h.FD)}
	if err := unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_ADD, h.FD, &ev); err != nil {
		h.Close()
		return nil
	}
	lp.byFD[int32(h.FD)] = &loopFD{held: h}
	return h
}

// dropHeld closes the endpoint connection h and forgets it.
func (lp *eventLoop) dropHeld(h *upstream.HeldConn) {
	ep := h.Endpoint()
	list := lp.idle[ep]
	if i := slices.Index(list, h); i >= 0 {
		lp.idle[ep] = slices.Delete(list, i, i+1)
	}
	if len(lp.idle[ep]) == 0 {
		delete(lp.idle, ep)
	}
	lp.forgetHeld(h)
	h.Close()
}

// forgetHeld stops dispatching h's descriptor, which is about to close.
func (lp *eventLoop) forgetHeld(h *upstream.HeldConn) {
	if w := lp.byFD[int32(h.FD)]; w != nil && w.held == h {
		delete(lp.byFD, int32(h.FD))
	}
}

// toServer hands c, with the bytes read and not used, to net/http.
func (lp *eventLoop) toServer(c *fastConn) {
	nc, err := sockfd.Conn(c.fd)
	if err != nil {
		lp.drop(c)
		return
	}
	rc := &replayConn{Conn: nc, pending: bytes.Clone(c.buf[c.r:c.w])}
	lp.drop(c)
	go c.l.toServer(c.gen, rc)
}

// drop closes c, which has no request in flight, and forgets it.
func (lp *eventLoop) drop(c *fastConn) {
	if c.gone {
		return
	}
	if w := lp.byFD[int32(c.fd)]; w != nil && w.conn == c {
		delete(lp.byFD, int32(c.fd))
	}
	c.close()
	putBuf(c)
	lp.forget(c)
}

// forget removes c from the loop and its generation.
func (lp *eventLoop) forget(c *fastConn) {
	if c.gone {
		return
	}
	c.gone = true
	delete(lp.conns, c)
	c.state.Store(connClosed)
	fc := &c.gen.fast
	fc.mu.Lock()
	delete(fc.conns, c)
	fc.mu.Unlock()
	fc.wg.Done()
}

// write writes b to c without waiting; what the socket does not take
// waits in c.pending for the next EPOLLOUT.
func (lp *eventLoop) write(c *fastConn, b []byte) error {
	if len(c.pending) == 0 {
		n, err := unix.Write(c.fd, b)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
		case err != nil:
			c.closing = true
			return err
		default:
			b = b[n:]
		}
		if len(b) == 0 {
			return nil
		}
	}
	c.pending = append(c.pending, b...)
	c.wait(waitFlush, lp.now)
	return nil
}

// flush writes c's pending bytes.
func (lp *eventLoop) flush(c *fastConn) {
	b := c.pending
	c.pending = nil
	if err := lp.write(c, b); err != nil {
		c.pending = nil
	}
	if len(c.pending) == 0 && c.waiting == waitFlush {
		c.wait(waitNext, lp.now)
	}
}

// sweep closes what waited past its deadline: a client connection's
// head, idle time or flush, an endpoint's answer (504), an idle endpoint
// connection.
func (lp *eventLoop) sweep() {
	now := lp.now
	for c := range lp.conns {
		if c.away {
			continue
		}
		if c.state.Load() == connClosed {
			// Shutdown closed it: idle, or at once (closeAll).
			lp.abandon(c)
			lp.drop(c)
			continue
		}
		if c.until.IsZero() || now.Before(c.until) {
			continue
		}
		if c.waiting != waitAnswer {
			lp.drop(c)
			continue
		}
		h := c.held
		err := h.TimedOut()
		lp.dropHeld(h)
		c.held = nil
		fr := c.fr
		fr.rec.status, fr.rec.bytes = fr.writeError(fr.ep.FailureAnswer(err))
		lp.finish(c)
	}
	var expired []*upstream.HeldConn
	for _, list := range lp.idle {
		for _, h := range list {
			if h.Expired(now) {
				expired = append(expired, h)
			}
		}
	}
	for _, h := range expired {
		lp.dropHeld(h)
	}
}

// abandon ends c's request in the loop, if any, without an answer.
func (lp *eventLoop) abandon(c *fastConn) {
	fr := c.fr
	if fr == nil {
		return
	}
	if c.held != nil {
		lp.dropHeld(c.held)
		c.held = nil
	}
	c.fr = nil
	// Counted as the gateway's failure: the client gets no answer.
	fr.rec.status = http.StatusBadGateway
	fr.done(fr.rt.backend, fr.ep, fr.start)
	fr.release()
}

// wait sets what c waits for and its deadline from now.
func (c *fastConn) wait(what int, now time.Time) {
	c.waiting = what
	p := c.gen.params
	var d time.Duration
	switch what {
	case waitNext:
		d = p.keepAlive()
	case waitHead:
		d = p.readHeader
	case waitFlush:
		d = p.write
	}
	c.until = time.Time{}
	if d > 0 {
		c.until = now.Add(d)
	}
}
