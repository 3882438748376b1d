package config

import (
	"strings"
	"testing"
)

// A pre- or post-promotion analysis holds the rollout until it decides:
// with no counted metric it never does.
func TestBlueGreenAnalysisWithoutACountedMetricNeverEnds(t *testing.T) {
	for _, field := range []string{"prePromotionAnalysis", "postPromotionAnalysis"} {
		t.Run(field, func(t *testing.T) {
			src := successRateTemplates("        count: 0\n") + minimalApp("blueGreen", "        "+field+": {templates: [rate]}\n")
			ps := parseProblems(t, src)
			if len(ps) != 1 {
				t.Fatalf("got %d problems, want 1:\n%v", len(ps), ps)
			}
			got := ps[0].String()
			for _, want := range []string{
				"cutover.yaml:15:",
				"apps[0].strategy.blueGreen." + field + ".templates: this analysis never ends on its own: no metric of rate has a count",
				"give a metric a count, such as count: 5",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("problem:\n  %s\nwant it to contain %q", got, want)
				}
			}
			// The canary's way out does not apply to a blue-green app.
			if strings.Contains(got, "strategy.canary.analysis") {
				t.Errorf("problem:\n  %s\npoints a blue-green app at strategy.canary.analysis", got)
			}
		})
	}
}

func TestBlueGreenAnalysisWithACountedMetricIsValid(t *testing.T) {
	src := successRateTemplates("        count: 3\n") + minimalApp("blueGreen", `        prePromotionAnalysis: {templates: [rate]}
        postPromotionAnalysis: {templates: [rate]}
`)
	if _, err := Parse("cutover.yaml", []byte(src)); err != nil {
		t.Fatalf("Parse: %v", err)
	}
}
