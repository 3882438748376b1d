package kubetest

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
)

// Loopback ranges: each cluster's loopback nodes take their pod CIDRs in
// a /16 of 127.0.0.0/8 of their own, 127.<octet>.0.0/16, so that two
// clusters (two test packages at once, or two test runs on one machine)
// never give two pods the same address. A range is reserved with an
// exclusive lock on a file in the temp dir, held until the cluster stops
// or the process exits, whichever comes first.
const (
	firstLoopbackOctet = 200
	loopbackRanges     = 50
)

// loopbackRange is a reserved 127.<octet>.0.0/16.
type loopbackRange struct {
	octet int
	lock  *os.File
}

// reserveLoopbackRange reserves the first free loopback range.
func reserveLoopbackRange() (*loopbackRange, error) {
	dir := filepath.Join(os.TempDir(), "cutover-kubetest-loopback")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, err
	}
	for i := range loopbackRanges {
		octet := firstLoopbackOctet + i
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprint(octet)), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			return nil, err
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &loopbackRange{octet: octet, lock: f}, nil
		}
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock loopback range 127.%d.0.0/16: %w", octet, err)
		}
	}
	return nil, fmt.Errorf("all %d loopback ranges from 127.%d.0.0/16 are taken by other clusters", loopbackRanges, firstLoopbackOctet)
}

// cidr is the pod CIDR of loopback node i.
func (r *loopbackRange) cidr(i int) string { return fmt.Sprintf("127.%d.%d.0/24", r.octet, i) }

// Prefix is the range, 127.<octet>.0.0/16.
func (r *loopbackRange) prefix() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(r.octet), 0, 0}), 16)
}

// release frees the range for another cluster.
func (r *loopbackRange) release() {
	if r != nil {
		r.lock.Close()
	}
}
