package daemon

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// freeAddr returns a loopback address whose port was free a moment ago:
// the park knows listeners by the address asked for.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestClosedListenerIsParkedRefusingConnectionsAndListenTakesItBack(t *testing.T) {
	park := newListenerPark(net.Listen)
	t.Cleanup(park.Close)
	addr := freeAddr(t)
	ln, err := park.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}

	accepted := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		accepted <- err
	}()
	time.Sleep(20 * time.Millisecond)
	ln.Close()
	select {
	case err := <-accepted:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept in progress at Close returned %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close left an Accept in progress blocked")
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close returned %v, want net.ErrClosed", err)
	}

	// Parked: a client is let in and closed at once, not left waiting.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("a connection to the parked listener: %v, want it closed", err)
	}
	conn.Close()

	again, err := park.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("Listen on the parked address: %v", err)
	}
	defer again.Close()
	go func() {
		if c, err := net.Dial("tcp", addr); err == nil {
			io.WriteString(c, "hi")
			c.Close()
		}
	}()
	again.(*parkable).Listener.(*net.TCPListener).SetDeadline(time.Now().Add(2 * time.Second))
	c, err := again.Accept()
	if err != nil {
		t.Fatalf("Accept on the listener taken back: %v", err)
	}
	c.Close()
}

func TestAfterParkCloseListenersCloseForReal(t *testing.T) {
	park := newListenerPark(net.Listen)
	addr := freeAddr(t)
	ln, err := park.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	park.Close()
	ln.Close()
	free, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the address is still bound after the park and the listener closed: %v", err)
	}
	free.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
