package process_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/target"
	"github.com/cutover/cutover/internal/target/process"
)

func TestReplicasGetTheirOwnPortViaEnvAndArguments(t *testing.T) {
	t.Parallel()
	tgt, opts := newTarget(t, process.Options{})
	spec := helperSpec(t, 3, "-addr=127.0.0.1:${PORT}", "-note=port ${PORT}")
	spec.Env["GREETING"] = "hello"
	spec.Env["PORT"] = "1" // PORT is the target's to set
	inst := start(t, tgt, spec)

	eps := inst.Endpoints()
	if len(eps) != 3 {
		t.Fatalf("got %d endpoints, want 3", len(eps))
	}
	ports := map[string]bool{}
	for i, ep := range eps {
		if ep.Scheme != "http" || ep.Hostname() != "127.0.0.1" {
			t.Fatalf("endpoint %d = %s, want http://127.0.0.1:<port>", i, ep)
		}
		port := ep.Port()
		if ports[port] {
			t.Fatalf("endpoint %d reuses port %s: %v", i, port, eps)
		}
		ports[port] = true

		var info helperInfo
		eventually(t, 10*time.Second, "replica "+strconv.Itoa(i)+" to answer /info", func() bool {
			code, body, err := get(ep.String() + "/info")
			return err == nil && code == 200 && json.Unmarshal(body, &info) == nil
		})
		if info.Port != port {
			t.Errorf("replica %d: PORT=%q, want %s", i, info.Port, port)
		}
		wantArgs := []string{"-addr=127.0.0.1:" + port, "-note=port " + port}
		if !slices.Equal(info.Args, wantArgs) {
			t.Errorf("replica %d: args %q, want %q", i, info.Args, wantArgs)
		}
		if info.Greeting != "hello" {
			t.Errorf("replica %d: GREETING=%q, want the spec's hello", i, info.Greeting)
		}
		if info.Path != os.Getenv("PATH") {
			t.Errorf("replica %d: PATH=%q, want cutover's own %q", i, info.Path, os.Getenv("PATH"))
		}
	}

	for i, r := range inst.Replicas() {
		wantLog := filepath.Join(opts.LogDir, "web", "green-r2-"+strconv.Itoa(i)+".log")
		if r.Index != i || r.URL != eps[i].String() || r.PID == 0 || !r.Running || r.Restarts != 0 || r.LogFile != wantLog {
			t.Errorf("Replicas()[%d] = %+v, want index %d, url %s, a pid, running, no restarts, log %s", i, r, i, eps[i], wantLog)
		}
	}
	if err := inst.Err(); err != nil {
		t.Fatalf("Err = %v for healthy replicas, want nil", err)
	}
}

func TestReplicaOutputIsAppendedToItsLogFileAcrossRestarts(t *testing.T) {
	t.Parallel()
	tgt, opts := newTarget(t, process.Options{FirstBackoff: 20 * time.Millisecond})
	spec := shSpec(`echo "to stdout"; echo "to stderr" >&2; [ -f "$MARK" ] && exec sleep 60; touch "$MARK"; exit 1`)
	spec.Env = map[string]string{"MARK": filepath.Join(t.TempDir(), "ran")}
	inst := start(t, tgt, spec)

	eventually(t, 10*time.Second, "the second run", func() bool {
		r := inst.Replicas()[0]
		return r.Restarts == 1 && logContains(r.LogFile, "to stderr\nto stdout\nto stderr")
	})
	logPath := filepath.Join(opts.LogDir, "web", "blue-r7-0.log")
	if got := inst.Replicas()[0].LogFile; got != logPath {
		t.Fatalf("LogFile = %q, want %q", got, logPath)
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatalf("read replica log: %v", err)
	}
	if n := strings.Count(string(data), "to stdout\n"); n != 2 {
		t.Errorf("log has %d stdout lines, want 2 (one per run):\n%s", n, data)
	}
	if n := strings.Count(string(data), "to stderr\n"); n != 2 {
		t.Errorf("log has %d stderr lines, want 2 (one per run):\n%s", n, data)
	}
}

