package process

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/target"
)

const (
	firstBackoff = 100 * time.Millisecond
	maxBackoff   = 5 * time.Second
	// logTailLines is how many log lines a crash error quotes.
	logTailLines = 5
	// logTailBytes bounds how much of the log a crash error reads.
	logTailBytes = 8 << 10
	// groupPoll is how often a stopping replica checks whether the rest of
	// its process group has exited.
	groupPoll = 20 * time.Millisecond
)

// errStopping means a replica was not (re)started because its instance is
// stopping.
var errStopping = errors.New("instance is stopping")

// replica is one supervised child process on a fixed port. Start makes the
// first run; from then on the replica's supervise goroutine owns the process:
// it alone waits for it and restarts it.
type replica struct {
	inst    *instance
	index   int
	url     *url.URL
	logPath string
	args    []string
	env     []string
	dir     string
	log     *slog.Logger
	// done is closed when supervise returns: the replica's process group is
	// gone and it will not be started again.
	done chan struct{}

	// exits holds the times of exits within the restart window, oldest
	// first; only supervise uses it.
	exits []time.Time

	// mu guards the fields below, and makes "check stopping, then start"
	// atomic with respect to Stop's "mark stopping, then signal pid": either
	// Stop sees the new pid or start sees that the instance is stopping.
	mu       sync.Mutex
	pid      int // pid of the running process, which leads its own group; 0 when none
	restarts int
	lastExit string
}

// start starts the replica's process once, unless the instance is stopping.
// restart says whether this counts as a restart.
func (r *replica) start(restart bool) (*exec.Cmd, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inst.stopRequested() {
		return nil, errStopping
	}
	if restart {
		r.restarts++
	}
	logFile, err := os.OpenFile(r.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open replica log: %w; check that the log directory is writable", err)
	}
	// The child gets its own copy of the descriptor; ours is not needed
	// once it has started.
	defer logFile.Close()

	cmd := exec.Command(r.args[0], r.args[1:]...)
	cmd.Dir = r.dir
	cmd.Env = r.env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A group of its own lets Stop signal everything the replica
		// started, such as the children of `sh -c`.
		Setpgid: true,
		// If cutover dies without stopping its replicas (kill -9, crash),
		// the kernel kills them, so they do not keep their ports and run
		// unsupervised. Linux only. The signal fires when the OS thread
		// that started the child exits; the Go runtime only ends threads
		// whose goroutine exits while locked to its thread
		// (runtime.LockOSThread), which nothing here does. It reaches the
		// replica's main process only; its own children get SIGKILL from
		// the group kill in endGroup when that process exits while cutover
		// still runs.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %q: %w; check that the program exists and is executable, and that it is on PATH or given by its path (a relative path starts from the working directory)", r.args[0], err)
	}
	r.pid = cmd.Process.Pid
	r.log.Info("replica started", "pid", r.pid, "restart", restart, "log", r.logPath)
	return cmd, nil
}

// supervise owns the replica from its first start until it is stopped or
// has failed for good: it restarts the process whenever it exits while the
// instance is not stopping, on the same port, with exponential backoff.
func (r *replica) supervise(cmd *exec.Cmd) {
	defer close(r.done)
	var startErr error
	for {
		status := r.exitStatus(cmd, startErr)
		if r.inst.stopRequested() {
			r.log.Info("replica stopped", "exit", status)
			return
		}
		now := time.Now()
		r.exits = append(recentExits(r.exits, now.Add(-r.inst.window)), now)
		if len(r.exits) > r.inst.maxRestarts {
			err := r.crashError(status, now.Sub(r.exits[0]))
			r.log.Error("replica keeps exiting; not restarting it", "exits", len(r.exits), "exit", status)
			r.inst.fail(err)
			return
		}
		wait := backoff(len(r.exits))
		r.log.Warn("replica exited; restarting", "exit", status, "in", wait)
		timer := time.NewTimer(wait)
		select {
		case <-r.inst.stopping:
			timer.Stop()
			r.log.Info("replica stopped", "exit", status)
			return
		case <-timer.C:
		}
		cmd, startErr = r.start(true)
		if errors.Is(startErr, errStopping) {
			return
		}
	}
}

// exitStatus waits for cmd to exit and for the rest of its process group to
// end (or describes startErr if the start failed), records the outcome and
// returns it.
func (r *replica) exitStatus(cmd *exec.Cmd, startErr error) string {
	var status string
	if startErr != nil {
		status = "could not start: " + startErr.Error()
	} else {
		status = "exit status 0"
		if err := cmd.Wait(); err != nil {
			status = err.Error()
		}
		r.endGroup(cmd.Process.Pid)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pid = 0
	r.lastExit = status
	return status
}

// endGroup makes sure no process of the replica's group outlives its main
// process, so nothing is left holding the port or running unsupervised.
// After an unexpected exit the rest of the group is killed at once; while
// stopping, the rest has until the grace period ends to exit after SIGTERM.
// Stop also sends SIGKILL to the group when the grace period ends, but only
// while the replica still records its pid, which this function's return may
// already have cleared; hence the kill here as well.
func (r *replica) endGroup(pgid int) {
	if !r.inst.stopRequested() {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return
	}
	tick := time.NewTicker(groupPoll)
	defer tick.Stop()
	for syscall.Kill(-pgid, 0) == nil {
		select {
		case <-r.inst.kill:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return
		case <-tick.C:
		}
	}
}

// signal sends sig to the replica's process group, if it has a process.
func (r *replica) signal(sig syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pid != 0 {
		_ = syscall.Kill(-r.pid, sig)
	}
}

func (r *replica) status() target.Replica {
	r.mu.Lock()
	defer r.mu.Unlock()
	return target.Replica{
		Index:    r.index,
		URL:      r.url.String(),
		PID:      r.pid,
		Running:  r.pid != 0,
		Restarts: r.restarts,
		LastExit: r.lastExit,
		LogFile:  r.logPath,
	}
}

// crashError says which replica gave up, how often it exited, and what its
// log said last, which is usually why.
func (r *replica) crashError(status string, span time.Duration) error {
	return fmt.Errorf("replica %d of %s exited %d times in %s, last: %s; %s",
		r.index, r.inst.name, len(r.exits), span.Round(10*time.Millisecond), status, logTail(r.logPath))
}

// recentExits drops the exits before since, reusing exits' storage.
func recentExits(exits []time.Time, since time.Time) []time.Time {
	i := 0
	for i < len(exits) && exits[i].Before(since) {
		i++
	}
	return append(exits[:0], exits[i:]...)
}

// backoff is the wait before the restart that follows the n-th recent exit:
// 100ms, doubling, at most 5s.
func backoff(n int) time.Duration {
	d := firstBackoff
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// logTail describes the last lines of the log at path for an error message.
func logTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("cannot read its log: %v", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("cannot read its log: %v", err)
	}
	offset := max(info.Size()-logTailBytes, 0)
	buf, err := io.ReadAll(io.NewSectionReader(f, offset, info.Size()-offset))
	if err != nil {
		return fmt.Sprintf("cannot read its log %s: %v", path, err)
	}
	if offset > 0 {
		// Drop the line the read started in the middle of.
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		}
	}
	text := strings.TrimRight(string(buf), "\n")
	if strings.TrimSpace(text) == "" {
		return fmt.Sprintf("its log %s is empty", path)
	}
	lines := strings.Split(text, "\n")
	lines = lines[max(len(lines)-logTailLines, 0):]
	return fmt.Sprintf("last log lines (%s):\n  %s", path, strings.Join(lines, "\n  "))
}
