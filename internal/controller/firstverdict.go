package controller

import (
	"sync"

	"github.com/cutover/cutover/internal/analysis"
)

// A canary reaches 100% only once its background analysis has judged it.
// With little traffic and short steps the steps can end before the first
// builtin measurement has its minSamples; without this wait the canary
// would be promoted unmeasured.

// firstVerdict is closed once the background analysis has judged the
// canary: every metric that decides has a measurement that passed or
// failed, or the analysis has handed the rollout a verdict.
type firstVerdict struct {
	once sync.Once
	done chan struct{}
}

func newFirstVerdict() *firstVerdict {
	return &firstVerdict{done: make(chan struct{})}
}

func (f *firstVerdict) close() {
	f.once.Do(func() { close(f.done) })
}

// observe is analysis.Run's update: it closes f once every metric that
// decides has measured the canary. A metric that has just decided against
// it leaves f open: its verdict comes through the background channel.
func (f *firstVerdict) observe(res analysis.Result) {
	for _, m := range res.Metrics {
		if m.DryRun {
			continue
		}
		if m.Successful+m.Failed == 0 || m.Phase == analysis.Failed || m.Phase == analysis.Error || m.Phase == analysis.Inconclusive {
			return
		}
	}
	f.close()
}

// awaitFirstVerdict holds the canary short of all the traffic until the
// background analysis has judged it, bounded as each measurement is by
// minSamplesTimeout (an Inconclusive verdict pauses for a human) and by
// the progress deadline. `cutover promote` ends the wait, and
// `promote --full` skips it.
func (cr *canaryRun) awaitFirstVerdict() error {
	if cr.cfg.Strategy.Canary.Analysis == nil || cr.fullPromotion() {
		return nil
	}
	select {
	case <-cr.judged.done:
		return cr.takePendingVerdict()
	default:
	}
	// The wait is progress of its own: a long pause step before it
	// leaves the deadline whole.
	cr.resetDeadline()
	cr.c.event(cr.a, cr.run.id, cr.rev.Number, normal, "AwaitingAnalysis",
		"the background analysis has not measured the canary yet; it gets all the traffic after a first verdict")
	skipped := false
	if err := cr.await(cr.judged.done, true, func() bool {
		skipped = cr.takeAdvance()
		return skipped
	}); err != nil {
		return err
	}
	if skipped {
		cr.c.event(cr.a, cr.run.id, cr.rev.Number, normal, "AnalysisSkipped", "the wait for a first background verdict skipped by `cutover promote`")
		return nil
	}
	return cr.takePendingVerdict()
}

// takePendingVerdict acts on a verdict the background analysis handed over
// just before it closed judged, still in the channel's buffer.
func (cr *canaryRun) takePendingVerdict() error {
	select {
	case res := <-cr.background:
		return cr.backgroundVerdict(res)
	default:
		return nil
	}
}
