package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pidFile is where cutover records the PID of the process that serves.
func (s *setup) pidFile() string { return filepath.Join(s.dataDir(), "cutover.pid") }

// waitPID polls the PID file until it names a process other than old (0:
// any) and returns it.
func (s *setup) waitPID(t *testing.T, old int, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(s.pidFile())
		if err == nil {
			last = strings.TrimSpace(string(data))
			if pid, err := strconv.Atoi(last); err == nil && pid > 0 && pid != old {
				return pid
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not name a new cutover process within %s (last: %q)", s.pidFile(), timeout, last)
	return 0
}

// alive reports whether pid runs: it exists and is not a zombie. Upgraded
// cutovers are not this test's children, so their exit is seen in /proc.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// waitGone fails the test unless pid exits within timeout.
func waitGone(t *testing.T, pid int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("old cutover process %d still runs %s after the upgrade", pid, timeout)
}

// stopPID ends a cutover this test started through an upgrade: SIGTERM,
// then SIGKILL if it has not exited after 30 s.
func stopPID(t *testing.T, pid int) {
	if !alive(pid) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("cutover %d did not stop within 30s of SIGTERM; killing it", pid)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

func TestUpgradesUnderLoadDropNoRequestAndOldProcessesExit(t *testing.T) {
	s := newSetup(t)
	s.writeConfig(t)
	srv := s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	pid := s.waitPID(t, 0, 10*time.Second)
	if pid != srv.cmd.Process.Pid {
		t.Fatalf("PID file names %d, want the cutover started, %d", pid, srv.cmd.Process.Pid)
	}
	// The last process is no child of this test; end it before the
	// harness waits for the first one's output to close.
	current := pid
	t.Cleanup(func() { stopPID(t, current) })

	load := startLoad(s.appURL(), 8, 3*time.Minute)
	defer load.finish()
	time.Sleep(300 * time.Millisecond)
	for i, how := range []string{"SIGUSR2", "cutover upgrade", "SIGUSR2"} {
		before := load.requests.Load()
		old := current
		if how == "SIGUSR2" {
			if err := syscall.Kill(old, syscall.SIGUSR2); err != nil {
				t.Fatalf("upgrade %d: signal %d: %v", i+1, old, err)
			}
		} else {
			s.mustCLI(t, "upgrade")
		}
		current = s.waitPID(t, old, 90*time.Second)
		waitGone(t, old, 60*time.Second)
		// Let the load run against the new process alone for a moment.
		time.Sleep(300 * time.Millisecond)
		t.Logf("upgrade %d (%s): pid %d -> %d, %d requests meanwhile", i+1, how, old, current, load.requests.Load()-before)
	}
	load.finish()

	if n := load.failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed across the upgrades: %v", n, load.requests.Load(), load.errs)
	}
	if load.requests.Load() == 0 {
		t.Fatal("the load sent no request")
	}
	waitServing(t, s.appURL(), "v1", 5*time.Second)
	if out := s.mustCLI(t, "status", "web").stdout; !strings.Contains(out, "v1") {
		t.Errorf("status after the upgrades does not show v1:\n%s", out)
	}
}

func TestFailedUpgradeKeepsTheOldProcessServingWithItsStore(t *testing.T) {
	s := newSetup(t)
	s.writeConfig(t)
	srv := s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	pid := s.waitPID(t, 0, 10*time.Second)
	good, err := os.ReadFile(s.configPath())
	if err != nil {
		t.Fatal(err)
	}
	// The new process reads the config again and refuses this one.
	if err := os.WriteFile(s.configPath(), []byte("apps: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	load := startLoad(s.appURL(), 4, time.Minute)
	defer load.finish()
	r := s.cli(t, "upgrade")
	if r.code == 0 || !strings.Contains(r.stderr, "upgrade failed") {
		t.Fatalf("cutover upgrade with a broken config: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	load.finish()
	if n := load.failed.Load(); n != 0 {
		t.Fatalf("%d requests failed during the failed upgrade: %v", n, load.errs)
	}
	if got := s.waitPID(t, -1, time.Second); got != pid {
		t.Fatalf("PID file names %d after a failed upgrade, want the old process %d", got, pid)
	}
	select {
	case <-srv.exited:
		t.Fatal("the old cutover exited after a failed upgrade")
	default:
	}
	// The store is back: a deploy is recorded and served.
	if err := os.WriteFile(s.configPath(), good, 0o644); err != nil {
		t.Fatal(err)
	}
	s.mustCLI(t, "deploy", "web", "--version", "v2")
	waitServing(t, s.appURL(), "v2", 5*time.Second)
}
