// Package analysis decides whether a revision is healthy enough to go on.
//
// An analysis runs the metrics of one or more config.AnalysisTemplates, each
// metric in its own goroutine: at the end of every Interval it takes a
// measurement from its provider (the router's own traffic windows, a
// Prometheus query, a web call or a command; a builtin measurement waits
// for MinSamples requests, up to MinSamplesTimeout), judges the value with
// the metric's success and failure conditions (expr-lang expressions over
// result), and counts the verdicts against the metric's limits. The
// semantics are Argo Rollouts': a metric fails when it has more failed
// measurements than FailureLimit, is inconclusive with more inconclusive
// ones than InconclusiveLimit, and errs with more provider errors in a row
// than ConsecutiveErrorLimit. Run returns the verdict of the whole
// analysis; Describe puts it on one line.
package analysis

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Phase is the state of a measurement, a metric or a whole analysis.
type Phase string

// The phases, in Argo Rollouts' words.
const (
	// Pending: nothing measured yet.
	Pending Phase = "Pending"
	// Running: measured, no verdict yet.
	Running Phase = "Running"
	// Successful: the conditions hold.
	Successful Phase = "Successful"
	// Failed: the conditions say the revision is bad.
	Failed Phase = "Failed"
	// Inconclusive: the conditions (or too little traffic) cannot tell.
	Inconclusive Phase = "Inconclusive"
	// Error: the provider could not measure, or the metric is misconfigured.
	Error Phase = "Error"
)

// done reports whether p is a verdict rather than a state on the way to one.
func (p Phase) done() bool {
	return p == Successful || p == Failed || p == Inconclusive || p == Error
}

// severity orders verdicts: Failed beats Error beats Inconclusive beats the rest.
func (p Phase) severity() int {
	switch p {
	case Failed:
		return 3
	case Error:
		return 2
	case Inconclusive:
		return 1
	}
	return 0
}

// Env is what the caller gives an analysis besides its templates.
type Env struct {
	// Args are the arguments the controller knows (app, version,
	// stableVersion, slot, ...); a template's defaults yield to them and
	// they yield to the analysis ref's args.
	Args map[string]string
	// Builtin is the router's traffic of the revision under analysis. When
	// nil, every builtin measurement is an Error ("no router window").
	Builtin StatsSource
	// HTTP is the client of the web and prometheus providers. When nil,
	// each web metric gets a client with its provider's timeout and
	// Prometheus queries use the default transport; the provider's timeout
	// bounds every request either way.
	HTTP *http.Client
	// Dir is the working directory of command providers; empty means the
	// current directory.
	Dir string
}

// Measurement is one judged value of a metric.
type Measurement struct {
	// Time is when the measurement started.
	Time time.Time
	// Value is the provider's result as text (JSON for structured values);
	// empty when the provider errored.
	Value string
	// Phase is the verdict on this one measurement.
	Phase Phase
	// Message says why: the condition matched, the provider's error, or
	// too little traffic.
	Message string
}

// MetricResult is the state of one metric of an analysis.
type MetricResult struct {
	// Name is the metric's name and Template the template it belongs to.
	Name, Template string
	// Phase is Pending before the first measurement, Running until a
	// verdict. A metric stopped because another one failed keeps the phase it
	// had.
	Phase Phase
	// DryRun metrics are measured and judged but never decide the analysis.
	DryRun bool
	// Count is the number of measurements that did not err (Successful +
	// Failed + Inconclusive); Errors counts the others and
	// ConsecutiveErrors those since the last measurement that did not err.
	Count, Successful, Failed, Inconclusive, Errors, ConsecutiveErrors int
	// Last is the latest measurement; nil before the first.
	Last *Measurement
	// Message explains Phase once the metric has a verdict.
	Message string
}

// label names the metric in messages.
func (m MetricResult) label() string {
	return fmt.Sprintf("metric %q (template %s)", m.Name, m.Template)
}

// Result is the state, and in the end the verdict, of an analysis.
type Result struct {
	// Phase is Running while measuring and a verdict once Run returns.
	Phase Phase
	// Message says which metric decided, with which value and condition.
	Message string
	// Metrics are in template order, then metric order.
	Metrics []MetricResult
}

// Describe puts r on one line for logs, events and the CLI:
// the verdict, its reason, then each metric's counts and last value.
func Describe(r Result) string {
	var b strings.Builder
	b.WriteString(string(r.Phase))
	if r.Message != "" {
		b.WriteString(": ")
		b.WriteString(r.Message)
	}
	for i, m := range r.Metrics {
		if i == 0 {
			b.WriteString(" — ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(describeMetric(m))
	}
	return b.String()
}

// describeMetric is one metric's part of Describe, such as
// `success-rate Failed (3 measured: 1 successful, 2 failed; last 0.42)`.
func describeMetric(m MetricResult) string {
	var b strings.Builder
	b.WriteString(m.Name)
	if m.DryRun {
		b.WriteString(" [dry run]")
	}
	fmt.Fprintf(&b, " %s (%d measured", m.Phase, m.Count)
	sep := ": "
	for _, c := range []struct {
		n    int
		what string
	}{{m.Successful, "successful"}, {m.Failed, "failed"}, {m.Inconclusive, "inconclusive"}, {m.Errors, "errors"}} {
		if c.n > 0 {
			fmt.Fprintf(&b, "%s%d %s", sep, c.n, c.what)
			sep = ", "
		}
	}
	if m.Last != nil && m.Last.Value != "" {
		fmt.Fprintf(&b, "; last %s", m.Last.Value)
	}
	b.WriteString(")")
	return b.String()
}
