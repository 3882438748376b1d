// Package haproxy moves an app's traffic through an HAProxy the team
// already runs, with its runtime API only: never a reload, so no
// connection is cut and no config file is written.
//
// The team declares, in the backend that serves the app, a fixed set of
// servers per slot, with server-template:
//
//	backend web
//	    balance roundrobin
//	    server-template blue 1-8 127.0.0.1:1 disabled
//	    server-template green 1-8 127.0.0.1:1 disabled
//
// and cutover points servers of a slot (blue1, blue2, ...) at the slot's
// replicas with "set server", sets their weights, and their states: ready
// when they take traffic, drain once a flip has moved it away (requests
// in flight finish, no new ones come), maint when unused. It reads the
// result back with "show servers state". A slot's servers take requests
// only once HAProxy reports them UP (one declared with check, once a
// check passed at its new address), and only then are the other slot's
// drained, so that a flip never leaves the backend without a server UP.
//
// HAProxy (2.6) keeps a server's idle connections across a change of its
// address, so new addresses go to servers that serve nothing first: a
// slot with more servers than replicas never sends a request to a
// replica it no longer lists while that replica still runs.
//
// Fixed server slots rather than servers added with "add server": servers
// added at runtime are lost at the team's next reload, which would cut
// the app off; servers from haproxy.cfg come back from a reload, and with
// HAProxy's server-state-file they come back as cutover last set them.
package haproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/traffic"
)

var (
	_ traffic.Splitter = (*Provider)(nil)
	_ traffic.Restorer = (*Provider)(nil)
)

// slots are the slots' names, and the prefixes of their servers' names.
var slots = [...]string{"blue", "green"}

// Options say which HAProxy to drive and which of its backends.
type Options struct {
	// Socket is the runtime API: a unix socket's path, or host:port for
	// a stats socket on TCP. Its level must be admin.
	Socket string
	// Backend holds the servers blue1..N and green1..N cutover sets.
	Backend string
	// PreviewBackend, when set, holds servers of the same names that
	// Preview points at a slot, for tests before the flip; without one,
	// Preview does nothing.
	PreviewBackend string
	// Timeout bounds the wait for a slot's servers to be UP once ready
	// (their health checks to pass); default 30s.
	Timeout time.Duration
}

// Provider drives the servers of an app's HAProxy backend. It implements
// traffic.Provider, traffic.Splitter and traffic.Restorer.
type Provider struct {
	api       runtimeAPI
	opts      Options
	endpoints traffic.SlotEndpoints
	// mu keeps one change at a time: each reads the servers, then sets
	// them from what it read.
	mu sync.Mutex
}

