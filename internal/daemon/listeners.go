package daemon

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// listenerPark hands out the listening sockets of a cutover that can hot
// upgrade, and keeps the ones the router stops using. tableflip holds a
// duplicate of every listener it creates, for the next process, and has no
// way to forget one: a socket the router closed would stay bound, its
// backlog filling with connections nobody accepts, and binding the address
// again (a reload that moves an app back) would fail. So closing a
// listener parks it instead: connections to it are closed as they arrive,
// and the next Listen on the address takes it back.
type listenerPark struct {
	listen func(network, addr string) (net.Listener, error)

	mu     sync.Mutex
	parked map[string]*parked // by network and address
	closed bool
}

// parked is a listener nobody serves, whose connections are closed.
type parked struct {
	ln   net.Listener
	stop atomic.Bool
	done chan struct{} // closed when refuse returns
}

func newListenerPark(listen func(network, addr string) (net.Listener, error)) *listenerPark {
	return &listenerPark{listen: listen, parked: make(map[string]*parked)}
}

// Listen returns the parked listener for network and addr, or a new one.
func (p *listenerPark) Listen(network, addr string) (net.Listener, error) {
	key := network + " " + addr
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, net.ErrClosed
	}
	pk := p.parked[key]
	delete(p.parked, key)
	p.mu.Unlock()
	if pk != nil {
		return &parkable{Listener: pk.resume(), park: p, key: key}, nil
	}
	ln, err := p.listen(network, addr)
	if err != nil {
		return nil, err
	}
	return &parkable{Listener: ln, park: p, key: key}, nil
}

// Close closes every parked listener for good.
func (p *listenerPark) Close() {
	p.mu.Lock()
	p.closed = true
	all := p.parked
	p.parked = nil
	p.mu.Unlock()
	for _, pk := range all {
		_ = pk.resume().Close()
	}
}

// put parks ln, the listener of key.
func (p *listenerPark) put(key string, ln net.Listener) {
	pk := &parked{ln: ln, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = ln.Close()
		return
	}
	p.parked[key] = pk
	p.mu.Unlock()
	_ = setDeadline(ln, time.Time{})
	go pk.refuse()
}

// refuse closes the listener's connections as they arrive until resume.
func (pk *parked) refuse() {
	defer close(pk.done)
	for !pk.stop.Load() {
		c, err := pk.ln.Accept()
		if err != nil {
			if pk.stop.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // out of descriptors and the like
			continue
		}
		_ = c.Close()
	}
}

// resume stops refusing and returns the listener, ready to accept.
func (pk *parked) resume() net.Listener {
	pk.stop.Store(true)
	_ = setDeadline(pk.ln, time.Now())
	<-pk.done
	_ = setDeadline(pk.ln, time.Time{})
	return pk.ln
}

// parkable is a listener whose Close parks it. Accept calls made when
// Close runs, and after, return net.ErrClosed, as with any closed
// listener.
type parkable struct {
	net.Listener
	park      *listenerPark
	key       string
	closed    atomic.Bool
	accepting atomic.Int64 // Accept calls in progress
	closeOnce sync.Once
}

func (l *parkable) Accept() (net.Conn, error) {
	// Counted before closed is read: Close, which sets closed first,
	// then either sees this call or this call sees closed.
	l.accepting.Add(1)
	defer l.accepting.Add(-1)
	if l.closed.Load() {
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if l.closed.Load() {
		if c != nil {
			_ = c.Close()
		}
		return nil, net.ErrClosed
	}
	return c, err
}

// Close ends the Accept calls in progress, waits for them to return and
// parks the socket.
func (l *parkable) Close() error {
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		if err := setDeadline(l.Listener, time.Now()); err != nil {
			// Not a socket that takes deadlines: close it for real.
			_ = l.Listener.Close()
			return
		}
		// The deadline ends them at once.
		for l.accepting.Load() > 0 {
			time.Sleep(time.Millisecond)
		}
		l.park.put(l.key, l.Listener)
	})
	return nil
}

// setDeadline sets ln's accept deadline, when it has one.
func setDeadline(ln net.Listener, t time.Time) error {
	d, ok := ln.(interface{ SetDeadline(time.Time) error })
	if !ok {
		return errors.New("listener without deadlines")
	}
	return d.SetDeadline(t)
}
