package analysis

import (
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
)

func shellMetric(script string) config.AnalysisMetric {
	return config.AnalysisMetric{
		Name:     "cmd",
		Provider: config.MetricProvider{Command: &config.CommandProvider{Command: []string{"/bin/sh", "-c", script}}},
		Interval: fast,
		Count:    1,
	}
}

func TestCommandProvider(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, script, success, failure string
		args                           []string
		want                           Phase
		value                          string
	}{
		{"exit 0 passes", "exit 0", "", "", nil, Successful, "true"},
		{"exit 1 fails without conditions", "echo bad >&2; exit 1", "", "", nil, Failed, "false"},
		{"exit 1 with conditions lets them decide", "exit 1", "result == false", "", nil, Successful, "false"},
		{"exit 0 against a condition on exit", "exit 0", "", "result == true", nil, Failed, "true"},
		{"JSON stdout is the result", `echo '{"rate": 0.5}'`, "", "result.rate < 0.9", nil, Failed, `{"rate":0.5}`},
		{"JSON number", "echo 0.99", "result > 0.95", "", nil, Successful, "0.99"},
		{"JSON stdout with exit 1 and conditions", `echo '{"rate": 0.99}'; exit 1`, "result.rate > 0.95", "", nil, Successful, `{"rate":0.99}`},
		{"text stdout gives the exit status", "echo hello", "result", "", nil, Successful, "true"},
		{"args are templated", `test "$0" = web`, "", "", []string{"{{args.app}}"}, Successful, "true"},
		{"runs in Env.Dir", `test "$(pwd)" = "` + dir + `"`, "", "", nil, Successful, "true"},
		{"stdin is empty", `test -z "$(cat)"`, "", "", nil, Successful, "true"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := shellMetric(c.script)
			m.Provider.Command.Command = append(m.Provider.Command.Command, c.args...)
			m.SuccessCondition, m.FailureCondition = c.success, c.failure
			res := runMetrics(t, t.Context(), Env{Dir: dir, Args: map[string]string{"app": "web"}}, m)
			got := res.Metrics[0]
			if res.Phase != c.want || got.Last == nil || got.Last.Value != c.value {
				t.Fatalf("got %s, want %s with value %s", Describe(res), c.want, c.value)
			}
		})
	}
}

func TestCommandFailureMessageGivesExitAndStderr(t *testing.T) {
	res := runMetrics(t, t.Context(), Env{}, shellMetric("echo 'canary is broken' >&2; exit 3"))
	if res.Phase != Failed || !strings.Contains(res.Message, "exit status 3") || !strings.Contains(res.Message, "canary is broken") {
		t.Fatalf("got %s, want the exit status and stderr", Describe(res))
	}
}

func TestCommandThatCannotStartIsAnErrorMeasurement(t *testing.T) {
	m := shellMetric("")
	m.Provider.Command.Command = []string{"/nonexistent/check"}
	m.ConsecutiveErrorLimit = intp(0)
	res := runMetrics(t, t.Context(), Env{}, m)
	if res.Phase != Error || res.Metrics[0].Errors != 1 || res.Metrics[0].Failed != 0 {
		t.Fatalf("got %s, want one Error measurement", Describe(res))
	}
}

func TestCommandTimeoutIsAnError(t *testing.T) {
	p, err := newCommandProvider(&config.CommandProvider{Command: []string{"/bin/sh", "-c", "sleep 10"}, Timeout: config.Duration(50 * time.Millisecond)}, nil, "", true)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.measure(t.Context())
	if err == nil || !strings.Contains(err.Error(), "timed out after 50ms") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if _, ok := asVerdict(err); ok {
		t.Fatalf("a timeout is a provider error, not a verdict")
	}
}