func TestKilledReplicaIsRestartedOnTheSamePort(t *testing.T) {
	t.Parallel()
	tgt, _ := newTarget(t, process.Options{})
	inst := start(t, tgt, helperSpec(t, 1))
	url := inst.Endpoints()[0].String()
	eventually(t, 10*time.Second, "the replica to answer", func() bool { return healthy(url) })
	first := inst.Replicas()[0].PID

	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatalf("kill replica: %v", err)
	}
	eventually(t, 10*time.Second, "a restarted process", func() bool {
		r := inst.Replicas()[0]
		return r.Running && r.PID != first && r.Restarts == 1
	})
	eventually(t, 10*time.Second, "the restarted replica to answer on "+url, func() bool { return healthy(url) })

	r := inst.Replicas()[0]
	if r.URL != url || inst.Endpoints()[0].String() != url {
		t.Errorf("after restart URL = %s, endpoint %s, want both %s", r.URL, inst.Endpoints()[0], url)
	}
	if r.LastExit != "signal: killed" {
		t.Errorf("LastExit = %q, want %q", r.LastExit, "signal: killed")
	}
	if err := inst.Err(); err != nil {
		t.Errorf("Err = %v after one restart, want nil", err)
	}
}

func TestStartFailsWhenTheExecutableCannotRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notExecutable := filepath.Join(dir, "app.sh")
	if err := os.WriteFile(notExecutable, []byte("#!/bin/sh\necho hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		command string
	}{
		{"not on PATH", "cutover-test-no-such-program"},
		{"no such path", filepath.Join(dir, "missing", "app")},
		{"not executable", notExecutable},
		{"a directory", dir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tgt, opts := newTarget(t, process.Options{})
			inst, err := tgt.Start(context.Background(), target.Spec{
				App: "web", Slot: "green", Revision: 1, Command: []string{tt.command, "--port", "${PORT}"}, Replicas: 2,
			})
			if err == nil {
				_ = inst.Stop(context.Background())
				t.Fatalf("Start(%q) succeeded, want an error", tt.command)
			}
			for _, want := range []string{tt.command, "check that the program exists"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if _, statErr := os.Stat(filepath.Join(opts.LogDir, "web", "green-r1-1.log")); statErr == nil {
				t.Errorf("a second replica was started after the first failed")
			}
		})
	}
}

func TestStartNeedsALogDirAndACommand(t *testing.T) {
	t.Parallel()
	if _, err := process.New(process.Options{}).Start(context.Background(), shSpec("exit 0")); err == nil || !strings.Contains(err.Error(), "LogDir") {
		t.Errorf("Start without LogDir: err = %v, want one naming LogDir", err)
	}
	tgt, _ := newTarget(t, process.Options{})
	if _, err := tgt.Start(context.Background(), target.Spec{App: "web"}); err == nil || !strings.Contains(err.Error(), "no command") {
		t.Errorf("Start without command: err = %v, want one saying there is no command", err)
	}
}

func TestStopSendsSIGTERMAndWaitsForAGracefulExit(t *testing.T) {
	t.Parallel()
	tgt, _ := newTarget(t, process.Options{StopGrace: 10 * time.Second})
	inst := start(t, tgt, helperSpec(t, 2))
	for _, ep := range inst.Endpoints() {
		eventually(t, 10*time.Second, "replicas to answer", func() bool { return healthy(ep.String()) })
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := inst.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, r := range inst.Replicas() {
		if r.Running || r.PID != 0 || r.LastExit != "exit status 0" {
			t.Errorf("after Stop: %+v, want not running and a clean exit (not killed)", r)
		}
		if !logContains(r.LogFile, "helper got SIGTERM") {
			t.Errorf("replica %d's log does not show SIGTERM", r.Index)
		}
		if r.Restarts != 0 {
			t.Errorf("replica %d was restarted %d times while stopping", r.Index, r.Restarts)
		}
	}
}

func TestStopKillsAReplicaThatIgnoresSIGTERMAfterTheGracePeriod(t *testing.T) {
	t.Parallel()
	tgt, _ := newTarget(t, process.Options{StopGrace: 300 * time.Millisecond})
	inst := start(t, tgt, shSpec(`trap "" TERM; echo ready; sleep 60`))
	r := inst.Replicas()[0]
	t.Cleanup(func() { killIfAlive(r.PID) })
	eventually(t, 10*time.Second, "the trap to be set", func() bool { return logContains(r.LogFile, "ready") })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := inst.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if got := inst.Replicas()[0]; got.Running || got.LastExit != "signal: killed" {
		t.Fatalf("after Stop: %+v, want killed", got)
	}
	if alive(r.PID) {
		t.Fatalf("process %d still runs after Stop", r.PID)
	}
}

func TestStopEndsTheWholeProcessGroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script string
	}{
		{"grandchild that exits on SIGTERM", `sleep 60 & echo $! > "$PIDFILE"; wait`},
		{"grandchild that ignores SIGTERM", `(trap "" TERM; exec sleep 60) & echo $! > "$PIDFILE"; wait`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tgt, _ := newTarget(t, process.Options{StopGrace: 300 * time.Millisecond})
			pidFile := filepath.Join(t.TempDir(), "grandchild.pid")
			spec := shSpec(tt.script)
			spec.Env = map[string]string{"PIDFILE": pidFile}
			inst := start(t, tgt, spec)

			var grandchild int
			eventually(t, 10*time.Second, "the grandchild's pid", func() bool {
				pids := readPIDs(pidFile)
				if len(pids) == 1 {
					grandchild = pids[0]
				}
				return grandchild != 0
			})
			t.Cleanup(func() { killIfAlive(grandchild) })

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := inst.Stop(ctx); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			eventually(t, 5*time.Second, "grandchild "+strconv.Itoa(grandchild)+" to be gone", func() bool { return !alive(grandchild) })
		})
	}
}

