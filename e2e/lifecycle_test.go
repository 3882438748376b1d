package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/target"
)

// replicas returns the replicas on slot.
func replicas(st controller.AppStatus, slot string) []target.Replica {
	for _, sl := range st.Slots {
		if sl.Name == slot {
			return sl.Replicas
		}
	}
	return nil
}

// serveOneReplica starts cutover with one replica of v1 and the
// scaleDownDelay given, and waits until v1 serves.
func serveOneReplica(t *testing.T, scaleDownDelay string) (*setup, *server) {
	t.Helper()
	s := newSetup(t)
	s.Replicas = 1
	s.ScaleDownDelay = scaleDownDelay
	s.writeConfig(t)
	srv := s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	return s, srv
}

// deployNeedingDatabase deploys v2 with a command that exits 3 at start
// while the returned marker file exists (a database that is down) and
// waits until v2 serves.
func (s *setup) deployNeedingDatabase(t *testing.T) (down string) {
	t.Helper()
	down = filepath.Join(s.Dir, "database-down")
	s.mustCLI(t, "deploy", "web", "--version", "v2", "--command",
		fmt.Sprintf(`/bin/sh -c '[ -f %s ] && { echo "database down" >&2; exit 3; }; exec %s sample-app --version v2'`, down, cutoverBin))
	waitServing(t, s.appURL(), "v2", 20*time.Second)
	return down
}

// crashLooping is a status condition: the active slot's only replica is in
// CrashLoopBackOff after at least restarts restarts, its last exit the
// database's.
func crashLooping(restarts int) func(controller.AppStatus) bool {
	return func(st controller.AppStatus) bool {
		r := replicas(st, st.ActiveSlot)
		return len(r) == 1 && r[0].Restarts >= restarts && r[0].State == "CrashLoopBackOff" && r[0].LastExit == "exit status 3"
	}
}

// A replica of the slot that serves crashes while a dependency is down (a
// marker file here): cutover restarts it with backoff, shows
// CrashLoopBackOff in status and history, and the app serves again once the
// dependency is back, however often it crashed meanwhile.
func TestServingReplicaInCrashLoopIsRestartedUntilItServesAgain(t *testing.T) {
	s, _ := serveOneReplica(t, "1s") // nothing warm to fall back on: the crash loop alone decides

	down := s.deployNeedingDatabase(t)
	s.waitRollout(t, "the old slot to be stopped", 30*time.Second, func(st controller.AppStatus) bool { return len(replicas(st, "blue")) == 0 })

	if err := os.WriteFile(down, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st := s.status(t)
	r := replicas(st, st.ActiveSlot)
	if len(r) != 1 || r[0].PID == 0 {
		t.Fatalf("active slot's replicas: %+v", r)
	}
	if err := syscall.Kill(r[0].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Three restarts that crash again: where cutover used to give up.
	s.waitRollout(t, "3 restarts in CrashLoopBackOff", 60*time.Second, crashLooping(3))
	text := s.mustCLI(t, "status", "web").stdout
	for _, want := range []string{"replica 0 CrashLoopBackOff (restarted ", "last exit: exit status 3"} {
		if !strings.Contains(text, want) {
			t.Errorf("status does not show %q:\n%s", want, text)
		}
	}
	history := s.mustCLI(t, "history", "web").stdout
	if n := strings.Count(history, "CrashLoopBackOff"); n < 3 {
		t.Errorf("history has %d CrashLoopBackOff events, want one per exit (at least 3):\n%s", n, history)
	}

	if err := os.Remove(down); err != nil {
		t.Fatal(err)
	}
	waitServing(t, s.appURL(), "v2", 90*time.Second)
	if r := replicas(s.status(t), st.ActiveSlot); len(r) != 1 || r[0].State != "Running" || r[0].Restarts < 4 {
		t.Fatalf("after recovery: %+v, want running after at least 4 restarts", r)
	}
}

// childOf returns a child process of pid, from /proc; 0 if it has none.
func childOf(pid int) int {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		child, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			return child
		}
	}
	return 0
}

