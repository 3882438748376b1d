package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// listenHint is what to write instead of a malformed listen address.
const listenHint = "write host:port, such as 127.0.0.1:8080, or :8080 for every interface"

// address is a listen address normalised for comparison: host is
// lowercased, IP literals are canonical, and "" stands for every interface
// (written as ":8080", "0.0.0.0:8080" or "[::]:8080").
type address struct {
	host string
	port int
}

// parseAddress reads a listen address written as host:port.
func parseAddress(s string) (address, error) {
	host, portText, err := net.SplitHostPort(s)
	if err != nil {
		return address{}, fieldError{msg: fmt.Sprintf("%q is not host:port", s), hint: listenHint}
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return address{}, fieldError{msg: fmt.Sprintf("port %q in %q is not a number", portText, s), hint: listenHint}
	}
	if port < 1 || port > 65535 {
		return address{}, fieldError{msg: fmt.Sprintf("port %d in %q is out of range", port, s), hint: "use a port from 1 to 65535"}
	}
	if host == "" {
		return address{port: port}, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.IsUnspecified() {
			return address{port: port}, nil
		}
		return address{host: ip.String(), port: port}, nil
	}
	host = strings.ToLower(host)
	if !isHostName(host) {
		return address{}, fieldError{msg: fmt.Sprintf("host %q in %q is not an IP address or host name", host, s), hint: listenHint}
	}
	return address{host: host, port: port}, nil
}

// String formats a as host:port, with an empty host for every interface.
func (a address) String() string {
	return net.JoinHostPort(a.host, strconv.Itoa(a.port))
}

// overlaps reports whether listening on a and b would compete for the same
// socket. Host names are not resolved: localhost:8080 and 127.0.0.1:8080
// are taken as different.
func (a address) overlaps(b address) bool {
	return a.port == b.port && (a.host == "" || b.host == "" || a.host == b.host)
}

// loopback reports whether only this machine can reach a. Every-interface
// addresses are not loopback.
func (a address) loopback() bool {
	if a.host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(a.host)
	return err == nil && ip.Unmap().IsLoopback()
}

// isHostName reports whether s is a plausible DNS name: labels of letters,
// digits, '-' and '_' separated by dots.
func isHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// isIP reports whether s is an IP address literal.
func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// normalHost is the form of a Hosts entry that requests are matched by:
// lowercased, without a port or trailing dot.
func normalHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	if name, port, err := net.SplitHostPort(h); err == nil {
		// "https://x" splits too, into "https" and "//x"; only a number
		// is a port.
		if _, err := strconv.Atoi(port); err == nil {
			h = name
		}
	}
	return strings.TrimSuffix(strings.Trim(h, "[]"), ".")
}
