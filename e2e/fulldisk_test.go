package e2e

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size on dir, a real small disk that fills
// up, and unmounts it at cleanup. It skips the test where mounting is not
// permitted (it needs root).
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("this test fills a real small disk, a tmpfs, and mounting one is not permitted here (it needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			// Something still holds a file there: detach it now, it goes
			// once that is closed.
			t.Logf("umount %s: %v: %s; detaching it", dir, err, out)
			_ = exec.Command("umount", "-l", dir).Run()
		}
	})
}

// fillDisk writes a file into dir until the disk has no space left.
func fillDisk(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill the disk: %v", err)
			}
			return
		}
	}
}

// appHistory is what `history -o json` tells about the revisions and the
// events of the app.
type appHistory struct {
	Revisions []struct {
		Number  int
		Version string
	}
	Events []struct {
		Reason   string
		Revision int
	}
}

// recordedOutcome reports whether the history holds the end of the
// rollout of version: its RolloutSucceeded or RolloutFailed event.
func (h appHistory) recordedOutcome(version string) bool {
	for _, r := range h.Revisions {
		if r.Version != version {
			continue
		}
		for _, ev := range h.Events {
			if ev.Revision == r.Number && (ev.Reason == "RolloutSucceeded" || ev.Reason == "RolloutFailed") {
				return true
			}
		}
	}
	return false
}

// On a full disk a deploy never reports success with its history lost: it
// fails, saying why, and a restart on that disk still serves the app.
func TestFullDiskFailsTheDeployClearlyAndARestartStillServes(t *testing.T) {
	s := newSetup(t)
	mountTmpfs(t, s.dataDir(), "4m")
	s.writeConfig(t)
	srv := s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	fillDisk(t, s.dataDir())

	// The store's file has room left inside it: the first deploys may
	// still be recorded in full. Deploy until one is refused.
	var refused *result
	for i := 2; i <= 40 && refused == nil; i++ {
		v := "v" + itoa(i)
		r := s.cli(t, "deploy", "web", "--version", v)
		if r.code != 0 {
			refused = &r
			break
		}
		var h appHistory
		if err := json.Unmarshal([]byte(s.mustCLI(t, "history", "web", "-o", "json").stdout), &h); err != nil {
			t.Fatal(err)
		}
		if !h.recordedOutcome(v) {
			t.Fatalf("deploy of %s on a full disk exited 0 but its history lacks how it ended (events lost):\n%s%s", v, r.stdout, r.stderr)
		}
	}
	if refused == nil {
		t.Fatal("40 deploys on a full disk all succeeded: the disk never filled up")
	}
	t.Logf("the deploy refused on a full disk said:\n%s%s", refused.stdout, refused.stderr)
	if refused.code != 1 || !strings.Contains(refused.stderr, "no space left on device") {
		t.Fatalf("deploy on a full disk: exit %d, want 1 naming the full disk\nstdout:\n%s\nstderr:\n%s", refused.code, refused.stdout, refused.stderr)
	}

	serving := version(t, http.DefaultClient, s.appURL())
	srv.stop(t)
	s.serve(t)
	waitServing(t, s.appURL(), serving, 30*time.Second)
}
