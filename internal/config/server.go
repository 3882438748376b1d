package config

import (
	"fmt"
	"net/netip"
)

// Limits of server.maxHeaderBytes: below 1 KiB ordinary browsers fail, and
// beyond 16 MiB one request could hold a lot of memory.
const (
	minMaxHeaderBytes = 1 << 10
	maxMaxHeaderBytes = 16 << 20
)

func (s *Server) validate(d *document, path string) {
	checkPositive(d, path+".readHeaderTimeout", s.ReadHeaderTimeout, "10s")
	checkNotNegative(d, path+".readTimeout", s.ReadTimeout)
	checkNotNegative(d, path+".writeTimeout", s.WriteTimeout)
	checkNotNegative(d, path+".idleTimeout", s.IdleTimeout)
	if s.MaxHeaderBytes < minMaxHeaderBytes || s.MaxHeaderBytes > maxMaxHeaderBytes {
		d.add(path+".maxHeaderBytes", fmt.Sprintf("use %d (1 KiB) to %d (16 MiB), or leave it out for 65536", minMaxHeaderBytes, maxMaxHeaderBytes),
			"%d is out of range", s.MaxHeaderBytes)
	}
	if s.MaxBodyBytes < 0 {
		d.add(path+".maxBodyBytes", "use 0 (no limit) or a positive number of bytes", "%d is negative", s.MaxBodyBytes)
	}
	for i, p := range s.TrustedProxies {
		if _, ok := parsePrefix(p); !ok {
			d.add(fmt.Sprintf("%s.trustedProxies[%d]", path, i), "write a CIDR such as 10.0.0.0/8 or an IP address such as 192.168.1.5",
				"%q is not a CIDR or IP address", p)
		}
	}
	if sample := s.AccessLog.Sample; sample != nil && (*sample < 0 || *sample > 1) {
		d.add(path+".accessLog.sample", "use a fraction from 0 to 1, such as 0.1 for one request in ten", "%v is out of range", *sample)
	}
}

// TrustedPrefixes returns TrustedProxies as prefixes; an IP address
// becomes the prefix of that address alone. The config was validated, so
// every entry parses.
func (s *Server) TrustedPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s.TrustedProxies {
		if prefix, ok := parsePrefix(p); ok {
			out = append(out, prefix)
		}
	}
	return out
}

// parsePrefix reads a CIDR or a single IP address.
func parsePrefix(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(ip, ip.BitLen()), true
	}
	return netip.Prefix{}, false
}
