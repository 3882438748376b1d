package config

import (
	"strings"
	"testing"
)

// minimalRolling is an app of 4 local replicas with the rolling strategy
// and body under it.
func minimalRolling(body string) string {
	return `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {process: {command: ["./app"], replicas: 4}}
    strategy:
      rolling:
` + body
}

func TestRollingTakesNumbersAndPercentagesAndDefaultsLikeKubernetes(t *testing.T) {
	for _, tc := range []struct {
		name, body             string
		surge, unavailable     IntOrPercent
		wantSurge, wantUnavail int
	}{
		{"defaults", "", IntOrPercent{25, true}, IntOrPercent{25, true}, 1, 1},
		{"numbers", "        maxSurge: 1\n        maxUnavailable: 0\n", IntOrPercent{1, false}, IntOrPercent{0, false}, 1, 0},
		{"percentages", "        maxSurge: \"50%\"\n        maxUnavailable: 30%\n", IntOrPercent{50, true}, IntOrPercent{30, true}, 2, 1},
		{"quoted number", "        maxSurge: \"2\"\n", IntOrPercent{2, false}, IntOrPercent{25, true}, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("cutover.yaml", []byte(minimalRolling(tc.body)))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			s := c.Apps[0].Strategy
			if s.Rolling == nil || s.BlueGreen != nil {
				t.Fatalf("strategy = %+v, want rolling only", s)
			}
			if s.Rolling.MaxSurge != tc.surge || s.Rolling.MaxUnavailable != tc.unavailable {
				t.Errorf("maxSurge, maxUnavailable = %s, %s; want %s, %s", s.Rolling.MaxSurge, s.Rolling.MaxUnavailable, tc.surge, tc.unavailable)
			}
			// Of 4 replicas: a surge rounds up, unavailability down.
			if surge, unavail := s.Rolling.Bounds(4); surge != tc.wantSurge || unavail != tc.wantUnavail {
				t.Errorf("Bounds(4) = %d, %d; want %d, %d", surge, unavail, tc.wantSurge, tc.wantUnavail)
			}
		})
	}
}

func TestRollingRefusesWhatCanNeverReplaceAReplicaAtItsLine(t *testing.T) {
	for _, tc := range []struct {
		name, body, at, phrase string
	}{
		{"both zero", "        maxSurge: 0\n        maxUnavailable: 0\n", "cutover.yaml:7:7:",
			"apps[0].strategy.rolling: maxSurge 0 and maxUnavailable 0 of 4 replica(s) both come to 0"},
		{"percentages that round to zero", "        maxSurge: 0%\n        maxUnavailable: 10%\n", "cutover.yaml:7:7:",
			"maxSurge 0% and maxUnavailable 10% of 4 replica(s) both come to 0"},
		{"negative", "        maxSurge: -1\n", "cutover.yaml:8:19:", "apps[0].strategy.rolling.maxSurge: -1 is negative"},
		{"not a count", "        maxUnavailable: lots\n", "cutover.yaml:8:25:", "\"lots\" is neither a whole number nor a percentage"},
		{"above 100%", "        maxSurge: 150%\n", "cutover.yaml:8:19:", "\"150%\" is not a percentage from 0% to 100%"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := parseProblems(t, minimalRolling(tc.body))
			if len(ps) != 1 {
				t.Fatalf("got %d problems, want 1:\n%v", len(ps), ps)
			}
			got := ps[0].String()
			for _, want := range []string{tc.at, tc.phrase} {
				if !strings.Contains(got, want) {
					t.Errorf("problem:\n  %s\nwant it to contain %q", got, want)
				}
			}
		})
	}
}

func TestRollingBesideAnotherStrategyOrOnStaticUpstreamsIsRefused(t *testing.T) {
	ps := parseProblems(t, minimalRolling("        maxSurge: 1\n      recreate: {}\n"))
	if len(ps) != 1 || !strings.Contains(ps[0].String(), "both recreate and rolling are set; keep exactly one of blueGreen, canary, recreate and rolling") {
		t.Fatalf("problems = %v, want one saying to keep exactly one strategy", ps)
	}
	ps = parseProblems(t, minimalApp("rolling", "        maxSurge: 1\n"))
	if len(ps) != 1 || !strings.Contains(ps[0].String(), "which static upstreams do not have") {
		t.Fatalf("problems = %v, want one saying static upstreams cannot be scaled", ps)
	}
}

// The README's rolling example is what users copy: it must validate as it
// stands and keep 4 replicas ready.
func TestReadmeRollingExampleIsValid(t *testing.T) {
	c := readmeExample(t, "rolling:\n")
	r := c.Apps[0].Strategy.Rolling
	if r == nil {
		t.Fatal("the README's rolling example has no rolling strategy")
	}
	if surge, unavailable := r.Bounds(c.Apps[0].Target.Process.Replicas); surge != 1 || unavailable != 0 {
		t.Errorf("the README's example resolves to maxSurge %d, maxUnavailable %d; want 1 and 0 as its comments say", surge, unavailable)
	}
}

func TestRollingOnKubernetesNeedsRouterMode(t *testing.T) {
	const strategy = "    strategy: {rolling: {maxSurge: 1, maxUnavailable: 0}}\n"
	ps := parseProblems(t, kubeApp+strategy)
	if len(ps) != 1 || !strings.Contains(ps[0].String(), "on Kubernetes the rolling strategy needs router mode") {
		t.Fatalf("problems = %v, want one saying rolling needs router mode", ps)
	}
	routed := strings.Replace(kubeApp, "service: {active: web, preview: web-preview}", "router: {port: 8080}", 1)
	c, err := Parse("cutover.yaml", []byte(routed+strategy))
	if err != nil {
		t.Fatalf("rolling in router mode: %v", err)
	}
	if surge, unavailable := c.Apps[0].Strategy.Rolling.Bounds(c.Apps[0].Target.Kubernetes.Replicas); surge != 1 || unavailable != 0 {
		t.Errorf("Bounds = %d, %d; want 1, 0", surge, unavailable)
	}
}

// A rolling update splits the traffic by ready replicas in cutover's
// router, which a proxy the team runs never sees.
func TestRollingThroughAnotherProxyIsRefused(t *testing.T) {
	ps := parseProblems(t, minimalRolling("        maxSurge: 1\n    traffic:\n      haproxy: {socket: /run/haproxy/admin.sock, backend: web}\n"))
	if len(ps) != 1 || !strings.Contains(ps[0].String(), "traffic.haproxy moves it here") {
		t.Fatalf("problems = %v, want one saying rolling needs cutover's router", ps)
	}
}
