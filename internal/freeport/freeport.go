// Package freeport hands out TCP ports on 127.0.0.1 for tests, benchmarks
// and demos that start servers on ports written into configs.
package freeport

import (
	"fmt"
	"net"
	"sync"
)

// handedOut holds every port Get has returned in this process: the kernel
// may give a port it has just freed to the next bind on :0, and two servers
// of one test must not be told the same port.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// Get returns a TCP port free on 127.0.0.1 right now that this process has
// not been given before. Another process may still take it before the
// caller binds it.
func Get() (int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port, nil
		}
	}
}
