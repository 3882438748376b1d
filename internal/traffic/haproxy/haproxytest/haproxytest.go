// Package haproxytest runs a real HAProxy for tests: its own config,
// admin stats socket and log in a temporary directory, frontends on free
// ports of 127.0.0.1, and backends whose blue and green servers are
// declared by server-template lines, in maintenance until cutover points
// them at a slot's replicas through the runtime API.
package haproxytest

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/freeport"
)

// Server is a running HAProxy.
type Server struct {
	// Socket is the path of its stats socket, at level admin.
	Socket string
	// URL is the frontend of backend Backend; PreviewURL the frontend of
	// backend PreviewBackend. Until cutover readies servers, they answer
	// 503. Run sets only Socket and URL: the config is the caller's.
	URL, PreviewURL         string
	Backend, PreviewBackend string
	// Other is a backend without server templates, for tests of what
	// cutover says of one.
	Other string

	log string
}

// Start runs HAProxy until the test ends. Backend and PreviewBackend
// each declare servers blue1..n and green1..n (balance roundrobin), with
// serverOpts added to their server-template lines (such as
// "check inter 100ms"). It skips the test when HAProxy is not
// installed, unless CI=true, where it fails it.
func Start(t testing.TB, n int, serverOpts string) *Server {
	t.Helper()
	dir := Dir(t)
	socket := filepath.Join(dir, "admin.sock")
	var ports [2]int
	for i := range ports {
		var err error
		if ports[i], err = freeport.Get(); err != nil {
			t.Fatal(err)
		}
	}
	servers := fmt.Sprintf("    server-template blue 1-%[1]d 127.0.0.1:1 disabled %[2]s\n    server-template green 1-%[1]d 127.0.0.1:1 disabled %[2]s\n", n, serverOpts)
	// retries 0 and no redispatch: a request sent to a server that does
	// not answer fails, as it would for the team's clients, instead of
	// being hidden by a retry.
	cfg := fmt.Sprintf(`global
    stats socket %[1]s level admin
    nbthread 2
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 0
frontend app
    bind 127.0.0.1:%[2]d
    default_backend web
frontend preview
    bind 127.0.0.1:%[3]d
    default_backend web-preview
backend web
    balance roundrobin
%[4]sbackend web-preview
    balance roundrobin
%[4]sbackend other
    server only 127.0.0.1:1 disabled
`, socket, ports[0], ports[1], servers)
	file := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := Run(t, file, socket, fmt.Sprintf("127.0.0.1:%d", ports[0]))
	s.PreviewURL = fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	s.Backend, s.PreviewBackend, s.Other = "web", "web-preview", "other"
	return s
}

// Dir returns a new directory for HAProxy's files, removed when the
// test ends: a unix socket's path must stay short, which t.TempDir's
// may not.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "haproxy")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Run runs HAProxy on the config file until the test ends, and returns
// once its stats socket (socket, at level admin) and its frontend at
// listen (host:port, the Server's URL) answer. Its output goes to
// haproxy.log beside file. It skips the test when HAProxy is not
// installed, unless CI=true, where it fails it.
func Run(t testing.TB, file, socket, listen string) *Server {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("haproxy is not installed (apt-get install haproxy): %v", err)
		}
		t.Skipf("haproxy is not installed (apt-get install haproxy); skipping: %v", err)
	}
	s := &Server{Socket: socket, URL: "http://" + listen, log: filepath.Join(filepath.Dir(file), "haproxy.log")}
	logs, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close() // the child has its own copy
	cmd := exec.Command(bin, "-f", file, "-db")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // a hard stop: the test is over
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("haproxy output:\n%s", s.output())
		}
	})
	// HAProxy binds the stats socket with its frontends, before it
	// serves: once both answer, it runs.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, err := s.Command("show info")
		if err == nil {
			var c net.Conn
			if c, err = net.DialTimeout("tcp", listen, time.Second); err == nil {
				c.Close()
				return s
			}
		}
		select {
		case <-exited:
			t.Fatalf("haproxy exited: %s", s.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy does not answer after 10s: %v\n%s", err, s.output())
		}
	}
}

// Command sends one command to s's runtime API and returns its answer,
// such as "show stat" or "show servers state web".
func (s *Server) Command(command string) (string, error) {
	c, err := net.DialTimeout("unix", s.Socket, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		return "", err
	}
	answer, err := io.ReadAll(c)
	return string(answer), err
}

// output is what HAProxy wrote on its stdout and stderr.
func (s *Server) output() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}
