package config

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// successRateTemplates defines a template "rate" whose one metric has the
// given extra fields (indented as the metric's).
func successRateTemplates(extra string) string {
	return `analysisTemplates:
  - name: rate
    metrics:
      - name: success-rate
        provider: {builtin: {metric: successRate, window: 5s}}
        successCondition: result >= 0.99
` + extra
}

func TestAnalysisStepWithoutACountedMetricNeverEnds(t *testing.T) {
	tests := []struct {
		name   string
		extra  string // fields of the template's metric
		prefix string
	}{
		{"count left out", "", "cutover.yaml:16:24:"},
		{"count: 0", "        count: 0\n", "cutover.yaml:17:24:"},
		{"only a dry run has a count", "        count: 5\n        dryRun: true\n", "cutover.yaml:18:24:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := successRateTemplates(tt.extra) + minimalCanary(`        steps:
          - setWeight: 10
          - analysis: {templates: [rate]}
`)
			ps := parseProblems(t, src)
			if len(ps) != 1 {
				t.Fatalf("got %d problems, want 1:\n%v", len(ps), ps)
			}
			got := ps[0].String()
			for _, want := range []string{
				tt.prefix,
				"apps[0].strategy.canary.steps[1].analysis.templates: this analysis never ends on its own: no metric of rate has a count",
				"give a metric a count, such as count: 5",
				"strategy.canary.analysis",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("problem:\n  %s\nwant it to contain %q", got, want)
				}
			}
		})
	}
}

func TestAnalysisStepWithACountedMetricAndBackgroundUntilTheEndAreValid(t *testing.T) {
	src := successRateTemplates("") + `  - name: rate-5
    metrics:
      - name: success-rate
        provider: {builtin: {metric: successRate}}
        successCondition: result >= 0.99
        count: 5
      - name: p99
        provider: {builtin: {metric: latencyP99}}
        failureCondition: result > 0.5
` + minimalCanary(`        steps:
          - setWeight: 10
          - analysis: {templates: [rate-5]}
          - analysis: {templates: [rate, rate-5]}
        analysis: {templates: [rate]}
`)
	if _, err := Parse("cutover.yaml", []byte(src)); err != nil {
		t.Fatalf("Parse: %v", err)
	}
}

func TestMinSamplesTimeoutDefaultsToAMinuteForBuiltinMetrics(t *testing.T) {
	c, err := Parse("cutover.yaml", []byte(successRateTemplates("")+minimalCanary(`        steps: [{setWeight: 10}]
        analysis: {templates: [rate]}
`)))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := c.AnalysisTemplates[0].Metrics[0].MinSamplesTimeout.D(); got != time.Minute {
		t.Fatalf("minSamplesTimeout = %s, want 1m by default", got)
	}
}

func TestMinSamplesTimeoutMustBePositive(t *testing.T) {
	for _, v := range []string{"0s", "-1s"} {
		t.Run(v, func(t *testing.T) {
			src := successRateTemplates("        minSamplesTimeout: "+v+"\n") + minimalCanary(`        steps: [{setWeight: 10}]
        analysis: {templates: [rate]}
`)
			ps := parseProblems(t, src)
			if len(ps) != 1 || !strings.HasPrefix(ps[0].String(), "cutover.yaml:7:28: analysisTemplates[0].metrics[0].minSamplesTimeout: "+v+" is not positive; write a positive duration such as 1m") {
				t.Fatalf("got %v, want one problem at minSamplesTimeout", ps)
			}
		})
	}
}

// readmeExample parses the README's last yaml example that has want and
// none of unless in it, failing unless it validates as it stands.
func readmeExample(t *testing.T, want string, unless ...string) *Config {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var example string
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		if strings.Contains(m[1], want) && !slices.ContainsFunc(unless, func(u string) bool { return strings.Contains(m[1], u) }) {
			example = m[1]
		}
	}
	if example == "" {
		t.Fatalf("README.md has no yaml example with %q", want)
	}
	c, err := Parse("README.md", []byte(example))
	if err != nil {
		t.Fatalf("the README's example with %q does not validate:\n%v", want, err)
	}
	return c
}

// The README's canary example is what users copy: it must validate as it
// stands, and its rollout must be able to end without a human.
func TestReadmeCanaryExampleIsValidAndEndsOnItsOwn(t *testing.T) {
	c := readmeExample(t, "canary:", "gatewayAPI:", "istio:", "haproxy:", "setMirrorRoute:")
	canary := c.Apps[0].Strategy.Canary
	if canary == nil || canary.Analysis == nil {
		t.Fatal("the README's canary example should show a background analysis")
	}
	for _, st := range canary.Steps {
		if st.Pause != nil && st.Pause.Duration == 0 {
			t.Errorf("step %+v waits for `cutover promote`; the example should finish on its own", st)
		}
	}
	for _, h := range [][]Hook{c.Apps[0].Hooks.ConfirmPromotion, c.Apps[0].Hooks.ConfirmTrafficIncrease} {
		if len(h) > 0 {
			t.Errorf("gate hooks %+v hold the rollout; the example should finish on its own", h)
		}
	}
}
