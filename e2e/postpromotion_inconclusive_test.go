package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
)

// An inconclusive post-promotion analysis pauses the rollout with the new
// version serving; a human decides with the CLI: `promote` keeps it,
// `abort` and `rollback` flip back to the previous slot, still warm long
// after scaleDownDelay.
func TestInconclusivePostPromotionAnalysisWaitsForPromoteAbortOrRollback(t *testing.T) {
	for _, tt := range []struct {
		verb, want, phase string
	}{
		{"promote", "v2", "Succeeded"},
		{"abort", "v1", "RolledBack"},
		{"rollback", "v1", "RolledBack"},
	} {
		t.Run(tt.verb, func(t *testing.T) {
			s := newSetup(t)
			s.Strategy = fmt.Sprintf(`      blueGreen:
        previewListen: "%s"
        scaleDownDelay: 1s
        bakeTime: 1s
        postPromotionAnalysis: {templates: [idle]}`, s.Preview)
			// Nobody sends traffic: the measurement is Inconclusive
			// after minSamplesTimeout.
			s.Top = `analysisTemplates:
  - name: idle
    metrics:
      - name: rate
        provider: {builtin: {metric: successRate}}
        successCondition: result >= 0.99
        interval: 100ms
        count: 1
        minSamples: 1000
        minSamplesTimeout: 1s`
			s.writeConfig(t)
			s.serve(t)
			waitServing(t, s.appURL(), "v1", 20*time.Second)
			s.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait")
			s.waitRollout(t, "the inconclusive pause", 30*time.Second, paused("Inconclusive"))
			// Past scaleDownDelay and the bake: v1 must still be warm.
			time.Sleep(4 * time.Second)
			wantAllOn(t, s, "v2", "while paused after the flip")
			if r := s.cli(t, tt.verb, "web"); r.code != 0 {
				t.Fatalf("%s of a rollout paused after the flip: exit %d\n%s%s", tt.verb, r.code, r.stdout, r.stderr)
			}
			st := s.waitRollout(t, "the end of the rollout", 30*time.Second, func(st controller.AppStatus) bool {
				return st.Rollout != nil && st.Rollout.Done()
			})
			if st.Rollout.Phase != tt.phase {
				t.Fatalf("after %s the rollout is %s (%s), want %s", tt.verb, st.Rollout.Phase, st.Rollout.Message, tt.phase)
			}
			wantAllOn(t, s, tt.want, "after "+tt.verb)
		})
	}
}
