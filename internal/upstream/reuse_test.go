package upstream

import (
	"net"
	"testing"
	"time"
)

// idlePair returns a raw connection to a fresh listener and the
// listener's end of it.
func idlePair(t *testing.T) (*rawConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	return &rawConn{nc: nc, buf: make([]byte, rawBufSize)}, peer
}

func TestAnIdleConnectionWithUnaskedBytesIsNotQuiet(t *testing.T) {
	c, peer := idlePair(t)
	if !c.quiet() {
		t.Fatal("a connection nothing was sent on is not quiet")
	}
	peer.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nPOISONED"))
	eventually(t, "the check finds the bytes no request asked for", func() bool { return !c.quiet() })
	// A peek reads nothing: the bytes stay, and so does the verdict.
	if c.quiet() {
		t.Error("the check consumed the bytes it found")
	}
}

func TestAnIdleConnectionTheEndpointClosedIsNotQuiet(t *testing.T) {
	c, peer := idlePair(t)
	peer.Close()
	eventually(t, "the check finds the close", func() bool { return !c.quiet() })
}

func TestAnIdleConnectionPastItsReadDeadlineCanStillBeChecked(t *testing.T) {
	c, _ := idlePair(t)
	// The response-header deadline of the last answer stays set.
	c.nc.SetReadDeadline(time.Now().Add(-time.Second))
	if !c.quiet() {
		t.Error("a quiet connection with an expired read deadline is not quiet")
	}
}

func TestTheCheckBeforeReuseAllocatesNothing(t *testing.T) {
	c, _ := idlePair(t)
	c.quiet() // the first check sets up the connection's peek
	if n := testing.AllocsPerRun(100, func() { c.quiet() }); n != 0 {
		t.Errorf("a check before reuse allocates %v times, want 0", n)
	}
}
