package e2e

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/daemon/daemontest"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/traffic/haproxy/haproxytest"
)

// haproxySetup is a cutover whose app's traffic a real HAProxy moves,
// through its runtime API; its backends have 4 servers per slot (2
// replicas run), with serverOpts on their server-template lines.
func haproxySetup(t *testing.T, strategy, serverOpts string) (*setup, *haproxytest.Server) {
	t.Helper()
	h := haproxytest.Start(t, 4, serverOpts)
	s := newSetup(t)
	s.Strategy = strategy
	s.AppExtra = `    traffic:
      haproxy:
        socket: ` + h.Socket + `
        backend: ` + h.Backend + `
        previewBackend: ` + h.PreviewBackend
	s.writeConfig(t)
	return s, h
}

// wantOnlyThrough checks that n requests through HAProxy, each on a new
// connection, all reach version.
func wantOnlyThrough(t *testing.T, h *haproxytest.Server, want, when string, n int) {
	t.Helper()
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range n {
		if got := version(t, probe, h.URL+"/"); got != want {
			t.Fatalf("%s, a request through HAProxy reached %s, want %s", when, got, want)
		}
	}
}

// flipTime is the time between the last events named from and to of
// the rollout that recorded them: the flip inside it.
func flipTime(t *testing.T, evs []store.Event, from, to string) time.Duration {
	t.Helper()
	last := func(reason string) store.Event {
		for _, ev := range slices.Backward(evs) {
			if ev.Reason == reason {
				return ev
			}
		}
		t.Fatalf("no %s event in %v", reason, evs)
		return store.Event{}
	}
	return last(to).Time.Sub(last(from).Time)
}

func TestHAProxyDeployAndRollbackUnderLoadLoseNoRequest(t *testing.T) {
	s, h := haproxySetup(t, "", "check inter 100ms")
	s.serve(t)
	s.waitFirstDeploy(t, h.URL)

	load := startLoad(h.URL+"/", 4, 2*time.Minute)
	s.mustCLI(t, "deploy", "web", "--version", "v2")
	wantOnlyThrough(t, h, "v2", "after deploy returned", 5)
	deployFlip := flipTime(t, s.events(t), "SmokePassed", "Promoted")
	s.mustCLI(t, "rollback", "web")
	wantOnlyThrough(t, h, "v1", "after rollback returned", 5)
	rollbackFlip := flipTime(t, s.events(t), "RollbackStarted", "RolledBack")
	load.wantBothAnsweredNoneFailed(t, "HAProxy")
	t.Logf("%d requests through HAProxy across a deploy and a rollback, 0 failed, by version %v; flip %s (SmokePassed → Promoted), rollback %s (RollbackStarted → RolledBack)",
		load.requests.Load(), load.versions, deployFlip.Round(time.Millisecond), rollbackFlip.Round(time.Millisecond))
}

func TestHAProxyCanaryGetsItsWeightAndAnAbortSendsItAllBack(t *testing.T) {
	s, h := haproxySetup(t, `      canary:
        steps:
          - setWeight: 25
          - pause: {}`, "")
	s.serve(t)
	s.waitFirstDeploy(t, h.URL)
	s.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait")
	if st := s.waitRollout(t, "the pause", 30*time.Second, paused("AwaitingPromotion")); st.Rollout.Weight != 25 {
		t.Fatalf("at the pause: %+v", st.Rollout)
	}
	const n = 2000
	got := count(t, h.URL+"/", n)
	share := float64(got["200 v2"]) * 100 / n
	if got["200 v2"]+got["200 v1"] != n || share < 23 || share > 27 {
		t.Fatalf("weight 25 through HAProxy over %d requests: %v (%.2f%% to v2), want 25%% ±2 to v2 and the rest to v1\n%s", n, got, share, stat(t, h))
	}
	s.mustCLI(t, "abort", "web")
	s.waitRollout(t, "the abort", 30*time.Second, phase("Aborted"))
	if got := count(t, h.URL+"/", 200); got["200 v1"] != 200 {
		t.Fatalf("after the abort, through HAProxy: %v, want v1 only", got)
	}
	t.Logf("setWeight 25: %d of %d requests through HAProxy reached the canary (%.2f%%); after the abort 200 of 200 reached v1", got["200 v2"], n, share)
}

// The process target starts the replicas anew, on new ports, when cutover
// starts again: HAProxy's servers must follow them.
func TestHAProxyFollowsTheReplicasAcrossARestartOfCutover(t *testing.T) {
	s, h := haproxySetup(t, "", "check inter 100ms")
	srv := s.serve(t)
	s.waitFirstDeploy(t, h.URL)
	s.mustCLI(t, "deploy", "web", "--version", "v2")
	wantOnlyThrough(t, h, "v2", "after deploy returned", 5)
	before := activeEndpoints(t, s.status(t))

	srv.stop(t)
	s.serve(t)
	waitServing(t, h.URL+"/", "v2", 30*time.Second)
	after := activeEndpoints(t, s.status(t))
	if len(after) != 2 || slices.ContainsFunc(after, func(e string) bool { return slices.Contains(before, e) }) {
		t.Fatalf("after the restart the active slot's replicas are %v, were %v: want 2 on new ports", after, before)
	}
	if up := upServers(t, h); !slices.Equal(up, after) {
		t.Fatalf("after the restart HAProxy's UP servers of web are %v, want the new replicas %v\n%s", up, after, stat(t, h))
	}
	wantOnlyThrough(t, h, "v2", "after the restart", 20)
	t.Logf("replicas %v before the restart, %v after; HAProxy's UP servers follow them", before, after)
}

