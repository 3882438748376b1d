package process_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/target"
	"github.com/cutover/cutover/internal/target/process"
)

// shWrapped runs the serve helper under sh -c, not exec'd, as many real
// replica commands do (`sh -c 'migrate && ./server'`): the server is the
// shell's child and writes its pid to $PIDFILE.
func shWrapped(t *testing.T) (script string, env map[string]string, pidFile string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pidFile = filepath.Join(t.TempDir(), "server.pid")
	script = `"$SELF" & echo $! >> "$PIDFILE"; wait; echo "server exited"`
	return script, map[string]string{"SELF": self, "PIDFILE": pidFile, helperEnv: helperServe}, pidFile
}

// serverPID waits until the wrapped server has written its pid.
func serverPID(t *testing.T, pidFile string) int {
	t.Helper()
	var pid int
	eventually(t, 10*time.Second, "the server's pid", func() bool {
		if pids := readPIDs(pidFile); len(pids) > 0 {
			pid = pids[len(pids)-1]
		}
		return pid != 0
	})
	t.Cleanup(func() { killIfAlive(pid) })
	return pid
}

// startShWrapped starts the sh-wrapped server as a replica and waits until
// it answers; it returns the instance, the server's pid and its pid file.
func startShWrapped(t *testing.T, opts process.Options) (target.Instance, int, string) {
	t.Helper()
	tgt, _ := newTarget(t, opts)
	script, env, pidFile := shWrapped(t)
	spec := shSpec(script)
	spec.Env = env
	inst := start(t, tgt, spec)
	server := serverPID(t, pidFile)
	eventually(t, 10*time.Second, "the server to answer", func() bool { return healthy(inst.Endpoints()[0].String()) })
	return inst, server, pidFile
}

// portFree reports whether nothing listens on addr any more.
func portFree(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func TestStopEndsAServerWrappedInShellAndFreesItsPort(t *testing.T) {
	t.Parallel()
	inst, server, _ := startShWrapped(t, process.Options{})
	ep := inst.Endpoints()[0]

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := inst.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if alive(server) || !portFree(ep.Host) {
		t.Fatalf("after Stop the server %d is alive (%v) or holds %s (free: %v)", server, alive(server), ep.Host, portFree(ep.Host))
	}
}

// Whichever of the shell and its server crashes, the replica is restarted
// on the same port with nothing of the first run left behind.
func TestCrashOfAShellWrappedReplicaLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	for _, victim := range []string{"shell", "server"} {
		t.Run(victim, func(t *testing.T) {
			t.Parallel()
			inst, server, pidFile := startShWrapped(t, process.Options{FirstBackoff: 20 * time.Millisecond})
			ep := inst.Endpoints()[0]
			shell := inst.Replicas()[0].PID
			pid := map[string]int{"shell": shell, "server": server}[victim]
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill -9 the %s: %v", victim, err)
			}
			eventually(t, 10*time.Second, "the first run to be gone", func() bool { return !alive(server) && !alive(shell) })
			eventually(t, 10*time.Second, "the restarted server", func() bool {
				pids := readPIDs(pidFile)
				return len(pids) == 2 && alive(pids[1])
			})
			t.Cleanup(func() { killIfAlive(readPIDs(pidFile)[1]) })
			eventually(t, 10*time.Second, "the restarted server to answer on "+ep.Host, func() bool { return healthy(ep.String()) })
		})
	}
}

// Pdeathsig reaches only the replica's main process, the shell: its server
// lives on, re-parented, holding its port. Reap, run by the next cutover,
// finds it through the recorded process group and kills it.
func TestReapKillsWhatAKilledCutoverLeftRunning(t *testing.T) {
	t.Parallel()
	groups := filepath.Join(t.TempDir(), "groups")
	script, env, pidFile := shWrapped(t)
	standInEnv := []string{"HELPER_GROUP_DIR=" + groups, "HELPER_SCRIPT=" + script}
	for k, v := range env {
		if k != helperEnv {
			standInEnv = append(standInEnv, k+"="+v)
		}
	}
	standIn, shell := startStandIn(t, standInEnv...)
	server := serverPID(t, pidFile)
	if _, err := os.Stat(filepath.Join(groups, strconv.Itoa(shell))); err != nil {
		t.Fatalf("the replica's process group is not recorded: %v", err)
	}

	if err := standIn.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 the stand-in: %v", err)
	}
	eventually(t, 5*time.Second, "the shell to die with its parent", func() bool { return !alive(shell) })
	if !alive(server) {
		t.Fatalf("the server under sh died with cutover already; this test no longer shows what Reap is for")
	}

	killed, err := process.Reap(groups, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || killed != 1 {
		t.Fatalf("Reap = %d, %v; want 1 group killed", killed, err)
	}
	if alive(server) {
		t.Fatalf("server %d still runs after Reap", server)
	}
	if left, _ := os.ReadDir(groups); len(left) != 0 {
		t.Errorf("records left after Reap: %v", left)
	}
}

// A recorded group id may since belong to another program: Reap must leave
// it alone unless a process in it carries the replica's marker.
func TestReapLeavesAGroupWithoutTheMarkerAlone(t *testing.T) {
	t.Parallel()
	groups := t.TempDir()
	other := exec.Command("sleep", "60")
	other.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = other.Process.Kill()
		_ = other.Wait()
	})
	record := filepath.Join(groups, strconv.Itoa(other.Process.Pid))
	if err := os.WriteFile(record, []byte("web/blue/1/0/0123456789ab"), 0o644); err != nil {
		t.Fatal(err)
	}

	killed, err := process.Reap(groups, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || killed != 0 {
		t.Fatalf("Reap = %d, %v; want nothing killed", killed, err)
	}
	if !alive(other.Process.Pid) {
		t.Fatal("Reap killed a process group that is not a replica's")
	}
	if _, err := os.Stat(record); err == nil {
		t.Error("the stale record was not removed")
	}
}
