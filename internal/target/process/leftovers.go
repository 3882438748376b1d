package process

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/procfs"
)

// MarkerEnv is the environment variable every replica gets (and passes on
// to whatever it starts): app/slot/revision/index/nonce. Reap kills a
// recorded process group only if a process in it still carries the recorded
// value, so a group id the kernel has since given to something else is left
// alone.
const MarkerEnv = "CUTOVER_REPLICA"

// reapWait bounds how long Reap waits for a killed group to be gone.
const reapWait = 5 * time.Second

// groupFiles records the process groups of running replicas in a
// directory, one file per group, named after the group id and holding the
// replica's marker. The zero value (no directory) records nothing.
type groupFiles struct {
	dir string
}

// record notes that the group pgid runs the replica marked marker.
func (g groupFiles) record(pgid int, marker string) error {
	if g.dir == "" {
		return nil
	}
	if err := os.MkdirAll(g.dir, 0o755); err != nil {
		return fmt.Errorf("record process group %d: %w", pgid, err)
	}
	if err := os.WriteFile(filepath.Join(g.dir, strconv.Itoa(pgid)), []byte(marker), 0o644); err != nil {
		return fmt.Errorf("record process group %d: %w", pgid, err)
	}
	return nil
}

// forget drops the record of a group that has ended.
func (g groupFiles) forget(pgid int) error {
	if g.dir == "" {
		return nil
	}
	err := os.Remove(filepath.Join(g.dir, strconv.Itoa(pgid)))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("forget process group %d: %w", pgid, err)
	}
	return nil
}

// newMarker returns the marker of one replica of a revision: unique, so a
// recorded group is recognised by it alone.
func newMarker(app, slot string, revision, index int) string {
	nonce := make([]byte, 6)
	_, _ = rand.Read(nonce) // crypto/rand.Read does not fail on Linux
	return fmt.Sprintf("%s/%s/%d/%d/%s", app, slot, revision, index, hex.EncodeToString(nonce))
}

// Reap kills what a cutover that died without stopping its replicas (kill
// -9, a crash, a power cut of the process only) left running: every process
// group recorded in dir (Options.GroupDir) in which a process still carries
// the recorded marker gets SIGKILL, and Reap waits (boundedly) until the
// group is gone, so its ports are free. The kernel's parent-death signal
// reaches a replica's main process only; this is what stops the rest, such
// as the real server under `sh -c`. Every record is removed. Call it before
// starting replicas with the same GroupDir, and only from the process that
// owns dir (holds the data dir's lock): the replicas of a running cutover
// are recorded there too. It returns how many groups it killed.
func Reap(dir string, log *slog.Logger) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the replicas' process groups in %s: %w", dir, err)
	}
	killed := 0
	var errs []error
	for _, e := range entries {
		pgid, err := strconv.Atoi(e.Name())
		path := filepath.Join(dir, e.Name())
		if err != nil || pgid <= 1 {
			continue // not ours
		}
		marker, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", path, err))
			continue
		}
		pids := groupMembers(pgid, strings.TrimSpace(string(marker)))
		if len(pids) > 0 {
			log.Warn("killing what a previous cutover left running", "pgid", pgid, "replica", string(marker), "pids", pids)
			if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("kill process group %d (replica %s): %w; stop it by hand", pgid, marker, err))
				continue
			}
			if !waitGroupGone(pgid, reapWait) {
				errs = append(errs, fmt.Errorf("process group %d (replica %s) still runs %s after SIGKILL", pgid, marker, reapWait))
				continue
			}
			killed++
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", path, err))
		}
	}
	return killed, errors.Join(errs...)
}

// groupMembers returns the processes of group pgid, provided one of them
// carries MarkerEnv=marker; nil otherwise.
func groupMembers(pgid int, marker string) []int {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	marked := false
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || processGroup(pid) != pgid {
			continue
		}
		pids = append(pids, pid)
		marked = marked || hasMarker(pid, marker)
	}
	if !marked {
		return nil
	}
	return pids
}

// hasMarker reports whether pid's environment holds MarkerEnv=marker.
func hasMarker(pid int, marker string) bool {
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return false
	}
	want := MarkerEnv + "=" + marker
	for kv := range bytes.SplitSeq(env, []byte{0}) {
		if string(kv) == want {
			return true
		}
	}
	return false
}

// processGroup reads pid's process group from /proc; 0 if it cannot, or
// if pid is a zombie (it has exited and only waits to be reaped).
func processGroup(pid int) int {
	fields := procfs.Stat(pid)
	if len(fields) < 3 || fields[0] == "Z" {
		return 0
	}
	pgrp, _ := strconv.Atoi(fields[2])
	return pgrp
}

// groupLive reports whether a process of group pgid still runs; zombies,
// which a parent that does not reap them (a bare container's PID 1) may
// leave, do not count.
func groupLive(pgid int) bool {
	if syscall.Kill(-pgid, 0) != nil {
		return false
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, p := range procs {
		if pid, err := strconv.Atoi(p.Name()); err == nil && processGroup(pid) == pgid {
			return true
		}
	}
	return false
}

// waitGroupGone polls until no process of group pgid runs, for at most
// timeout.
func waitGroupGone(pgid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for groupLive(pgid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(groupPoll)
	}
	return true
}
