package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/daemon/daemontest"
	"github.com/cutover/cutover/internal/store"
)

// run runs the CLI in-process and returns its exit code and outputs.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code = Execute(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestJSONOutputReportsErrorsAsJSON pins that with -o json every kind of
// failure (usage, flags, config, server refusals, unreachable server) ends
// with {"error": "..."} on stderr, stdout stays for results, and the exit
// codes stay 1 and 2.
func TestJSONOutputReportsErrorsAsJSON(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	admin := "--admin=" + d.URL
	waitRollout(t, &api.Client{Base: d.URL}, func(ro *store.Rollout) bool { return ro.Done() })
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"missing --version", []string{"deploy", "web", "-o", "json", admin}, 2},
		{"unknown flag before -o", []string{"status", "--bogus", "-o", "json", admin}, 2},
		{"unknown flag after -o=json", []string{"status", "--output=json", "--bogus", admin}, 2},
		{"unknown verb", []string{"-o", "json", "bogus"}, 2},
		{"too many arguments", []string{"history", "a", "b", "-ojson"}, 2},
		{"invalid config", []string{"validate", "-c", filepath.Join(t.TempDir(), "none.yaml"), "-o", "json"}, 2},
		{"version the server refuses", []string{"deploy", "web", "--version", "v2\x1b[2J", "--upstream", d.Upstream, "-o", "json", admin}, 2},
		{"no such app", []string{"status", "nope", "-o", "json", admin}, 1},
		{"nothing to promote", []string{"promote", "web", "-o", "json", admin}, 1},
		{"unreachable admin", []string{"status", "-o", "json", "--admin", "http://127.0.0.1:1"}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tc.args...)
			var e map[string]string
			if code != tc.code || json.Unmarshal([]byte(stderr), &e) != nil || e["error"] == "" || len(e) != 1 || stdout != "" {
				t.Fatalf("exit %d (want %d)\nstdout: %q\nstderr: %q\nwant only {\"error\": ...} on stderr", code, tc.code, stdout, stderr)
			}
		})
	}
	if code, _, stderr := run(t, "status", "nope", admin); code != 1 || !strings.HasPrefix(stderr, "error: ") {
		t.Errorf("text mode: exit %d, stderr %q; want the error as text", code, stderr)
	}
}

// TestPromoteShowsTheStateAfterThePromotion pins that `promote -o json`
// prints the rollout once the promotion took effect (the flip happened),
// not the record from before it.
func TestPromoteShowsTheStateAfterThePromotion(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{Strategy: "strategy: {blueGreen: {autoPromotion: false}}"})
	admin := "--admin=" + d.URL
	c := &api.Client{Base: d.URL}
	waitRollout(t, c, func(ro *store.Rollout) bool { return ro.Done() })
	if code, _, stderr := run(t, "deploy", "web", "--version", "v2", "--upstream", d.Upstream, "--no-wait", admin); code != 0 {
		t.Fatalf("deploy: exit %d %s", code, stderr)
	}
	waitRollout(t, c, func(ro *store.Rollout) bool { return ro.Phase == store.RolloutPaused })
	code, stdout, stderr := run(t, "promote", "web", "-o", "json", admin)
	var ro store.Rollout
	if code != 0 || json.Unmarshal([]byte(stdout), &ro) != nil {
		t.Fatalf("promote: exit %d\n%s\n%s", code, stdout, stderr)
	}
	flipped := ro.Step == "Promoted" || ro.Step == "Baking" || ro.Done()
	if ro.Version != "v2" || ro.Phase == store.RolloutPaused || !flipped {
		t.Fatalf("promote -o json shows phase %s, step %s, pause reason %q; want v2 flipped (step Promoted, Baking or done)", ro.Phase, ro.Step, ro.PauseReason)
	}
	st, err := c.Status(context.Background(), "web")
	if err != nil || st.Version != "v2" {
		t.Fatalf("after promote returned, v2 should serve: %+v %v", st, err)
	}
}

// waitRollout polls web's last rollout until ok holds.
func waitRollout(t *testing.T, c *api.Client, ok func(*store.Rollout) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := c.Status(context.Background(), "web")
		if err == nil && st.Rollout != nil && ok(st.Rollout) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout did not reach the expected state: %+v %v", st.Rollout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTerminalGetsNoControlCharacters pins that text from elsewhere (here a
// file name given on the command line, echoed in the error) reaches the
// terminal with its escape codes escaped, in text and in JSON.
func TestTerminalGetsNoControlCharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "\x1b]0;pwned\x07\x1b[2J\u009b2J\x7f.yaml")
	for _, args := range [][]string{{"validate", "-c", path}, {"validate", "-c", path, "-o", "json"}} {
		code, stdout, stderr := run(t, args...)
		if code != 2 || strings.ContainsAny(stdout+stderr, "\x1b\x07\u009b\x7f") || !strings.Contains(stderr, `\u001b]0;pwned\u0007\u001b[2J\u009b2J\u007f`) {
			t.Errorf("%v: exit %d\nstdout %q\nstderr %q", args, code, stdout, stderr)
		}
		if args[len(args)-1] == "json" {
			var e map[string]string
			if err := json.Unmarshal([]byte(stderr), &e); err != nil || !strings.Contains(e["error"], "\x1b]0;pwned") {
				t.Errorf("the JSON error should stay valid and carry the name: %v %q", err, e["error"])
			}
		}
	}
}
