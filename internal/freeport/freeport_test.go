package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestGetNeverReturnsAPortTwiceAndTheyCanBeBound(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p, err := Get()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d returned twice", p)
		}
		seen[p] = true
	}
	p, _ := Get()
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("bind the port Get returned: %v", err)
	}
	l.Close()
}
