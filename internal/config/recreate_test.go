package config

import (
	"strings"
	"testing"
	"time"
)

func TestRecreateIsTheOnlyStrategyAndDrainsThirtySecondsByDefault(t *testing.T) {
	c, err := Parse("cutover.yaml", []byte(minimalApp("recreate", "")))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	s := c.Apps[0].Strategy
	if s.Recreate == nil || s.BlueGreen != nil || s.Canary != nil {
		t.Fatalf("strategy = %+v, want recreate only (no blue-green default beside it)", s)
	}
	if got := s.Recreate.DrainTimeout.D(); got != 30*time.Second {
		t.Errorf("drainTimeout = %s, want the default 30s", got)
	}
	c, err = Parse("cutover.yaml", []byte(minimalApp("recreate", "        drainTimeout: 0s\n")))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := c.Apps[0].Strategy.Recreate.DrainTimeout.D(); got != 0 {
		t.Errorf("drainTimeout written as 0s = %s, want 0 (stop at once)", got)
	}
}

func TestRecreateBesideAnotherStrategyIsRefusedAtItsLine(t *testing.T) {
	for _, tc := range []struct {
		other, body, phrase string
	}{
		{"blueGreen", "      blueGreen: {}\n", "apps[0].strategy: both blueGreen and recreate are set; keep exactly one of blueGreen, canary, recreate and rolling"},
		{"canary", "      canary: {steps: [{setWeight: 50}]}\n", "apps[0].strategy: both canary and recreate are set; keep exactly one of blueGreen, canary, recreate and rolling"},
		{"both", "      blueGreen: {}\n      canary: {steps: [{setWeight: 50}]}\n", "apps[0].strategy: blueGreen, canary and recreate are all set; keep exactly one"},
	} {
		t.Run(tc.other, func(t *testing.T) {
			ps := parseProblems(t, minimalApp("recreate", "        drainTimeout: 5s\n"+tc.body))
			if len(ps) != 1 {
				t.Fatalf("got %d problems, want 1:\n%v", len(ps), ps)
			}
			got := ps[0].String()
			for _, want := range []string{"cutover.yaml:6:5:", tc.phrase} {
				if !strings.Contains(got, want) {
					t.Errorf("problem:\n  %s\nwant it to contain %q", got, want)
				}
			}
		})
	}
}

func TestRecreateRefusesANegativeDrainTimeoutAtItsLine(t *testing.T) {
	ps := parseProblems(t, minimalApp("recreate", "        drainTimeout: -1s\n"))
	if len(ps) != 1 || !strings.Contains(ps[0].String(), "cutover.yaml:8:") ||
		!strings.Contains(ps[0].String(), "apps[0].strategy.recreate.drainTimeout") {
		t.Fatalf("problems = %v, want one at cutover.yaml:8 on apps[0].strategy.recreate.drainTimeout", ps)
	}
}
