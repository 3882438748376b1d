package analysis

import (
	"context"
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/config"
)

// metricRun measures one metric until it has a verdict or its context
// ends. Its result is owned by the goroutine running it; the owner gets
// copies.
type metricRun struct {
	index    int
	metric   config.AnalysisMetric
	conds    conditions
	provider provider
	errLimit int
	res      MetricResult
}

// newMetricRun compiles m's conditions and builds its provider.
func newMetricRun(m config.AnalysisMetric, args map[string]string, env Env) (*metricRun, error) {
	conds, err := compileConditions(m)
	if err != nil {
		return nil, err
	}
	p, err := newProvider(m, args, env, !conds.set())
	if err != nil {
		return nil, err
	}
	limit := defaultConsecutiveErrorLimit
	if m.ConsecutiveErrorLimit != nil {
		limit = *m.ConsecutiveErrorLimit
	}
	return &metricRun{metric: m, conds: conds, provider: p, errLimit: limit}, nil
}

// run waits InitialDelay, then measures at the end of every Interval
// and calls report after each measurement, until the metric has a verdict
// or ctx ends. The first measurement too waits one Interval: taken at
// once, it would judge the traffic from before the step began. A
// measurement cut short by ctx is dropped: it says nothing about the
// revision.
func (r *metricRun) run(ctx context.Context, report func(MetricResult)) {
	interval := orDefault(r.metric.Interval, defaultInterval)
	if !sleep(ctx, r.metric.InitialDelay.D()+interval) {
		return
	}
	for {
		start := time.Now()
		value, err := r.provider.measure(ctx)
		if ctx.Err() != nil {
			return
		}
		r.record(r.judge(start, value, err))
		report(r.res)
		if r.res.Phase.done() || !sleep(ctx, interval-time.Since(start)) {
			return
		}
	}
}

// judge turns a provider's answer into a measurement.
func (r *metricRun) judge(start time.Time, value any, err error) Measurement {
	m := Measurement{Time: start}
	if v, ok := asVerdict(err); ok {
		m.Phase, m.Message = v.phase, v.reason
		if v.value != nil {
			m.Value = formatValue(v.value)
		}
		return m
	}
	if err != nil {
		m.Phase, m.Message = Error, err.Error()
		return m
	}
	m.Value = formatValue(value)
	m.Phase, m.Message = r.conds.judge(value)
	return m
}

// record counts m and sets the metric's phase from its limits.
func (r *metricRun) record(m Measurement) {
	res := &r.res
	res.Last = &m
	if m.Phase == Error {
		res.Errors++
		res.ConsecutiveErrors++
	} else {
		res.Count++
		res.ConsecutiveErrors = 0
	}
	switch m.Phase {
	case Successful:
		res.Successful++
	case Failed:
		res.Failed++
	case Inconclusive:
		res.Inconclusive++
	}

	label, met := res.label(), r.metric
	switch {
	case res.Failed > met.FailureLimit:
		res.Phase = Failed
		res.Message = fmt.Sprintf("%s failed: %s (%d failed > failureLimit %d)", label, m.Message, res.Failed, met.FailureLimit)
	case res.Inconclusive > met.InconclusiveLimit:
		res.Phase = Inconclusive
		res.Message = fmt.Sprintf("%s inconclusive: %s (%d inconclusive > inconclusiveLimit %d)", label, m.Message, res.Inconclusive, met.InconclusiveLimit)
	case res.ConsecutiveErrors > r.errLimit:
		res.Phase = Error
		res.Message = fmt.Sprintf("%s errored: %s (%d errors in a row > consecutiveErrorLimit %d)", label, m.Message, res.ConsecutiveErrors, r.errLimit)
	case met.Count > 0 && res.Count >= met.Count:
		res.Phase = Successful
		res.Message = fmt.Sprintf("%s successful: %d of %d measurements passed; last %s", label, res.Successful, res.Count, m.Message)
	default:
		res.Phase = Running
	}
}

// sleep waits d, or less when ctx ends first; it reports whether the
// caller should go on.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