// New checks that HAProxy answers at opts.Socket and that its backend
// (and preview backend) has servers for both slots. endpoints gives each
// slot's replicas whenever the traffic moves.
func New(ctx context.Context, opts Options, endpoints traffic.SlotEndpoints) (*Provider, error) {
	if opts.Socket == "" || opts.Backend == "" {
		return nil, errors.New("traffic through HAProxy needs its runtime API and a backend: haproxy: {socket: /run/haproxy/admin.sock, backend: web}")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	p := &Provider{api: runtimeAPI{socket: opts.Socket}, opts: opts, endpoints: endpoints}
	for _, backend := range []string{opts.Backend, opts.PreviewBackend} {
		if backend == "" {
			continue
		}
		if _, err := p.read(ctx, backend); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Preview points the preview backend's servers of slot at its replicas
// and puts the other slot's in maintenance; without a preview backend it
// does nothing.
func (p *Provider) Preview(ctx context.Context, slot string) error {
	if p.opts.PreviewBackend == "" {
		return nil
	}
	return p.pointAll(ctx, p.opts.PreviewBackend, slot, maint)
}

// Flip points slot's servers at its replicas with the weights haproxy.cfg
// gives them, readies them, waits until HAProxy reports them UP, and only
// then drains the other slot's servers. It refuses, changing nothing,
// when slot has no replica or more replicas than servers.
func (p *Provider) Flip(ctx context.Context, slot string) error {
	return p.pointAll(ctx, p.opts.Backend, slot, drain)
}

// Restore is Flip: slot's servers are pointed at its replicas as they
// are now, after a restart of cutover started them on new addresses.
func (p *Provider) Restore(ctx context.Context, slot string) error {
	return p.Flip(ctx, slot)
}

// pointAll sends all of backend's requests to slot, with the weights
// haproxy.cfg gives its servers, and sets the other slot's ready servers
// to retire.
func (p *Provider) pointAll(ctx context.Context, backend, slot string, retire state) error {
	if err := checkSlot(slot); err != nil {
		return err
	}
	addrs, err := p.addresses(ctx, slot)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.point(ctx, backend, []pointing{{slot: slot, addrs: addrs}}, retire)
}

// Split sends weight percent of the requests to canary and the rest to
// stable, through the weights of their servers: HAProxy shares the
// requests between servers by weight, so each server of a slot gets the
// slot's share divided by its replicas, in whole weights from 1 to 256.
// When those cannot give the percent exactly (as 33% across 8 stable and
// 1 canary replicas), the closest weights are set, and the Share, not
// Exact, gives the canary's total weight out of the backend's. Weight 0
// is Flip(stable) and 100 is Flip(canary).
func (p *Provider) Split(ctx context.Context, stable, canary string, weight int) (traffic.Share, error) {
	switch {
	case weight < 0 || weight > 100:
		return traffic.Share{}, fmt.Errorf("canary weight %d: use a percentage from 0 to 100", weight)
	case stable == canary:
		return traffic.Share{}, fmt.Errorf("the stable and the canary slot are both %s", stable)
	case weight == 0:
		return traffic.Share{Canary: 0, Total: 100, Exact: true}, p.Flip(ctx, stable)
	case weight == 100:
		return traffic.Share{Canary: 100, Total: 100, Exact: true}, p.Flip(ctx, canary)
	}
	for _, slot := range []string{stable, canary} {
		if err := checkSlot(slot); err != nil {
			return traffic.Share{}, err
		}
	}
	stableAddrs, err := p.addresses(ctx, stable)
	if err != nil {
		return traffic.Share{}, err
	}
	canaryAddrs, err := p.addresses(ctx, canary)
	if err != nil {
		return traffic.Share{}, err
	}
	stableWeight, canaryWeight, exact := splitWeights(weight, len(stableAddrs), len(canaryAddrs))
	p.mu.Lock()
	defer p.mu.Unlock()
	// Stable first: while the canary's servers are not ready yet, its
	// weights change nothing, and the canary never gets more than the
	// old or the new share.
	if err := p.point(ctx, p.opts.Backend, []pointing{
		{slot: stable, addrs: stableAddrs, weight: stableWeight},
		{slot: canary, addrs: canaryAddrs, weight: canaryWeight},
	}, ready); err != nil {
		return traffic.Share{}, err
	}
	if exact {
		return traffic.Share{Canary: weight, Total: 100, Exact: true}, nil
	}
	canaryTotal := canaryWeight * len(canaryAddrs)
	return traffic.Share{Canary: canaryTotal, Total: canaryTotal + stableWeight*len(stableAddrs), Weights: true}, nil
}

// Active returns the slot whose servers HAProxy sends requests to: ready
// and with a weight. While a split gives both slots some, it is the
// stable one, told from the canary by what survives a restart of
// cutover: the stable slot's servers have been ready the longest (the
// canary's were readied by the split, after the flip that readied the
// stable's); when HAProxy's clock, in seconds, cannot tell them apart, the
// one with the larger share of the weight.
func (p *Provider) Active(ctx context.Context) (string, error) {
	bySlot, err := p.read(ctx, p.opts.Backend)
	if err != nil {
		return "", err
	}
	type serving struct {
		slot    string
		weight  int
		longest time.Duration
	}
	var found []serving
	for _, slot := range slots {
		s := serving{slot: slot}
		for _, srv := range bySlot[slot] {
			if srv.serving() {
				s.weight += srv.weight
				s.longest = max(s.longest, srv.since)
			}
		}
		if s.weight > 0 {
			found = append(found, s)
		}
	}
	switch {
	case len(found) == 0:
		return "", nil
	case len(found) == 1:
		return found[0].slot, nil
	}
	a, b := found[0], found[1]
	if b.longest > a.longest || (b.longest == a.longest && b.weight > a.weight) {
		a, b = b, a
	}
	if a.longest != b.longest || a.weight != b.weight {
		return a.slot, nil
	}
	return "", fmt.Errorf("backend %s splits the requests evenly between %s and %s, readied within the same second: cannot tell the stable slot from the canary; "+
		"set a canary weight other than 50, or wait a second, and ask again", p.opts.Backend, a.slot, b.slot)
}

// pointing is a slot's servers to point at its replicas.
type pointing struct {
	slot  string
	addrs []netip.AddrPort
	// weight is each server's; 0 means the weight haproxy.cfg gives it.
	weight int
}

// point points the servers of backend as each of to says and readies
// them once HAProxy reports them UP (a server with a health check after
// one passes at the new address), puts the slots' servers beyond their
// replicas in maintenance, and then sets the ready servers of the slots
// not in to to retire (drain or maint). It refuses, changing nothing,
// when a slot has more replicas than servers; when the servers do not
// come UP in time it sets them back as they were. It returns once HAProxy
// reports the servers as set.
func (p *Provider) point(ctx context.Context, backend string, to []pointing, retire state) error {
	bySlot, err := p.read(ctx, backend)
	if err != nil {
		return err
	}
	for _, pt := range to {
		if have := len(bySlot[pt.slot]); len(pt.addrs) > have {
			return fmt.Errorf("slot %s has %d replicas, but backend %s has %d %s servers: raise it to \"server-template %s 1-%d ...\" in haproxy.cfg and reload HAProxy; the traffic was left as it was",
				pt.slot, len(pt.addrs), backend, have, pt.slot, pt.slot, len(pt.addrs))
		}
	}
	want := map[string]setting{}
	var readied, rolled, unused []server
	for _, pt := range to {
		addrOf := assign(bySlot[pt.slot], pt.addrs)
		for _, srv := range bySlot[pt.slot] {
			addr, ok := addrOf[srv.name]
			if !ok {
				unused = append(unused, srv)
				want[srv.name] = setting{state: maint}
				continue
			}
			if srv.serving() && srv.addr != addr {
				rolled = append(rolled, srv)
			} else {
				readied = append(readied, srv)
			}
			w := pt.weight
			if w == 0 {
				w = max(srv.initialWeight, 1)
			}
			want[srv.name] = setting{addr: addr, weight: w, state: ready}
		}
	}
	var retired []server
	for _, slot := range slots {
		if slices.ContainsFunc(to, func(pt pointing) bool { return pt.slot == slot }) {
			continue
		}
		for _, srv := range bySlot[slot] {
			if srv.state() == ready || (retire == maint && srv.state() == drain) {
				retired = append(retired, srv)
				want[srv.name] = setting{state: retire}
			}
		}
	}

	if err := p.bringUp(ctx, backend, readied, want); err != nil {
		return p.restore(ctx, backend, readied, err)
	}
	for i, srv := range rolled {
		if err := p.roll(ctx, backend, srv, want); err != nil {
			return p.restore(ctx, backend, append(readied, rolled[:i+1]...), err)
		}
	}
	for _, srv := range append(unused, retired...) {
		if err := p.converge(ctx, backend, srv, want[srv.name]); err != nil {
			return err
		}
	}
	return p.verify(ctx, backend, want)
}

// assign returns which of a slot's servers gets which of addrs: a server
// at one of them already keeps it (a flip back to replicas still running
// finds them where they were); the others go first to servers that serve
// nothing, which can be readied without touching the ones that serve, and
// only then to servers that serve other addresses.
func assign(servers []server, addrs []netip.AddrPort) map[string]netip.AddrPort {
	addrOf := map[string]netip.AddrPort{}
	left := slices.Clone(addrs)
	for _, srv := range servers {
		if i := slices.Index(left, srv.addr); i >= 0 {
			addrOf[srv.name] = left[i]
			left = slices.Delete(left, i, i+1)
		}
	}
	for _, serving := range []bool{false, true} {
		for _, srv := range servers {
			if _, ok := addrOf[srv.name]; !ok && srv.serving() == serving && len(left) > 0 {
				addrOf[srv.name], left = left[0], left[1:]
			}
		}
	}
	return addrOf
}

// bringUp takes servers to what want says and waits until HAProxy
// reports each one UP. Leaving maintenance, HAProxy counts a server UP
// until its first check says otherwise, so one with a health check that
// does not serve yet is staged in drain and forced down, and readied only
// once a check passes at its new address. A server that serves keeps
// serving meanwhile.
func (p *Provider) bringUp(ctx context.Context, backend string, servers []server, want map[string]setting) error {
	var proving []server
	for _, srv := range servers {
		w := want[srv.name]
		if srv.checked && !srv.serving() {
			w.state = drain
			proving = append(proving, srv)
		}
		err := p.converge(ctx, backend, srv, w)
		if err == nil && w.state == drain {
			err = p.api.set(ctx, backend, srv.name, "health down")
		}
		if err != nil {
			return err
		}
	}
	if err := p.awaitUp(ctx, backend, servers); err != nil {
		return err
	}
	for _, srv := range proving {
		if err := p.api.set(ctx, backend, srv.name, "state ready"); err != nil {
			return err
		}
	}
	return nil
}

// roll moves a server that serves to a new address. HAProxy would go on
// sending requests over its idle connections to the old address, so it
// goes through maintenance, which closes them, when another server is UP
// to take its requests meanwhile; the only server UP changes in place.
func (p *Provider) roll(ctx context.Context, backend string, srv server, want map[string]setting) error {
	now, err := p.api.servers(ctx, backend)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(now, func(s server) bool { return s.name != srv.name && s.up() }) {
		if err := p.api.set(ctx, backend, srv.name, "state maint"); err != nil {
			return err
		}
		srv.admin |= adminForcedMaint
	}
	return p.bringUp(ctx, backend, []server{srv}, want)
}

// setting is what cutover sets a server to; a server in maintenance only
// needs its state.
type setting struct {
	addr   netip.AddrPort
	weight int
	state  state
}

// converge sends the commands that take srv, as read, to want: its
// address, weight and state. A server that takes no requests is put in
// maintenance before it gets a new address, which closes its idle
// connections to the old one; a ready one keeps taking requests while
// its address changes.
func (p *Provider) converge(ctx context.Context, backend string, srv server, want setting) error {
	now := srv.state()
	set := func(args string) error { return p.api.set(ctx, backend, srv.name, args) }
	if want.addr.IsValid() && srv.addr != want.addr {
		if now == drain || (now == ready && want.state == maint) {
			if err := set("state maint"); err != nil {
				return err
			}
			now = maint
		}
		if err := set(fmt.Sprintf("addr %s port %d", want.addr.Addr(), want.addr.Port())); err != nil {
			return err
		}
	}
	if want.weight > 0 && srv.weight != want.weight {
		if err := set("weight " + strconv.Itoa(want.weight)); err != nil {
			return err
		}
	}
	if now != want.state {
		return set("state " + string(want.state))
	}
	return nil
}

// restore sets the servers readied back as they were read, after cause
// stopped a change half way, and returns cause with what restore could
// not undo.
func (p *Provider) restore(ctx context.Context, backend string, readied []server, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commandTimeout)
	defer cancel()
	now, err := p.api.servers(ctx, backend)
	if err != nil {
		return fmt.Errorf("%w; could not set the servers back: %w", cause, err)
	}
	for _, before := range readied {
		i := slices.IndexFunc(now, func(s server) bool { return s.name == before.name })
		if i < 0 {
			continue
		}
		was := setting{addr: before.addr, weight: before.weight, state: before.state()}
		if err := p.converge(ctx, backend, now[i], was); err != nil {
			return fmt.Errorf("%w; could not set %s back: %w", cause, before.name, err)
		}
	}
	return fmt.Errorf("%w; its servers were set back as they were", cause)
}

// awaitUp waits until HAProxy reports each of servers running, which a
// server declared with check is once its health check passes.
func (p *Provider) awaitUp(ctx context.Context, backend string, servers []server) error {
	// The reads do not run under the timeout's deadline, which would
	// hide what the wait was for behind a read cut short.
	deadline := time.Now().Add(p.opts.Timeout)
	for {
		now, err := p.api.servers(ctx, backend)
		if err != nil {
			return err
		}
		var down []string
		for _, srv := range now {
			if slices.ContainsFunc(servers, func(s server) bool { return s.name == srv.name }) && srv.op != 1 && srv.op != 2 {
				down = append(down, srv.String())
			}
		}
		if len(down) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("backend %s: %s not UP after %s: is the replica listening there, and does the server's health check pass? (HAProxy's \"show stat\" says why)",
				backend, strings.Join(down, ", "), p.opts.Timeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("backend %s: waiting for %s to be UP: %w", backend, strings.Join(down, ", "), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// verify reads backend's servers back and checks that each set one is as
// wanted.
func (p *Provider) verify(ctx context.Context, backend string, want map[string]setting) error {
	bySlot, err := p.read(ctx, backend)
	if err != nil {
		return err
	}
	for _, list := range bySlot {
		for _, srv := range list {
			w, ok := want[srv.name]
			if !ok {
				continue
			}
			if srv.state() != w.state || (w.state == ready && (srv.addr != w.addr || srv.weight != w.weight)) {
				return fmt.Errorf("backend %s: HAProxy reports %s after cutover set it to %s, weight %d, %s: did something else change it?", backend, srv, w.addr, w.weight, w.state)
			}
		}
	}
	return nil
}

// read returns backend's servers of each slot, in the order of their
// numbers, and refuses a backend without servers for both slots.
func (p *Provider) read(ctx context.Context, backend string) (map[string][]server, error) {
	list, err := p.api.servers(ctx, backend)
	if err != nil {
		return nil, err
	}
	bySlot := map[string][]server{}
	numbers := map[string]int{}
	for _, srv := range list {
		for _, slot := range slots {
			rest, ok := strings.CutPrefix(srv.name, slot)
			if n, err := strconv.Atoi(rest); ok && err == nil && n > 0 {
				bySlot[slot] = append(bySlot[slot], srv)
				numbers[srv.name] = n
			}
		}
	}
	for _, slot := range slots {
		if len(bySlot[slot]) == 0 {
			return nil, fmt.Errorf("backend %s has no server %s1: declare each slot's servers in it, such as \"server-template blue 1-8 127.0.0.1:1 disabled\" and \"server-template green 1-8 127.0.0.1:1 disabled\"", backend, slot)
		}
		slices.SortFunc(bySlot[slot], func(a, b server) int { return numbers[a.name] - numbers[b.name] })
	}
	return bySlot, nil
}

// addresses returns the addresses of slot's replicas, resolving host
// names, since HAProxy's servers take IP addresses. It refuses a slot with
// no replica: there would be nothing to send the traffic to.
func (p *Provider) addresses(ctx context.Context, slot string) ([]netip.AddrPort, error) {
	urls := p.endpoints(slot)
	if len(urls) == 0 {
		return nil, fmt.Errorf("slot %s runs no replica to send the traffic to; HAProxy was left as it was", slot)
	}
	addrs := make([]netip.AddrPort, 0, len(urls))
	for _, u := range urls {
		port := u.Port()
		switch {
		case port != "":
		case u.Scheme == "https":
			port = "443"
		default:
			port = "80"
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("replica %s of slot %s: port %q: %w", u, slot, port, err)
		}
		ip, err := netip.ParseAddr(u.Hostname())
		if err != nil {
			ips, lookupErr := net.DefaultResolver.LookupNetIP(ctx, "ip", u.Hostname())
			if lookupErr != nil || len(ips) == 0 {
				return nil, fmt.Errorf("replica %s of slot %s: HAProxy's servers take an IP address, and %s does not resolve: %v", u, slot, u.Hostname(), lookupErr)
			}
			ip = ips[0]
		}
		addrs = append(addrs, netip.AddrPortFrom(ip.Unmap(), uint16(n)))
	}
	return addrs, nil
}

// checkSlot refuses a slot that is neither blue nor green.
func checkSlot(slot string) error {
	if !slices.Contains(slots[:], slot) {
		return fmt.Errorf("slot %q: the slots are blue and green", slot)
	}
	return nil
}
