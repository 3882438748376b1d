//go:build !linux

package router

// Without epoll, every fast-path connection has a goroutine of its own.

// eventLoop is never made off Linux.
type eventLoop struct{}

// loopItem is a connection for a loop.
type loopItem struct{ conn *fastConn }

func pickLoop() *eventLoop { return nil }

func (lp *eventLoop) post(loopItem) {}

func (lp *eventLoop) write(c *fastConn, b []byte) error {
	_, err := c.nc.Write(b)
	return err
}
