package daemon

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// gatesFor holds addr until ready (or until deadline) and runs them.
func gatesFor(t *testing.T, addr string, deadline time.Duration, ready func(string) bool) (*acceptGates, chan []string) {
	t.Helper()
	g := &acceptGates{stop: make(chan struct{}), gates: map[string]*gate{
		addr: {apps: []string{"web"}, deadline: time.Now().Add(deadline), open: make(chan struct{})},
	}}
	late := make(chan []string, 1)
	go g.run(ready, func(_ string, apps []string) { late <- apps })
	t.Cleanup(g.close)
	return g, late
}

// listenAndDial opens a gated listener on addr and connects to it: the
// kernel takes the connection into the backlog whether or not the gate is
// open. Both are closed at cleanup.
func listenAndDial(t *testing.T, g *acceptGates, addr string) net.Listener {
	t.Helper()
	ln, err := g.wrap(net.Listen)("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ln
}

// acceptOne accepts one connection on ln in the background.
func acceptOne(ln net.Listener) <-chan error {
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	return accepted
}

func TestGatedListenerAcceptsOnlyOnceItsAppServes(t *testing.T) {
	addr := freeAddr(t)
	var serving atomic.Bool
	g, late := gatesFor(t, addr, time.Minute, func(string) bool { return serving.Load() })
	ln := listenAndDial(t, g, addr)
	accepted := acceptOne(ln)
	select {
	case err := <-accepted:
		t.Fatalf("accepted (%v) before the app served", err)
	case <-time.After(200 * time.Millisecond):
	}
	serving.Store(true)
	select {
	case err := <-accepted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not accepting once the app served")
	}
	select {
	case apps := <-late:
		t.Fatalf("reported late for %v although it served in time", apps)
	default:
	}
}

func TestGatedListenerAcceptsAtTheDeadlineWhenItsAppNeverServes(t *testing.T) {
	addr := freeAddr(t)
	g, late := gatesFor(t, addr, 300*time.Millisecond, func(string) bool { return false })
	ln := listenAndDial(t, g, addr)
	select {
	case err := <-acceptOne(ln):
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still not accepting long after the deadline")
	}
	if apps := <-late; len(apps) != 1 || apps[0] != "web" {
		t.Fatalf("late report names %v, want [web]", apps)
	}
}

func TestClosingAGatedListenerEndsAWaitingAccept(t *testing.T) {
	addr := freeAddr(t)
	g, _ := gatesFor(t, addr, time.Minute, func(string) bool { return false })
	ln, err := g.wrap(net.Listen)("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	accepted := acceptOne(ln)
	ln.Close()
	select {
	case err := <-accepted:
		if err == nil {
			t.Fatal("Accept on a closed listener returned a connection")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept still waits after Close")
	}
}
