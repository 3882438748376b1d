package daemon

import (
	"net"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/config"
)

// acceptGates keep the app listeners from accepting connections while
// cutover starts: until the apps routed on a listener serve (their active
// revision has a ready endpoint again after a restart, or their first
// deploy is done), connections wait in the kernel's backlog instead of
// being answered 503. A listener whose apps are not ready within their
// deployTimeout accepts anyway. Listeners opened after the start (a
// reload) are not held.
type acceptGates struct {
	mu    sync.Mutex
	gates map[string]*gate // by listen address; an open gate is removed
	stop  chan struct{}    // closed when the daemon stops
}

// gate holds back one listen address.
type gate struct {
	apps     []string
	deadline time.Time
	open     chan struct{}
}

// holdTimeout bounds how long an app's listener is held beyond its
// deployTimeout: the restore starts the replicas first.
const holdTimeout = 5 * time.Second

// newAcceptGates holds every listen address of cfg's app and preview
// routes until the apps on it serve.
func newAcceptGates(cfg *config.Config) *acceptGates {
	g := &acceptGates{gates: map[string]*gate{}, stop: make(chan struct{})}
	g.hold(cfg, func(config.App) bool { return true })
	return g
}

// hold holds the listen addresses of the routes of cfg's apps that only
// selects (the apps that CutoverApps declare, added once the store is
// open) until those apps serve. It must come before the listeners open.
func (g *acceptGates) hold(cfg *config.Config, only func(config.App) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	start := time.Now()
	for _, rt := range routes(cfg) {
		a, ok := cfg.App(rt.App)
		if !ok || !only(*a) {
			continue
		}
		gt := g.gates[rt.Listen]
		if gt == nil {
			gt = &gate{open: make(chan struct{})}
			g.gates[rt.Listen] = gt
		}
		gt.apps = append(gt.apps, rt.App)
		if start.Add(a.DeployTimeout.D() + holdTimeout).After(gt.deadline) {
			gt.deadline = start.Add(a.DeployTimeout.D() + holdTimeout)
		}
	}
}

// wrap makes listen hand out listeners that accept only once their
// address's gate is open.
func (g *acceptGates) wrap(listen func(network, addr string) (net.Listener, error)) func(network, addr string) (net.Listener, error) {
	return func(network, addr string) (net.Listener, error) {
		ln, err := listen(network, addr)
		if err != nil {
			return nil, err
		}
		g.mu.Lock()
		gt := g.gates[addr]
		g.mu.Unlock()
		if gt == nil {
			return ln, nil
		}
		return &gatedListener{Listener: ln, open: gt.open, closed: make(chan struct{})}, nil
	}
}

// run opens each gate once ready reports true for all of its apps, or its
// deadline has passed; it returns when all are open or on close.
func (g *acceptGates) run(ready func(app string) bool, late func(addr string, apps []string)) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		g.mu.Lock()
		for addr, gt := range g.gates {
			if !allReady(gt.apps, ready) {
				if time.Now().Before(gt.deadline) {
					continue
				}
				late(addr, gt.apps)
			}
			close(gt.open)
			delete(g.gates, addr)
		}
		left := len(g.gates)
		g.mu.Unlock()
		if left == 0 {
			return
		}
		select {
		case <-g.stop:
			return
		case <-tick.C:
		}
	}
}

// close stops run; gated listeners return from Accept when closed.
func (g *acceptGates) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
}

// appServes reports whether app is ready to take its listener's traffic:
// its active revision has a ready endpoint and its first deploy, if that
// is what runs, has ended (a `deploy` right after it would be refused).
func (d *Daemon) appServes(app string) bool {
	if !d.appReady(app) {
		return false
	}
	st, err := d.ctl.Status(app)
	return err == nil && (st.Rollout == nil || st.Rollout.Done() || st.Rollout.StableRevision != 0)
}

func allReady(apps []string, ready func(string) bool) bool {
	for _, a := range apps {
		if !ready(a) {
			return false
		}
	}
	return true
}

// gatedListener accepts once open is closed.
type gatedListener struct {
	net.Listener
	open      <-chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

// Accept waits for the gate, then accepts.
func (l *gatedListener) Accept() (net.Conn, error) {
	select {
	case <-l.open:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	return l.Listener.Accept()
}

// Close ends a waiting Accept and closes the listener.
func (l *gatedListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}
