package nginx

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/procfs"
)

// workerTitle is how nginx names a worker that accepts connections; one
// told to quit after a reload names itself "... is shutting down" and
// accepts no more.
const workerTitle = "nginx: worker process"

// workers returns the pids of the workers that accept connections for the
// nginx master whose pid is in pidFile, or nil when that cannot be told
// (no pid file, no /proc): then only the verify requests show the reload
// took.
func workers(pidFile string) map[int]bool {
	if pidFile == "" {
		return nil
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return nil
	}
	master, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	found := map[int]bool{}
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || parent(pid) != master {
			continue
		}
		title, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		title, _, _ = bytes.Cut(title, []byte{0})
		if string(bytes.TrimSpace(title)) == workerTitle {
			found[pid] = true
		}
	}
	return found
}

// parent returns pid's parent pid, or 0.
func parent(pid int) int {
	fields := procfs.Stat(pid)
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// awaitNewWorkers waits until none of the workers old accepts
// connections any more and new ones do: nginx's master read the new file
// and retired the workers that had the previous one.
func awaitNewWorkers(ctx context.Context, pidFile string, old map[int]bool) error {
	for {
		now := workers(pidFile)
		replaced := len(now) > 0
		for pid := range now {
			replaced = replaced && !old[pid]
		}
		if replaced {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nginx's workers %v still accept connections: its master did not take the new config (see nginx's error log)", keys(old))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func keys(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
