package analysis

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/cutover/cutover/internal/config"
)

// conditions are a metric's success and failure conditions, compiled once
// per Run. A nil program means the condition is not set.
type conditions struct {
	success, failure       *vm.Program
	successSrc, failureSrc string
}

// conditionEnv is what a condition sees. Result is typed any because its
// type is known only at measurement time (float64, []float64, bool,
// string, map, ...), so the compiler checks it when the condition runs.
type conditionEnv struct {
	Result any `expr:"result"`
}

// conditionOptions compile a condition over conditionEnv.
func conditionOptions() []expr.Option {
	return []expr.Option{
		expr.Env(conditionEnv{}),
		expr.AsBool(),
		expr.Function("isNaN", isNaN),
		expr.Function("default", defaultValue),
	}
}

// compileConditions compiles m's conditions; the error names the one that
// does not compile.
func compileConditions(m config.AnalysisMetric) (conditions, error) {
	c := conditions{successSrc: m.SuccessCondition, failureSrc: m.FailureCondition}
	var err error
	if m.SuccessCondition != "" {
		if c.success, err = expr.Compile(m.SuccessCondition, conditionOptions()...); err != nil {
			return c, fmt.Errorf("compile successCondition %q: %w", m.SuccessCondition, err)
		}
	}
	if m.FailureCondition != "" {
		if c.failure, err = expr.Compile(m.FailureCondition, conditionOptions()...); err != nil {
			return c, fmt.Errorf("compile failureCondition %q: %w", m.FailureCondition, err)
		}
	}
	return c, nil
}

// set reports whether at least one condition is set.
func (c conditions) set() bool { return c.success != nil || c.failure != nil }

// judge gives the verdict on one result: a matching failure condition
// fails it; otherwise a matching success condition passes it; a success
// condition that does not match fails it when it stands alone and leaves it
// inconclusive beside a failure condition. Without conditions it passes.
func (c conditions) judge(result any) (Phase, string) {
	v := formatValue(result)
	env := conditionEnv{Result: result}
	if c.failure != nil {
		failed, err := evaluate(c.failure, env)
		if err != nil {
			return Error, fmt.Sprintf("evaluate failureCondition %q with result %s: %v", c.failureSrc, v, err)
		}
		if failed {
			return Failed, fmt.Sprintf("result %s matched failureCondition %q", v, c.failureSrc)
		}
	}
	if c.success == nil {
		if c.failure == nil {
			return Successful, fmt.Sprintf("result %s (no conditions)", v)
		}
		return Successful, fmt.Sprintf("result %s did not match failureCondition %q", v, c.failureSrc)
	}
	succeeded, err := evaluate(c.success, env)
	switch {
	case err != nil:
		return Error, fmt.Sprintf("evaluate successCondition %q with result %s: %v", c.successSrc, v, err)
	case succeeded:
		return Successful, fmt.Sprintf("result %s matched successCondition %q", v, c.successSrc)
	case c.failure == nil:
		return Failed, fmt.Sprintf("result %s did not match successCondition %q", v, c.successSrc)
	}
	return Inconclusive, fmt.Sprintf("result %s matched neither successCondition %q nor failureCondition %q", v, c.successSrc, c.failureSrc)
}

// evaluate runs a compiled condition; a non-boolean outcome is an error
// because the type of result is only known now.
func evaluate(p *vm.Program, env conditionEnv) (bool, error) {
	out, err := expr.Run(p, env)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("condition gave %s, not true or false", formatValue(out))
	}
	return b, nil
}

// isNaN is the conditions' isNaN(x): true for NaN, false for other numbers.
func isNaN(params ...any) (any, error) {
	if len(params) != 1 {
		return nil, fmt.Errorf("isNaN takes 1 argument, got %d", len(params))
	}
	switch x := params[0].(type) {
	case float64:
		return math.IsNaN(x), nil
	case float32:
		return math.IsNaN(float64(x)), nil
	case int, int64, int32, uint, uint64:
		return false, nil
	}
	return nil, fmt.Errorf("isNaN wants a number, got %s", formatValue(params[0]))
}

// defaultValue is the conditions' default(x, d): d when x is nil or NaN,
// else x.
func defaultValue(params ...any) (any, error) {
	if len(params) != 2 {
		return nil, fmt.Errorf("default takes 2 arguments, got %d", len(params))
	}
	if f, ok := params[0].(float64); params[0] == nil || ok && math.IsNaN(f) {
		return params[1], nil
	}
	return params[0], nil
}

// formatValue writes a result for humans: numbers as Go writes them, NaN
// as NaN, vectors as [a, b], other values as JSON.
func formatValue(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []float64:
		parts := make([]string, len(x))
		for i, f := range x {
			parts[i] = strconv.FormatFloat(f, 'g', -1, 64)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
