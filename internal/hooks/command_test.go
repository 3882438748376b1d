package hooks

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
)

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func TestCommandHookGetsPayloadOnStdinAndRolloutInEnvAndDir(t *testing.T) {
	dir := t.TempDir()
	h := config.Hook{Command: sh(`cat > payload.json && printf '%s\n' "$CUTOVER_HOOK" "$CUTOVER_APP" "$CUTOVER_VERSION" "$CUTOVER_REVISION" > env.txt`)}
	info := Info{Point: PointBeforeInstall, App: "web", Version: "v2", Revision: 3, Dir: dir}
	payload := map[string]any{"app": "web", "revision": 3}

	if err := Run(t.Context(), h, info, payload); err != nil {
		t.Fatalf("Run: %v", err)
	}

	raw, err := os.ReadFile(filepath.Join(dir, "payload.json"))
	if err != nil {
		t.Fatalf("the hook did not write its stdin into its directory: %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("stdin is not JSON: %v: %q", err, raw)
	}
	if got["app"] != "web" || got["revision"] != float64(3) {
		t.Errorf("stdin = %s, want the payload", raw)
	}
	env, err := os.ReadFile(filepath.Join(dir, "env.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "beforeInstall\nweb\nv2\n3\n"; string(env) != want {
		t.Errorf("CUTOVER_HOOK, _APP, _VERSION, _REVISION = %q, want %q", env, want)
	}
}

func TestCommandHookFailureReportsExitStatusAndLastFiveLines(t *testing.T) {
	h := config.Hook{
		Name:    "migrate",
		Command: sh(`for i in 1 2 3 4 5 6 7; do echo "line $i"; done; echo "fatal: no database" >&2; exit 3`),
	}
	err := Run(t.Context(), h, Info{Point: PointAfterInstall}, nil)
	if err == nil {
		t.Fatal("Run succeeded, want the hook's failure")
	}
	msg := err.Error()
	for _, want := range []string{`afterInstall hook "migrate"`, "exit status 3", "line 4", "line 7", "fatal: no database"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "line 3") {
		t.Errorf("error %q shows more than the last 5 lines of output", msg)
	}
}

func TestCommandHookTimeoutKillsItAndWhatItStarted(t *testing.T) {
	dir := t.TempDir()
	h := config.Hook{
		Command: sh(`sleep 30 & echo $! > child.pid; wait`),
		Timeout: config.Duration(300 * time.Millisecond),
	}
	start := time.Now()
	err := Run(t.Context(), h, Info{Point: PointBeforeAllowTraffic, Dir: dir}, nil)
	if err == nil {
		t.Fatal("Run succeeded, want a timeout")
	}
	if !strings.Contains(err.Error(), "timed out") {
		t.Errorf("error %q does not say the hook timed out", err)
	}
	// Far below the 30s sleep: the hook was killed, not waited for.
	if elapsed := time.Since(start); elapsed > 20*time.Second {
		t.Errorf("Run returned after %s; the hook was not killed at its timeout", elapsed)
	}

	raw, err := os.ReadFile(filepath.Join(dir, "child.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the hook's child %d still runs after the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid runs; a zombie waiting for its parent to reap
// it does not count.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestCommandHookStopsWhenContextIsCanceled(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err := Run(ctx, config.Hook{Command: sh("sleep 30")}, Info{Point: PointRollback}, nil)
	if err == nil {
		t.Fatal("Run succeeded, want it stopped by its context")
	}
	if strings.Contains(err.Error(), "timed out after") {
		t.Errorf("error %q blames the hook's timeout; the caller's context ended", err)
	}
}

func TestCommandHookMissingProgramSaysWhatToCheck(t *testing.T) {
	err := Run(t.Context(), config.Hook{Command: []string{"./no-such-hook"}}, Info{Point: PointBeforeInstall, Dir: t.TempDir()}, nil)
	if err == nil || !strings.Contains(err.Error(), "check that the program exists") {
		t.Fatalf("error = %v, want one that says to check the program", err)
	}
}

func TestCommandHookDeclaresBarriersOnStdoutOnly(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		fails        bool
		want         []string
	}{
		{"among other lines", `echo migrating; echo "  cutover-barrier:   schema v42  "; echo done`, false, []string{"schema v42"}},
		{"stderr does not count", `echo "cutover-barrier: on stderr" >&2`, false, nil},
		{"last line without a newline", `echo "cutover-barrier: first"; printf 'cutover-barrier: second'`, false, []string{"first", "second"}},
		{"a failed migration declares it too", `echo "cutover-barrier: half done"; exit 1`, true, []string{"half done"}},
		{"the prefix starts the line", `echo "note: cutover-barrier: no"`, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			info := Info{Point: PointBeforeInstall, OnBarrier: func(reason string) { got = append(got, reason) }}
			err := Run(t.Context(), config.Hook{Command: sh(tc.script)}, info, nil)
			if (err != nil) != tc.fails {
				t.Fatalf("Run = %v, want failure %v", err, tc.fails)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("barriers declared = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCommandHookBarrierLineIsBounded(t *testing.T) {
	var got []string
	info := Info{Point: PointBeforeInstall, OnBarrier: func(reason string) { got = append(got, reason) }}
	script := `printf 'cutover-barrier: '; head -c 100000 /dev/zero | tr '\0' x; echo`
	if err := Run(t.Context(), config.Hook{Command: sh(script)}, info, nil); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0]) > maxLine {
		t.Errorf("a 100 kB barrier line gave %d reason(s), the first %d bytes long; want one cut at %d", len(got), len(got[0]), maxLine)
	}
}
