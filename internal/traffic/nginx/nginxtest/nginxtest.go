// Package nginxtest runs a real nginx for tests: its own prefix
// directory, config, pid file and error log, listening on free ports of
// 127.0.0.1, and proxying to the upstream blocks that cutover writes in
// a file of that directory.
package nginxtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/freeport"
)

// Server is a running nginx.
type Server struct {
	// Dir is its prefix; UpstreamFile, the file its config includes, is
	// in it.
	Dir          string
	UpstreamFile string
	// URL proxies to the upstream block "web_backend"; PreviewURL to
	// "web_preview". Until the blocks exist, they answer 502.
	URL, PreviewURL string
	// Test and Reload are the commands that check and reload this nginx;
	// PIDFile is its pid file.
	Test, Reload []string
	PIDFile      string

	cmd *exec.Cmd
}

// Start runs nginx until the test ends. It skips the test when nginx is
// not installed, unless CI=true, where it fails it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nginx is not installed (apt-get install nginx): %v", err)
		}
		t.Skipf("nginx is not installed (apt-get install nginx); skipping: %v", err)
	}
	dir := t.TempDir()
	s := &Server{Dir: dir, UpstreamFile: filepath.Join(dir, "conf.d", "web-upstream.conf"), PIDFile: filepath.Join(dir, "nginx.pid")}
	for _, sub := range []string{"conf.d", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	port, preview := freePort(t), freePort(t)
	s.URL, s.PreviewURL = fmt.Sprintf("http://127.0.0.1:%d", port), fmt.Sprintf("http://127.0.0.1:%d", preview)
	conf := filepath.Join(dir, "nginx.conf")
	// proxy_pass through a variable: nginx starts before cutover has
	// written the blocks, and finds them by name once it has.
	cfg := fmt.Sprintf(`pid %[4]s;
error_log %[1]s/error.log warn;
worker_processes 1;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    include %[1]s/conf.d/*.conf;
    server {
        listen 127.0.0.1:%[2]d;
        location / { set $backend web_backend; proxy_pass http://$backend; }
    }
    server {
        listen 127.0.0.1:%[3]d;
        location / { set $backend web_preview; proxy_pass http://$backend; }
    }
}
`, dir, port, preview, s.PIDFile)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	flags := []string{bin, "-p", dir, "-c", conf, "-e", "stderr"}
	s.Test = append(append([]string{}, flags...), "-t")
	s.Reload = append(append([]string{}, flags...), "-s", "reload")
	s.cmd = exec.Command(bin, append(flags[1:], "-g", "daemon off;")...)
	out, err := os.Create(filepath.Join(dir, "output.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close() // nginx has its own copy
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(os.Interrupt) // SIGINT: a fast shutdown
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("nginx's output:\n%s\nerror.log:\n%s", s.read("output.log"), s.read("error.log"))
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return s
		}
		select {
		case <-exited:
			t.Fatalf("nginx exited: %s", s.read("output.log"))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not listen on %d after 10s: %s", port, s.read("output.log"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// read returns the file name of s's directory (a log), or "".
func (s *Server) read(name string) string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, name))
	return string(b)
}

func freePort(t testing.TB) int {
	t.Helper()
	p, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
