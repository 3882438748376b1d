package analysis

import (
	"math"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/config"
)

func TestConditionsJudgeResultsLikeArgoRollouts(t *testing.T) {
	cases := []struct {
		name             string
		success, failure string
		result           any
		want             Phase
	}{
		{"only success, true", "result >= 0.95", "", 0.99, Successful},
		{"only success, false", "result >= 0.95", "", 0.5, Failed},
		{"only failure, true", "", "result < 0.95", 0.5, Failed},
		{"only failure, false", "", "result < 0.95", 0.99, Successful},
		{"both, failure true", "result >= 0.95", "result < 0.5", 0.1, Failed},
		{"both, success true", "result >= 0.95", "result < 0.5", 0.99, Successful},
		{"both, neither true", "result >= 0.95", "result < 0.5", 0.7, Inconclusive},
		{"both true: failure wins", "result > 0", "result > 0", 1.0, Failed},
		{"neither condition", "", "", 0.1, Successful},
		{"isNaN of an empty query", "", "isNaN(result)", math.NaN(), Failed},
		{"isNaN of a number", "", "isNaN(result)", 3.0, Successful},
		{"default replaces NaN", "default(result, 0) < 1", "", math.NaN(), Successful},
		{"default replaces nil", "default(result, 7) == 7", "", nil, Successful},
		{"default keeps a number", "default(result, 0) < 1", "", 5.0, Failed},
		{"vector all", "all(result, {# < 1})", "", []float64{0.1, 0.2}, Successful},
		{"vector element", "", "result[1] > 0.5", []float64{0.1, 0.9}, Failed},
		{"vector length", "len(result) == 2", "", []float64{0.1, 0.9}, Successful},
		{"boolean", "result == true", "", true, Successful},
		{"JSON object", "result.ok && result.rate > 0.9", "", map[string]any{"ok": true, "rate": 0.95}, Successful},
		{"string", "result == 'green'", "", "red", Failed},
		{"type mismatch is an error", "result < 1", "", "text", Error},
		{"non-boolean outcome is an error", "result", "", 0.5, Error},
		{"isNaN of a string is an error", "", "isNaN(result)", "x", Error},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conds, err := compileConditions(config.AnalysisMetric{SuccessCondition: c.success, FailureCondition: c.failure})
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			got, msg := conds.judge(c.result)
			if got != c.want {
				t.Fatalf("judge(%v) = %s (%s), want %s", c.result, got, msg, c.want)
			}
		})
	}
}

func TestConditionThatDoesNotCompileNamesItself(t *testing.T) {
	_, err := compileConditions(config.AnalysisMetric{SuccessCondition: "result >= 0.9", FailureCondition: "result <"})
	if err == nil || !strings.Contains(err.Error(), `failureCondition "result <"`) {
		t.Fatalf("err = %v, want one naming the failureCondition", err)
	}
}

func TestJudgeMessageNamesValueAndCondition(t *testing.T) {
	conds, err := compileConditions(config.AnalysisMetric{FailureCondition: "result < 0.95"})
	if err != nil {
		t.Fatal(err)
	}
	_, msg := conds.judge(0.42)
	if want := `result 0.42 matched failureCondition "result < 0.95"`; msg != want {
		t.Fatalf("message = %q, want %q", msg, want)
	}
}
