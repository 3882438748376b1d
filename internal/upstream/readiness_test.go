package upstream

import (
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Status says why an endpoint is not ready: the last health check's answer,
// short and relative to the endpoint, and how many checks in a row gave it.
func TestStatusGivesTheReasonAnEndpointIsNotReady(t *testing.T) {
	r := newReplica(t, "a", false)
	p := startPool(t, fastHealth, r)
	eventually(t, "two failed checks", func() bool { return p.Status()[0].Checks >= 2 })
	st := p.Status()[0]
	if st.Ready || st.Reason != "GET /healthz: 503 Service Unavailable" {
		t.Errorf("Status = %+v, want not ready, reason %q", st, "GET /healthz: 503 Service Unavailable")
	}

	r.healthy.Store(true)
	waitAllReady(t, p)
	if st := p.Status()[0]; st.Reason != "" {
		t.Errorf("a ready endpoint has reason %q, want none", st.Reason)
	}
}

func TestStatusNamesARefusedConnectionAsTheReason(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	p := NewPool([]*url.URL{{Scheme: "http", Host: addr}}, Options{Health: fastHealth})
	p.Start(t.Context())
	t.Cleanup(p.Close)
	eventually(t, "a failed check", func() bool { return p.Status()[0].Checks >= 1 })
	if got := p.Status()[0].Reason; !strings.HasPrefix(got, "GET /healthz: ") || !strings.Contains(got, "connection refused") || strings.Contains(got, addr) {
		t.Errorf("reason %q, want GET /healthz: ... connection refused, without the address again", got)
	}
}

func TestStatusOfAnEndpointNotCheckedYetSaysSo(t *testing.T) {
	r := newReplica(t, "a", true)
	slow := fastHealth
	slow.Interval = time.Hour
	p := NewPool([]*url.URL{r.url(t)}, Options{Health: slow})
	t.Cleanup(p.Close)
	if got := p.Status()[0].Reason; got != "not checked yet" {
		t.Errorf("reason before the first check %q, want %q", got, "not checked yet")
	}
}
