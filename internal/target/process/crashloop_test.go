package process_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/target"
	"github.com/cutover/cutover/internal/target/process"
)

// exitRecorder collects what OnReplicaExit reports.
type exitRecorder struct {
	mu    sync.Mutex
	exits []target.Replica
}

func (e *exitRecorder) record(r target.Replica) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.exits = append(e.exits, r)
}

func (e *exitRecorder) get() []target.Replica {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]target.Replica(nil), e.exits...)
}

// backoffs are the waits the reported exits were given before their restart.
func backoffs(exits []target.Replica) []time.Duration {
	out := make([]time.Duration, len(exits))
	for i, r := range exits {
		out[i] = r.NextRestartAt.Sub(r.LastExitAt).Round(10 * time.Millisecond)
	}
	return out
}

// A dependency that is down for a while makes the replica crash until it is
// back; the replica must serve again then, however often it crashed.
func TestCrashLoopingReplicaIsRestartedUntilItRunsAgain(t *testing.T) {
	t.Parallel()
	tgt, _ := newTarget(t, process.Options{MaxRestarts: 1, FirstBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	okFile := filepath.Join(t.TempDir(), "database-is-up")
	spec := shSpec(`[ -f "$OKFILE" ] || { echo "cannot reach the database" >&2; exit 3; }; echo up; exec sleep 60`)
	spec.Env = map[string]string{"OKFILE": okFile}
	inst := start(t, tgt, spec)

	eventually(t, 10*time.Second, "the crash loop to be reported", func() bool { return inst.Err() != nil })
	eventually(t, 10*time.Second, "restarts past MaxRestarts", func() bool { return inst.Replicas()[0].Restarts >= 4 })
	if err := os.WriteFile(okFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the replica to run again", func() bool {
		r := inst.Replicas()[0]
		return r.Running && r.State == target.ReplicaRunning && logContains(r.LogFile, "up")
	})
}

func TestCrashLoopBackOffDoublesUpToMaxBackoffAndIsReported(t *testing.T) {
	t.Parallel()
	tgt, _ := newTarget(t, process.Options{MaxRestarts: 2, FirstBackoff: 40 * time.Millisecond, MaxBackoff: 160 * time.Millisecond})
	var rec exitRecorder
	spec := shSpec(`echo starting; echo "fatal: DATABASE_URL is not set" >&2; exit 3`)
	spec.OnReplicaExit = rec.record
	inst := start(t, tgt, spec)

	eventually(t, 10*time.Second, "6 exits", func() bool { return len(rec.get()) >= 6 })
	exits := rec.get()[:6]
	want := []time.Duration{40 * time.Millisecond, 80 * time.Millisecond, 160 * time.Millisecond, 160 * time.Millisecond, 160 * time.Millisecond, 160 * time.Millisecond}
	for i, got := range backoffs(exits) {
		if got != want[i] {
			t.Errorf("backoff after exit %d = %s, want %s (all: %v)", i+1, got, want[i], backoffs(exits))
		}
	}
	for i, r := range exits {
		if r.State != target.ReplicaCrashLoopBackOff || r.Running || r.Restarts != i || r.LastExit != "exit status 3" || r.LastExitAt.IsZero() {
			t.Errorf("exit %d reported as %+v, want CrashLoopBackOff after %d restarts with exit status 3", i+1, r, i)
		}
	}
	msg := inst.Err().Error()
	for _, want := range []string{"replica 0 of web v7 (slot blue) exited ", "last: exit status 3", "starting", "fatal: DATABASE_URL is not set", "blue-r7-0.log"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Err %q does not contain %q", msg, want)
		}
	}
}

func TestBackoffStartsOverAfterAReplicaRanForBackoffReset(t *testing.T) {
	t.Parallel()
	tgt, _ := newTarget(t, process.Options{MaxRestarts: 2, FirstBackoff: 40 * time.Millisecond, MaxBackoff: time.Minute, BackoffReset: 500 * time.Millisecond})
	var rec exitRecorder
	// The fourth run lasts well past BackoffReset, the others exit at once.
	spec := shSpec(`n=$(cat "$COUNT" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$COUNT"; [ $n -eq 4 ] && sleep 3; exit 1`)
	spec.Env = map[string]string{"COUNT": filepath.Join(t.TempDir(), "runs")}
	spec.OnReplicaExit = rec.record
	inst := start(t, tgt, spec)

	eventually(t, 10*time.Second, "the crash loop to be reported", func() bool { return inst.Err() != nil })
	eventually(t, 10*time.Second, "Err to clear while the fourth run lasts", func() bool { return inst.Err() == nil })
	eventually(t, 15*time.Second, "5 exits", func() bool { return len(rec.get()) >= 5 })
	got := backoffs(rec.get()[:5])
	want := []time.Duration{40 * time.Millisecond, 80 * time.Millisecond, 160 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backoffs %v, want %v", got, want)
		}
	}
}