// A replica command that wraps the server in a shell leaves the server the
// shell's child: kill -9 of cutover takes the shell with it (parent-death
// signal) but not the server. The next cutover must stop it before it
// starts replicas again.
func TestKill9LeavesNoShellWrappedServerBehindAfterRestart(t *testing.T) {
	s, srv := serveOneReplica(t, "5m")
	s.mustCLI(t, "deploy", "web", "--version", "v2", "--command",
		fmt.Sprintf(`/bin/sh -c '%s sample-app --version v2; echo "server exited"'`, cutoverBin))
	waitServing(t, s.appURL(), "v2", 20*time.Second)

	st := s.status(t)
	r := replicas(st, st.ActiveSlot)
	if len(r) != 1 || r[0].PID == 0 {
		t.Fatalf("active slot's replicas: %+v", r)
	}
	shell, oldURL := r[0].PID, r[0].URL
	server := childOf(shell)
	if server == 0 {
		t.Fatalf("the shell %d has no child server", shell)
	}
	t.Cleanup(func() {
		if alive(server) {
			_ = syscall.Kill(server, syscall.SIGKILL)
		}
	})

	srv.kill9(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v2", 30*time.Second)
	if alive(server) {
		t.Fatalf("the server %d the killed cutover started under sh still runs", server)
	}
	now := s.status(t)
	if r := replicas(now, now.ActiveSlot); len(r) != 1 || r[0].URL != oldURL {
		if _, err := net.DialTimeout("tcp", strings.TrimPrefix(oldURL, "http://"), time.Second); err == nil {
			t.Fatalf("something still listens on the old replica's address %s", oldURL)
		}
	}
}

// A deploy waits for promotion with `cutover deploy` attached when cutover
// is stopped. SIGTERM must stop it promptly, with the replicas stopped
// gracefully, and leave the rollout recorded as in progress; a restart
// then takes it up again, exactly as after kill -9.
func TestStoppedOrKilledServeLeavesTheRolloutInProgressToResume(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			s := newSetup(t)
			s.AutoPromotion = false
			s.writeConfig(t)
			srv := s.serve(t)
			waitServing(t, s.appURL(), "v1", 20*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			deploy := s.startCLI(ctx, "deploy", "web", "--version", "v2")
			before := s.waitRollout(t, "the wait for promotion", 30*time.Second, paused("AwaitingPromotion"))

			if err := srv.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			srv.waitExit(t, 15*time.Second) // generous: it used to hang 30 s, then SIGKILL the replicas
			select {
			case r := <-deploy:
				if r.code == 0 {
					t.Errorf("deploy exited 0 though cutover stopped before the promotion:\n%s%s", r.stdout, r.stderr)
				}
				if sig == syscall.SIGTERM && !strings.Contains(r.stderr, "cutover is stopping") {
					t.Errorf("deploy does not say that cutover stopped:\n%s", r.stderr)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("the attached deploy did not return after cutover stopped")
			}
			if sig == syscall.SIGTERM {
				logs, _ := filepath.Glob(filepath.Join(s.dataDir(), "logs", "web", "*.log"))
				for _, l := range logs {
					if b, _ := os.ReadFile(l); !strings.Contains(string(b), "shut down") {
						t.Errorf("replica log %s shows no graceful shutdown:\n%s", l, b)
					}
				}
			}

			s.serve(t)
			after := s.waitRollout(t, "the rollout to wait for promotion again", 30*time.Second, paused("AwaitingPromotion"))
			if after.Rollout.ID != before.Rollout.ID || after.Rollout.Revision != before.Rollout.Revision {
				t.Fatalf("after restart: rollout %+v, want rollout %d of revision %d resumed", after.Rollout, before.Rollout.ID, before.Rollout.Revision)
			}
			waitServing(t, s.appURL(), "v1", 10*time.Second)
			s.mustCLI(t, "promote", "web")
			s.waitRollout(t, "success", 30*time.Second, phase("Succeeded"))
			waitServing(t, s.appURL(), "v2", 10*time.Second)
		})
	}
}

// The active revision is restarted after a restart of cutover while its
// database is down, with no previous revision warm to go back to: it must
// stay the active revision and serve once the database is back, not be
// given up for good.
func TestRestoredRevisionThatCrashLoopsServesOnceItCanAgain(t *testing.T) {
	s, srv := serveOneReplica(t, "1s")
	down := s.deployNeedingDatabase(t)
	s.waitRollout(t, "v1's scale-down", 60*time.Second, func(st controller.AppStatus) bool {
		return !slices.ContainsFunc(st.Slots, func(sl controller.SlotStatus) bool { return sl.Phase == store.SlotWarm })
	})
	srv.stop(t)

	if err := os.WriteFile(down, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.serve(t)
	s.waitRollout(t, "3 restarts in CrashLoopBackOff", 60*time.Second, crashLooping(3))
	if err := os.Remove(down); err != nil {
		t.Fatal(err)
	}
	waitServing(t, s.appURL(), "v2", 90*time.Second)
}

// The same with the previous revision still warm: a restarted cutover
// starts it again, and since the active one has no ready replica the
// warm-slot guard flips back to it, as it would have without the restart.
func TestRestoredRevisionThatCrashLoopsBesideAWarmOneFlipsBackToIt(t *testing.T) {
	s, srv := serveOneReplica(t, "5m")
	down := s.deployNeedingDatabase(t)
	srv.stop(t)

	if err := os.WriteFile(down, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 60*time.Second)
	if h := s.mustCLI(t, "history", "web").stdout; !strings.Contains(h, "AutoRolledBack") {
		t.Fatalf("v1 serves again without the warm-slot guard's flip back:\n%s", h)
	}
}

// SIGTERM while a post-promotion analysis runs must not pass for its
// failure: the traffic stays on the new revision, as after kill -9.
func TestSIGTERMDuringPostPromotionAnalysisDoesNotFlipBack(t *testing.T) {
	s, srv := postPromotionSetup(t, "sleep 60")
	s.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait")
	s.waitRollout(t, "the post-promotion analysis", 30*time.Second, func(st controller.AppStatus) bool {
		return st.Rollout != nil && st.Rollout.Step == "PostPromotionAnalysis"
	})

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	srv.waitExit(t, 15*time.Second)
	s.serve(t)
	waitServing(t, s.appURL(), "v2", 30*time.Second)
	if h := s.mustCLI(t, "history", "web").stdout; strings.Contains(h, "RolledBack") {
		t.Fatalf("SIGTERM flipped the traffic back:\n%s", h)
	}
}
