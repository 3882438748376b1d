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
	env     []string // MarkerEnv=marker included
	marker  string
	dir     string
	log     *slog.Logger
	// done is closed when supervise returns: the replica's process group is
	// gone and it will not be started again.
	done chan struct{}
	// retired is closed when Scale removes this replica alone; it then
	// stops as every replica does when its instance stops, with kill
	// closed when its own grace period ends.
	retired chan struct{}
	kill    chan struct{}

	// mu guards the fields below, and makes "check stopping, then start"
	// atomic with respect to Stop's "mark stopping, then signal pid": either
	// Stop sees the new pid or start sees that the instance is stopping.
	mu         sync.Mutex
	pid        int // pid of the running process, which leads its own group; 0 when none
	restarts   int
	lastExit   string
	lastExitAt time.Time
	startedAt  time.Time // of the last run, or of the last attempt to start one
	// exits counts the exits in a row: since the last run that lasted
	// BackoffReset; the first of them was at firstExit.
	exits     int
	firstExit time.Time
	nextStart time.Time // when the restart in backoff is due; zero otherwise
}

// start starts the replica's process once, unless the instance is stopping.
// restart says whether this counts as a restart.
func (r *replica) start(restart bool) (*exec.Cmd, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopRequested() {
		return nil, errStopping
	}
	if restart {
		r.restarts++
	}
	r.startedAt, r.nextStart = time.Now(), time.Time{}
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
	cmd.SysProcAttr = replicaProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %q: %w; check that the program exists and is executable, and that it is on PATH or given by its path (a relative path starts from the working directory)", r.args[0], err)
	}
	r.pid = cmd.Process.Pid
	r.log.Info("replica started", "pid", r.pid, "restart", restart, "log", r.logPath)
	if err := r.inst.groups.record(r.pid, r.marker); err != nil {
		// The replica runs all the same; only a cutover killed before
		// stopping it could not find what it leaves.
		r.log.Error("replica's process group not recorded; check that the data dir is writable", "err", err)
	}
	return cmd, nil
}

// supervise owns the replica from its first start until it is stopped: it
// restarts the process whenever it exits while the instance is not
// stopping, on the same port, after a backoff that doubles with each exit
// in a row. It never gives up: a replica that serves must come back once
// the cause of its crashes is gone.
func (r *replica) supervise(cmd *exec.Cmd) {
	defer close(r.done)
	var startErr error
	for {
		status := r.exitStatus(cmd, startErr)
		if r.stopRequested() {
			r.log.Info("replica stopped", "exit", status)
			return
		}
		wait, exits := r.scheduleRestart(time.Now())
		r.log.Warn("replica exited; restarting", "exit", status, "in", wait, "exitsInARow", exits)
		if r.inst.onExit != nil {
			r.inst.onExit(r.status())
		}
		timer := time.NewTimer(wait)
		select {
		case <-r.inst.stopping:
			timer.Stop()
			r.log.Info("replica stopped", "exit", status)
			return
		case <-r.retired:
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

// scheduleRestart counts an exit at now and sets when the replica starts
// again; it returns the wait and the number of exits in a row. A run that
// lasted BackoffReset ends the row, so its exit waits FirstBackoff again.
func (r *replica) scheduleRestart(now time.Time) (time.Duration, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.exits == 0 || now.Sub(r.startedAt) >= r.inst.backoff.reset {
		r.exits, r.firstExit = 0, now
	}
	r.exits++
	wait := r.inst.backoff.wait(r.exits)
	r.nextStart = now.Add(wait)
	return wait, r.exits
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
		if err := r.inst.groups.forget(cmd.Process.Pid); err != nil {
			r.log.Error("replica's process group record not removed", "err", err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pid = 0
	r.lastExit, r.lastExitAt = status, time.Now()
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
	if !r.stopRequested() {
		// Wait too, so that a restart finds the port free.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		waitGroupGone(pgid, reapWait)
		return
	}
	tick := time.NewTicker(groupPoll)
	defer tick.Stop()
	for syscall.Kill(-pgid, 0) == nil {
		select {
		case <-r.inst.kill:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return
		case <-r.kill:
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
	state := target.ReplicaCrashLoopBackOff
	switch {
	case r.pid != 0:
		state = target.ReplicaRunning
	case r.stopRequested():
		state = target.ReplicaStopped
	}
	return target.Replica{
		Index:         r.index,
		URL:           r.url.String(),
		PID:           r.pid,
		State:         state,
		Running:       r.pid != 0,
		Restarts:      r.restarts,
		LastExit:      r.lastExit,
		LastExitAt:    r.lastExitAt,
		NextRestartAt: r.nextStart,
		LogFile:       r.logPath,
	}
}

// crashLoop returns an error saying how often the replica exited in a row
// and what its log said last, which is usually why, while it has exited
// more than MaxRestarts times in a row and not run for BackoffReset since.
func (r *replica) crashLoop(now time.Time) error {
	r.mu.Lock()
	looping := r.exits > r.inst.maxRestarts && !r.stopRequested() &&
		(r.pid == 0 || now.Sub(r.startedAt) < r.inst.backoff.reset)
	exits, span, last := r.exits, r.lastExitAt.Sub(r.firstExit), r.lastExit
	r.mu.Unlock()
	if !looping {
		return nil
	}
	// The log is read without the lock: starts and status need not wait.
	return fmt.Errorf("replica %d of %s exited %d times in %s, last: %s; %s",
		r.index, r.inst.name, exits, span.Round(10*time.Millisecond), last, logTail(r.logPath))
}

// backoff is the restart policy: the wait after the n-th exit in a row is
// first, doubled n-1 times, at most max; a run that lasts reset starts a
// new row.
type backoff struct {
	first, max, reset time.Duration
}

func (b backoff) wait(n int) time.Duration {
	d := b.first
	for i := 1; i < n && d < b.max; i++ {
		d *= 2
	}
	return min(d, b.max)
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
