package sockfd

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// pair returns both ends of a TCP connection on 127.0.0.1.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	server.SetDeadline(time.Now().Add(5 * time.Second))
	return client, server
}

func TestATakenSocketStaysOpenAndComesBackAsAConn(t *testing.T) {
	client, server := pair(t)
	remote := client.RemoteAddr().String()
	fd, err := Take(client)
	if err != nil {
		t.Fatal(err)
	}
	// The net.Conn is closed, the connection is not.
	if _, err := client.Write([]byte("x")); err == nil {
		t.Error("the net.Conn Take closed still writes")
	}
	if got := client.RemoteAddr().String(); got != remote {
		t.Errorf("RemoteAddr after Take: %s, want %s", got, remote)
	}
	if _, err := syscall.Write(fd, []byte("through the descriptor")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := server.Read(buf)
	if err != nil || string(buf[:n]) != "through the descriptor" {
		t.Fatalf("the peer read %q, %v", buf[:n], err)
	}

	back, err := Conn(fd)
	if err != nil {
		t.Fatal(err)
	}
	back.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := server.Write([]byte("to the conn")); err != nil {
		t.Fatal(err)
	}
	n, err = back.Read(buf)
	if err != nil || string(buf[:n]) != "to the conn" {
		t.Fatalf("the Conn read %q, %v", buf[:n], err)
	}
	// Closing the Conn leaves fd open; closing fd as well ends the
	// connection.
	back.Close()
	if _, err := syscall.Write(fd, []byte("still")); err != nil {
		t.Fatalf("fd after the Conn closed: %v", err)
	}
	syscall.Close(fd)
	got, err := io.ReadAll(server)
	if err != nil || string(got) != "still" {
		t.Fatalf("the peer read %q, %v until the end; want %q then EOF", got, err, "still")
	}
}
