package haproxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// runtimeAPI talks to HAProxy's runtime API, one connection per command
// as the non-interactive mode of the stats socket expects.
type runtimeAPI struct {
	// socket is a unix socket's path, or host:port on TCP.
	socket string
}

// commandTimeout bounds one command when ctx has no earlier deadline.
const commandTimeout = 5 * time.Second

// run sends cmd and returns HAProxy's answer, trimmed.
func (r runtimeAPI) run(ctx context.Context, cmd string) (string, error) {
	network := "tcp"
	if strings.HasPrefix(r.socket, "/") {
		network = "unix"
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, r.socket)
	if err != nil {
		return "", fmt.Errorf("HAProxy's runtime API at %s: %w; start HAProxy with %q in its global section, or set traffic.haproxy.socket to its stats socket",
			r.socket, err, "stats socket "+r.statsSocket()+" level admin")
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("HAProxy's runtime API at %s: send %q: %w", r.socket, cmd, err)
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		return "", fmt.Errorf("HAProxy's runtime API at %s: read the answer to %q: %w", r.socket, cmd, err)
	}
	answer := strings.TrimSpace(string(out))
	if strings.HasPrefix(answer, "Permission denied") {
		return "", fmt.Errorf("HAProxy's runtime API at %s refuses %q: write \"level admin\" on its stats socket line: %s", r.socket, cmd, r.statsSocket()+" level admin")
	}
	return answer, nil
}

// statsSocket is how haproxy.cfg names the socket on its stats socket line.
func (r runtimeAPI) statsSocket() string {
	if strings.HasPrefix(r.socket, "/") {
		return r.socket
	}
	return "ipv4@" + r.socket
}

// set runs a "set server" command on server s of backend, which answers
// nothing when it is done, or a line that says what it changed.
func (r runtimeAPI) set(ctx context.Context, backend, s, args string) error {
	cmd := "set server " + backend + "/" + s + " " + args
	answer, err := r.run(ctx, cmd)
	if err != nil {
		return err
	}
	if answer != "" && !strings.Contains(answer, "changed") && !strings.Contains(answer, "no need to change") {
		return fmt.Errorf("HAProxy refused %q: %s", cmd, answer)
	}
	return nil
}

// server is one server of a backend as "show servers state" reports it.
type server struct {
	name   string
	addr   netip.AddrPort
	weight int
	// initialWeight is the weight haproxy.cfg gives it.
	initialWeight int
	// admin is its srv_admin_state: the maintenance and drain flags.
	admin int
	// op is its srv_op_state: 0 stopped (down), 1 starting, 2 running,
	// 3 stopping.
	op int
	// since is how long it has been in its state, to the second.
	since time.Duration
	// checked says that HAProxy runs its health check: it is declared
	// with check, and the check is enabled.
	checked bool
}

// The flags of srv_admin_state (HAProxy's enum srv_admin).
const (
	adminForcedMaint = 0x01
	adminMaint       = adminForcedMaint | 0x02 | 0x20 // forced, inherited, or for want of an address
	adminDrain       = 0x08 | 0x10                    // forced or inherited
	// checkEnabled is the flag of srv_check_state for a check that runs.
	checkEnabled = 0x04
)

// state is what cutover sets a server to.
type state string

const (
	ready state = "ready"
	drain state = "drain"
	maint state = "maint"
)

// state returns the admin state the server is in.
func (s server) state() state {
	switch {
	case s.admin&adminMaint != 0:
		return maint
	case s.admin&adminDrain != 0:
		return drain
	}
	return ready
}

// up reports whether HAProxy sends it requests now: ready, with a weight,
// and running (its health check passes, or it has none).
func (s server) up() bool {
	return s.serving() && (s.op == 1 || s.op == 2)
}

// serving reports whether cutover has set it to take requests: ready and
// with a weight; a failing health check can still keep them from it.
func (s server) serving() bool {
	return s.state() == ready && s.weight > 0
}

func (s server) String() string {
	return fmt.Sprintf("%s (%s, weight %d, %s)", s.name, s.addr, s.weight, s.state())
}

// servers reads the servers of backend, in their order in haproxy.cfg.
func (r runtimeAPI) servers(ctx context.Context, backend string) ([]server, error) {
	answer, err := r.run(ctx, "show servers state "+backend)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(answer, "Can't find backend") {
		return nil, fmt.Errorf("HAProxy has no backend %s: declare it in haproxy.cfg, or set traffic.haproxy's backend to one of %s", backend, r.backends(ctx))
	}
	lines := strings.Split(answer, "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "# ") {
		return nil, fmt.Errorf("HAProxy's runtime API at %s: unexpected answer to \"show servers state %s\": %.200q", r.socket, backend, answer)
	}
	column := map[string]int{}
	for i, name := range strings.Fields(strings.TrimPrefix(lines[1], "# ")) {
		column[name] = i
	}
	for _, name := range stateColumns {
		if _, ok := column[name]; !ok {
			return nil, fmt.Errorf("HAProxy's runtime API at %s: \"show servers state\" has no column %s; use HAProxy 2.0 or later", r.socket, name)
		}
	}
	var list []server
	for _, line := range lines[2:] {
		fields := strings.Fields(line)
		if len(fields) < len(column) {
			continue
		}
		s, err := parseServer(fields, column)
		if err != nil {
			return nil, fmt.Errorf("HAProxy's runtime API at %s: server line %q: %w", r.socket, line, err)
		}
		list = append(list, s)
	}
	return list, nil
}

// stateColumns are the columns of "show servers state" that parseServer
// reads.
var stateColumns = []string{"srv_name", "srv_addr", "srv_port", "srv_uweight", "srv_iweight", "srv_admin_state", "srv_op_state", "srv_time_since_last_change", "srv_check_state"}

// parseServer reads one line of "show servers state" whose columns are
// named by column.
func parseServer(fields []string, column map[string]int) (server, error) {
	get := func(name string) string { return fields[column[name]] }
	s := server{name: get("srv_name")}
	addr, err := netip.ParseAddr(get("srv_addr"))
	if err != nil {
		return s, err
	}
	port, err := strconv.ParseUint(get("srv_port"), 10, 16)
	if err != nil {
		return s, fmt.Errorf("srv_port: %w", err)
	}
	s.addr = netip.AddrPortFrom(addr, uint16(port))
	for _, f := range []struct {
		name string
		to   *int
	}{{"srv_uweight", &s.weight}, {"srv_iweight", &s.initialWeight},
		{"srv_admin_state", &s.admin}, {"srv_op_state", &s.op}} {
		if *f.to, err = strconv.Atoi(get(f.name)); err != nil {
			return s, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	since, err := strconv.Atoi(get("srv_time_since_last_change"))
	if err != nil {
		return s, fmt.Errorf("srv_time_since_last_change: %w", err)
	}
	s.since = time.Duration(since) * time.Second
	check, err := strconv.Atoi(get("srv_check_state"))
	if err != nil {
		return s, fmt.Errorf("srv_check_state: %w", err)
	}
	s.checked = check&checkEnabled != 0
	return s, nil
}

// backends lists HAProxy's backends, for the error that names a missing
// one.
func (r runtimeAPI) backends(ctx context.Context) string {
	answer, err := r.run(ctx, "show backend")
	if err != nil {
		return "those in haproxy.cfg"
	}
	var names []string
	for _, line := range strings.Split(answer, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			names = append(names, line)
		}
	}
	return strings.Join(names, ", ")
}