// activeEndpoints returns host:port of the replicas of st's active slot,
// sorted.
func activeEndpoints(t *testing.T, st controller.AppStatus) []string {
	t.Helper()
	var out []string
	for _, e := range slotOf(t, st, st.ActiveSlot).Endpoints {
		out = append(out, strings.TrimSuffix(strings.TrimPrefix(e.URL, "http://"), "/"))
	}
	slices.Sort(out)
	return out
}

// upServers returns the addresses of backend web's servers that HAProxy
// reports UP with a weight, sorted.
func upServers(t *testing.T, h *haproxytest.Server) []string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(stat(t, h), "# "))).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("show stat: %v", err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	var out []string
	for _, r := range rows[1:] {
		if r[col["pxname"]] == h.Backend && r[col["type"]] == "2" && r[col["status"]] == "UP" && r[col["weight"]] != "0" {
			out = append(out, r[col["addr"]])
		}
	}
	slices.Sort(out)
	return out
}

// stat returns HAProxy's `show stat`.
func stat(t *testing.T, h *haproxytest.Server) string {
	t.Helper()
	out, err := h.Command("show stat")
	if err != nil {
		t.Fatalf("show stat: %v", err)
	}
	return out
}

// The README's HAProxy section is what users copy: its haproxy.cfg, with
// only the paths and the ports changed, run by a real HAProxy, and its
// config, with only the addresses, the command and the socket changed,
// must validate and take a canary through its steps to v2 through
// HAProxy.
func TestHAProxyReadmeExampleWorksAsWritten(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const title = "\n## HAProxy at the edge (`traffic.haproxy`)\n"
	_, section, found := strings.Cut(string(readme), title)
	if !found {
		t.Fatalf("README.md has no section %s", strings.TrimSpace(title))
	}
	section, _, _ = strings.Cut(section, "\n## ")
	block := func(lang string) string {
		m := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```").FindStringSubmatch(section)
		if m == nil {
			t.Fatalf("the README's HAProxy section has no %s example", lang)
		}
		return m[1]
	}
	replace := func(example string, rs ...[2]string) string {
		for _, r := range rs {
			if !strings.Contains(example, r[0]) {
				t.Fatalf("the README's HAProxy example no longer has %q; update what this test replaces:\n%s", r[0], example)
			}
			example = strings.ReplaceAll(example, r[0], r[1])
		}
		return example
	}

	dir := haproxytest.Dir(t)
	socket := filepath.Join(dir, "admin.sock")
	listen := fmt.Sprintf("127.0.0.1:%d", daemontest.FreePort(t))
	cfg := replace(block("haproxy"),
		[2]string{"/run/haproxy/admin.sock", socket},
		[2]string{"/var/lib/haproxy/server-state", filepath.Join(dir, "server-state")},
		[2]string{"bind :80", "bind " + listen},
		[2]string{"bind 127.0.0.1:8081", fmt.Sprintf("bind 127.0.0.1:%d", daemontest.FreePort(t))})
	file := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	h := haproxytest.Run(t, file, socket, listen)

	s := newSetup(t)
	example := replace(block("yaml"),
		[2]string{`admin: {listen: "127.0.0.1:9901"}`, fmt.Sprintf("admin: {listen: %q}", s.Admin)},
		[2]string{"listen: 127.0.0.1:8080", "listen: " + s.Listen},
		[2]string{`command: ["./web", "-addr", "127.0.0.1:${PORT}", "-version", "${VERSION}"]`,
			fmt.Sprintf(`command: [%q, "sample-app", "-addr", "127.0.0.1:${PORT}", "-version", "${VERSION}"]`, cutoverBin)},
		[2]string{"socket: /run/haproxy/admin.sock", "socket: " + socket})
	if err := os.WriteFile(s.configPath(), []byte(example), 0o644); err != nil {
		t.Fatal(err)
	}
	s.mustCLI(t, "validate", "-c", s.configPath())
	s.serve(t)
	s.waitFirstDeploy(t, h.URL)

	s.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait")
	const n = 1000
	var shares []string
	for _, weight := range []int{10, 50} {
		// The pause of 5m is a step in progress, the one without a
		// duration a pause awaiting promotion: promote ends either.
		s.waitRollout(t, fmt.Sprintf("the pause at %d%%", weight), 30*time.Second, func(st controller.AppStatus) bool {
			return st.Rollout != nil && st.Rollout.Step == "pause" && st.Rollout.Weight == weight
		})
		got := count(t, h.URL+"/", n)
		if v2 := got["200 v2"]; v2+got["200 v1"] != n || v2 < n*(weight-2)/100 || v2 > n*(weight+2)/100 {
			t.Fatalf("setWeight %d through the README's HAProxy over %d requests: %v, want %d%% ±2 to v2 and the rest to v1\n%s", weight, n, got, weight, stat(t, h))
		}
		shares = append(shares, fmt.Sprintf("%d%%: %d of %d", weight, got["200 v2"], n))
		s.mustCLI(t, "promote", "web")
	}
	s.waitRollout(t, "success", 30*time.Second, phase("Succeeded"))
	wantOnlyThrough(t, h, "v2", "after the last promotion", 20)
	t.Logf("the README's HAProxy example: canary through HAProxy at %s requests to v2, then v2 only", strings.Join(shares, ", "))
}
