package router

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// listener is one bound address. Its accept loop hands every connection to
// the listener's current server generation. SetRoutes starts a new
// generation when the listener's TLS or server options change, without
// closing the socket: connections waiting in the kernel are not lost, and
// the old generation finishes its requests in the background.
type listener struct {
	listen  string
	ln      net.Listener
	handler *listenerHandler
	gen     *generation                // current generation; guarded by Router.mu
	cur     atomic.Pointer[generation] // what the accept loop hands to; nil once closed
	stop    chan struct{}              // closed by close
}

// listenerSpec is what the routes ask of one listen address.
type listenerSpec struct {
	owner    string // who uses it, for messages
	tls      bool
	acme     bool
	redirect bool
}

// generation is one http.Server of a listener, and the fast path's
// connections beside it. It is the server's net.Listener, fed by the
// listener's accept loop and by fast-path connections handed over.
type generation struct {
	params    serverParams
	srv       *http.Server
	fast      fastConns
	addr      net.Addr
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

// Accept returns the next connection the accept loop hands over; a
// plain one behind a headGuard, which refuses what net/http would take
// and a proxy must not (see guard.go).
func (g *generation) Accept() (net.Conn, error) {
	select {
	case c := <-g.conns:
		if !g.params.tls {
			c = newHeadGuard(c, g.params.maxHeaderBytes)
		}
		return c, nil
	case <-g.closed:
		return nil, net.ErrClosed
	}
}

// Close stops Accept; the socket stays open for the next generation.
func (g *generation) Close() error {
	g.closeOnce.Do(func() { close(g.closed) })
	return nil
}

// Addr is the bound address.
func (g *generation) Addr() net.Addr { return g.addr }

// listenerSpecs derives what each listen address must be from routes and
// rejects addresses used in two incompatible ways.
func listenerSpecs(routes []Route, acme *ACMEOptions) (map[string]listenerSpec, error) {
	specs := make(map[string]listenerSpec)
	for _, rt := range routes {
		spec, seen := specs[rt.Listen]
		if seen && spec.tls != (rt.TLS != nil) {
			return nil, fmt.Errorf("listen %s has routes with and without TLS (app %s and app %s); give every route on one listener tls, or none",
				rt.Listen, spec.owner, rt.App)
		}
		if !seen {
			spec = listenerSpec{owner: "app " + rt.App, tls: rt.TLS != nil}
		}
		spec.acme = spec.acme || (rt.TLS != nil && rt.TLS.ACME)
		specs[rt.Listen] = spec
	}
	redirect := func(addr, owner string, acme bool) error {
		spec, seen := specs[addr]
		if seen && !spec.redirect {
			return fmt.Errorf("%s redirects from %s, which is also the listen address of %s; choose another address", owner, addr, spec.owner)
		}
		if !seen {
			spec = listenerSpec{owner: owner, redirect: true}
		}
		spec.acme = spec.acme || acme
		specs[addr] = spec
		return nil
	}
	var acmeApp string
	for _, rt := range routes {
		if rt.TLS == nil {
			continue
		}
		if rt.TLS.ACME {
			acmeApp = rt.App
		}
		if rt.TLS.RedirectFrom != "" {
			if err := redirect(rt.TLS.RedirectFrom, "app "+rt.App, false); err != nil {
				return nil, err
			}
		}
	}
	if acmeApp != "" && acme != nil && acme.HTTPListen != "" {
		if err := redirect(acme.HTTPListen, "ACME HTTP challenges", true); err != nil {
			return nil, err
		}
	}
	return specs, nil
}

// startGeneration gives l a new server built from p and retires the one it
// replaces, which finishes its requests in the background. r.mu must be
// held.
func (r *Router) startGeneration(l *listener, p serverParams) {
	g := &generation{
		params: p,
		addr:   l.ln.Addr(),
		conns:  make(chan net.Conn),
		closed: make(chan struct{}),
	}
	g.srv = p.newServer(l.handler, r.log, r.getCertificate(l.listen))
	old := l.gen
	l.gen = g
	l.cur.Store(g)
	r.serving.Go(func() { r.serve(l, g) })
	if old != nil {
		r.retire(old)
	}
}

// retire stops handing connections to g and shuts it down in the
// background, bounded by drainTimeout. r.mu must be held.
func (r *Router) retire(g *generation) {
	g.Close()
	r.draining[g] = struct{}{}
	r.serving.Go(func() { r.drain(g) })
}

// serve runs g's server until it is shut down.
func (r *Router) serve(l *listener, g *generation) {
	var err error
	if g.params.tls {
		err = g.srv.ServeTLS(g, "", "")
	} else {
		err = g.srv.Serve(g)
	}
	if !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		r.log.Error("listener stopped; its routes get no traffic until the next SetRoutes", "listen", l.listen, "err", err)
	}
}

// acceptLoop accepts connections on l's socket until close and hands each
// to the current generation.
func (r *Router) acceptLoop(l *listener) {
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.stop:
				return
			default:
			}
			// Like http.Server: out of file descriptors and the like
			// pass; wait a little instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			r.log.Warn("accept failed; retrying", "listen", l.listen, "err", err, "in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-l.stop:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		backoff = 0
		l.handOff(c)
	}
}

// handOff gives c to the current generation, or closes it when l is
// closed. A generation retired meanwhile passes c on to its successor.
func (l *listener) handOff(c net.Conn) {
	for {
		g := l.cur.Load()
		if g == nil {
			c.Close()
			return
		}
		if g.params.fastPath() {
			l.handler.router.serveFast(l, g, c)
			return
		}
		select {
		case g.conns <- c:
			return
		case <-g.closed:
			if l.cur.Load() == g {
				c.Close()
				return
			}
		}
	}
}

// toServer hands c, a fast-path connection that net/http must serve, to
// g's http.Server, or closes it when g is retired.
func (l *listener) toServer(g *generation, c net.Conn) {
	select {
	case g.conns <- c:
	case <-g.closed:
		c.Close()
	}
}

// shutdown stops g gracefully, its fast-path connections and its server,
// as http.Server.Shutdown does; when ctx ends first it closes them all.
func (g *generation) shutdown(ctx context.Context) error {
	g.Close()
	ferr := g.fast.shutdown(ctx)
	err := g.srv.Shutdown(ctx)
	if err != nil || ferr != nil {
		g.fast.closeAll()
		g.srv.Close()
		return errors.Join(err, ferr)
	}
	return nil
}

// close unbinds l's socket and ends its accept loop; the caller retires
// its generation. r.mu must be held.
func (l *listener) close() {
	l.cur.Store(nil)
	close(l.stop)
	l.ln.Close()
}
