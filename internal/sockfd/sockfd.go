// Package sockfd moves a socket between Go's net package and code that
// polls its descriptor itself (the router's event loops): Take takes it out
// of Go's netpoller, Conn gives it back as a net.Conn.
package sockfd

import (
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Take returns a descriptor of nc's socket that Go's netpoller does not
// watch, and closes nc: the socket stays open through the descriptor,
// which the caller closes. nc still reports its addresses afterwards.
func Take(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errNotSocket
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, os.NewSyscallError("fcntl", dupErr)
	}
	// Closing nc's own descriptor does not end the connection: the
	// socket has fd too.
	_ = nc.Close()
	return fd, nil
}

// Conn returns a net.Conn, in Go's netpoller, of the socket fd is open
// on; fd stays open and the caller's.
func Conn(fd int) (net.Conn, error) {
	d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(d), "socket")
	defer f.Close()
	return net.FileConn(f)
}

var errNotSocket = os.NewSyscallError("sockfd", syscall.ENOTSOCK)
