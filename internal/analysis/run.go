package analysis

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/cutover/cutover/internal/config"
)

// Run measures every metric of the templates ref names (found in all)
// concurrently, each in a goroutine that Run owns and stops before it
// returns, and calls update (when not nil, never concurrently) after each
// measurement. It returns:
//
//   - as soon as a metric that is not a dry run ends Failed, Error or
//     Inconclusive, with that phase (Failed beats Error beats Inconclusive);
//     the other metrics are stopped and keep the phase they had;
//   - when every metric with a Count that is not a dry run has a verdict:
//     Successful when they all passed; metrics without a Count that have
//     not failed count as Successful;
//   - when ctx ends: metrics without a Count that have not failed count as
//     Successful, metrics still short of their Count as Inconclusive, and
//     the analysis is Inconclusive when nothing was measured at all.
//
// A missing template, an argument without a value, a condition that does
// not compile or a provider that cannot be built is an Error verdict.
// Dry-run metrics are measured and reported but never decide.
func Run(ctx context.Context, all []config.AnalysisTemplate, ref config.AnalysisRef, env Env, update func(Result)) Result {
	templates, args, err := Resolve(all, ref, env.Args)
	if err != nil {
		return Result{Phase: Error, Message: err.Error()}
	}
	var board scoreboard
	var runs []*metricRun
	for _, t := range templates {
		for _, m := range t.Metrics {
			res := MetricResult{Name: m.Name, Template: t.Name, Phase: Pending, DryRun: m.DryRun}
			r, err := newMetricRun(m, args, env)
			if err != nil {
				res.Phase, res.Message = Error, fmt.Sprintf("%s: %v", res.label(), err)
			} else {
				r.index, r.res = len(board.results), res
				runs = append(runs, r)
			}
			board.specs = append(board.specs, m)
			board.results = append(board.results, res)
		}
	}
	if len(board.results) == 0 {
		return Result{Phase: Successful, Message: "templates " + strings.Join(ref.Templates, ", ") + " have no metrics"}
	}
	if board.decided() {
		return board.conclude(ctx)
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	type event struct {
		index int
		res   MetricResult
	}
	events := make(chan event)
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Go(func() {
			r.run(runCtx, func(res MetricResult) { events <- event{r.index, res} })
		})
	}
	go func() {
		wg.Wait()
		close(events)
	}()
	// Drain every event so no metric goroutine blocks on its report; once
	// the verdict is in, later measurements are ignored so the result
	// stays the one that decided.
	stopped := false
	for ev := range events {
		if stopped {
			continue
		}
		board.results[ev.index] = ev.res
		if update != nil {
			update(Result{Phase: Running, Message: progressMessage(ev.res), Metrics: slices.Clone(board.results)})
		}
		if board.decided() {
			stopped = true
			stop()
		}
	}
	return board.conclude(ctx)
}

// scoreboard holds every metric of an analysis and its state, in order.
type scoreboard struct {
	specs   []config.AnalysisMetric
	results []MetricResult
}

// decided reports whether the analysis has its verdict before ctx ends:
// a metric that is not a dry run ended badly, or every such metric with a
// Count, and there is one, has a verdict.
func (b *scoreboard) decided() bool {
	counted, open := 0, 0
	for i, m := range b.results {
		if m.DryRun {
			continue
		}
		if m.Phase.severity() > 0 {
			return true
		}
		if b.specs[i].Count > 0 {
			counted++
			if !m.Phase.done() {
				open++
			}
		}
	}
	return counted > 0 && open == 0
}

// worst is the index of the metric that is not a dry run with the most
// severe bad verdict (the first of equals), or -1.
func (b *scoreboard) worst() int {
	worst := -1
	for i, m := range b.results {
		if m.DryRun || m.Phase.severity() == 0 {
			continue
		}
		if worst < 0 || m.Phase.severity() > b.results[worst].Phase.severity() {
			worst = i
		}
	}
	return worst
}

// conclude gives the metrics still open their final phase and the analysis
// its verdict.
func (b *scoreboard) conclude(ctx context.Context) Result {
	if i := b.worst(); i >= 0 {
		return b.result(b.results[i].Phase, b.results[i].Message)
	}
	measured, judged := 0, 0
	for i := range b.results {
		m := &b.results[i]
		if want := b.specs[i].Count; !m.Phase.done() && want > 0 {
			m.Phase = Inconclusive
			m.Message = fmt.Sprintf("%s inconclusive: the analysis ended after %d of %d measurements", m.label(), m.Count, want)
		} else if !m.Phase.done() {
			m.Phase = Successful
			m.Message = fmt.Sprintf("%s successful: %d measurements passed until the analysis ended", m.label(), m.Successful)
		}
		if !m.DryRun {
			measured += m.Count
			judged++
		}
	}
	if i := b.worst(); i >= 0 {
		return b.result(b.results[i].Phase, b.results[i].Message)
	}
	if judged > 0 && measured == 0 {
		return b.result(Inconclusive, fmt.Sprintf("the analysis ended before any measurement (%v)", context.Cause(ctx)))
	}
	msg := "1 metric successful"
	if judged != 1 {
		msg = fmt.Sprintf("%d metrics successful", judged)
	}
	for _, m := range b.results {
		if m.DryRun && m.Phase != Successful {
			msg += "; dry run: " + m.Message
		}
	}
	return b.result(Successful, msg)
}

// result is the analysis' result with a copy of the metrics.
func (b *scoreboard) result(p Phase, msg string) Result {
	return Result{Phase: p, Message: msg, Metrics: slices.Clone(b.results)}
}

// progressMessage describes the latest measurement for update.
func progressMessage(m MetricResult) string {
	if m.Last == nil {
		return ""
	}
	return fmt.Sprintf("%s: %s", m.label(), m.Last.Message)
}
