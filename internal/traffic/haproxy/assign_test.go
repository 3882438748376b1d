package haproxy

import (
	"maps"
	"net/netip"
	"testing"
)

func TestAssignKeepsAddressesAndPrefersServersThatServeNothing(t *testing.T) {
	a, b, c := netip.MustParseAddrPort("127.0.0.1:1001"), netip.MustParseAddrPort("127.0.0.1:1002"), netip.MustParseAddrPort("127.0.0.1:1003")
	serving := func(name string, addr netip.AddrPort) server { return server{name: name, addr: addr, weight: 1, op: 2} }
	idle := func(name string, addr netip.AddrPort) server {
		return server{name: name, addr: addr, weight: 1, admin: adminForcedMaint}
	}
	unset := netip.MustParseAddrPort("127.0.0.1:1")
	tests := []struct {
		name    string
		servers []server
		addrs   []netip.AddrPort
		want    map[string]netip.AddrPort
	}{
		{"a fresh slot, in order", []server{idle("blue1", unset), idle("blue2", unset), idle("blue3", unset)}, []netip.AddrPort{a, b},
			map[string]netip.AddrPort{"blue1": a, "blue2": b}},
		{"replicas still where they were, in another order", []server{idle("blue1", a), idle("blue2", b)}, []netip.AddrPort{b, a},
			map[string]netip.AddrPort{"blue1": a, "blue2": b}},
		{"new addresses go to spare servers", []server{serving("blue1", a), serving("blue2", b), idle("blue3", unset), idle("blue4", unset)}, []netip.AddrPort{c, b},
			map[string]netip.AddrPort{"blue2": b, "blue3": c}},
		{"no spare server: one that serves moves", []server{serving("blue1", a), serving("blue2", b)}, []netip.AddrPort{c},
			map[string]netip.AddrPort{"blue1": c}},
	}
	for _, tt := range tests {
		if got := assign(tt.servers, tt.addrs); !maps.Equal(got, tt.want) {
			t.Errorf("%s: assign = %v, want %v", tt.name, got, tt.want)
		}
	}
}