func TestReplicaExitKillsWhatItLeftBehind(t *testing.T) {
	t.Parallel()
	tgt, _ := newTarget(t, process.Options{MaxRestarts: 100, FirstBackoff: 20 * time.Millisecond})
	pidFile := filepath.Join(t.TempDir(), "leftover.pid")
	spec := shSpec(`sleep 60 & echo $! >> "$PIDFILE"; exit 1`)
	spec.Env = map[string]string{"PIDFILE": pidFile}
	inst := start(t, tgt, spec)

	var leftover int
	eventually(t, 10*time.Second, "a restart", func() bool {
		if pids := readPIDs(pidFile); len(pids) > 0 {
			leftover = pids[0]
		}
		return leftover != 0 && inst.Replicas()[0].Restarts > 0
	})
	t.Cleanup(func() { killIfAlive(leftover) })
	eventually(t, 5*time.Second, "the first run's child to be killed", func() bool { return !alive(leftover) })
}

func TestStopIsIdempotentAndSafeToCallConcurrently(t *testing.T) {
	t.Parallel()
	tgt, _ := newTarget(t, process.Options{StopGrace: 300 * time.Millisecond})
	inst := start(t, tgt, helperSpec(t, 2))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = inst.Stop(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Stop %d: %v", i, err)
		}
	}
	if err := inst.Stop(ctx); err != nil {
		t.Errorf("Stop after Stop: %v", err)
	}
	for _, r := range inst.Replicas() {
		if r.Running {
			t.Errorf("replica %d still running after Stop: %+v", r.Index, r)
		}
	}
}

func TestStopDuringACrashLoopEndsRestarts(t *testing.T) {
	t.Parallel()
	tgt, _ := newTarget(t, process.Options{MaxRestarts: 1000, FirstBackoff: 20 * time.Millisecond, StopGrace: 300 * time.Millisecond})
	inst := start(t, tgt, func() target.Spec { s := shSpec("exit 1"); s.Replicas = 3; return s }())
	eventually(t, 10*time.Second, "restarts", func() bool { return inst.Replicas()[0].Restarts >= 2 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := inst.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	before := inst.Replicas()
	time.Sleep(300 * time.Millisecond) // longer than the next backoff would be
	after := inst.Replicas()
	for i := range before {
		if after[i].Running || after[i].Restarts != before[i].Restarts {
			t.Errorf("replica %d changed after Stop: %+v then %+v", i, before[i], after[i])
		}
	}
	if err := inst.Err(); err != nil {
		t.Errorf("Err = %v; a stopped instance has not failed", err)
	}
}

func TestReplicasDieWhenCutoverIsKilled(t *testing.T) {
	t.Parallel()
	standIn, replica := startStandIn(t)
	if err := standIn.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 the stand-in: %v", err)
	}
	eventually(t, 5*time.Second, "the orphaned replica to die", func() bool { return !alive(replica) })
}
