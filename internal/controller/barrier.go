package controller

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/cutover/cutover/internal/store"
)

// Rollback barriers. A revision marked as one (`deploy --barrier REASON`,
// or a beforeInstall hook's "cutover-barrier: REASON" line) changed
// something the revisions before it may not survive, such as the contract
// step of a schema migration. So:
//
//   - `cutover rollback` (and `abort` while it bakes) to a revision older
//     than a barrier is refused unless forced, whichever revision serves
//     now: a barrier that was rolled back from, or that failed after its
//     migration ran, still counts;
//   - once a barrier revision has the traffic, a failure that would flip
//     back past it (its bake, its post-promotion analysis, the warm
//     guard) holds instead: the rollout pauses (BarrierHold) until a human
//     keeps it (`cutover promote`) or flips back (`rollback --force`);
//   - before the traffic moves nothing changes: the older revision served
//     all along, after the migration too, so a deploy that fails before
//     its flip and a canary that aborts leave the traffic on it as ever.

// pauseBarrierHold is the PauseReason of a rollout held at a barrier.
const pauseBarrierHold = "BarrierHold"

// errKeptAtBarrier ends a rollout held at a barrier that a human kept: it
// failed, but its revision keeps the traffic.
var errKeptAtBarrier = errors.New("kept the traffic at its rollback barrier")

// withBarrier returns rev with the barrier a hook declared for it in st,
// unless deploy gave it one.
func withBarrier(rev store.Revision, st store.AppState) store.Revision {
	if rev.Barrier == "" {
		rev.Barrier = st.Barriers[rev.Number]
	}
	return rev
}

// barrierAfter returns the newest rollback barrier among a's revisions
// newer than target. Callers hold a.mu.
func (c *Controller) barrierAfter(a *app, target int) (store.Revision, bool, error) {
	revs, err := c.opts.Store.Revisions(a.name)
	if err != nil {
		return store.Revision{}, false, fmt.Errorf("read revisions: %w", err)
	}
	for i := len(revs) - 1; i >= 0 && revs[i].Number > target; i-- {
		if r := withBarrier(revs[i], a.state); r.Barrier != "" {
			return r, true, nil
		}
	}
	return store.Revision{}, false, nil
}

// describeBarrier names barrier b as the refusals and events say it.
func describeBarrier(b store.Revision) string {
	return fmt.Sprintf("revision %d (%s) is a rollback barrier: %s", b.Number, b.Version, b.Barrier)
}

// passBarrier checks a rollback of a to revision to against its barriers.
// Without force, a barrier newer than to refuses it (ErrConflict); with
// force, note says which barrier was passed ("" when none). Callers hold a.mu.
func (c *Controller) passBarrier(a *app, to int, force bool) (note string, err error) {
	b, found, err := c.barrierAfter(a, to)
	switch {
	case err != nil:
		return "", err
	case !found:
		return "", nil
	case !force:
		return "", fmt.Errorf("%w: %s; rolling back past it may break on the new schema; use --force if you are sure", ErrConflict, describeBarrier(b))
	}
	return fmt.Sprintf("`--force`: rolling back to revision %d past the rollback barrier of revision %d (%s): %s", to, b.Number, b.Version, b.Barrier), nil
}

// hookBarrier turns the reason a beforeInstall hook declared into one
// that store.CheckBarrier accepts: control characters become spaces, a
// long one is cut, and an empty one says where it came from.
func hookBarrier(reason string) string {
	reason = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, strings.ToValidUTF8(reason, "?"))
	reason = strings.TrimSpace(reason)
	if r := []rune(reason); len(r) > store.MaxBarrierLen {
		reason = string(r[:store.MaxBarrierLen-1]) + "…"
	}
	if reason == "" {
		return "declared by the beforeInstall hook"
	}
	return reason
}

// declareBarrier records that a beforeInstall hook declared the rollout's
// revision a rollback barrier.
func (p *progress) declareBarrier(reason string) {
	reason = hookBarrier(reason)
	p.a.mu.Lock()
	err := p.c.save(p.a, func(st *store.AppState) {
		barriers := make(map[int]string, len(st.Barriers)+1)
		for n, r := range st.Barriers {
			barriers[n] = r
		}
		barriers[p.rev.Number] = reason
		st.Barriers = barriers
	})
	p.a.mu.Unlock()
	if err != nil {
		p.c.log.Error("record a rollback barrier", "app", p.a.name, "revision", p.rev.Number, "err", err)
	}
	p.c.event(p.a, p.run.id, p.rev.Number, warning, "BarrierDeclared",
		fmt.Sprintf("the beforeInstall hook declared %s (revision %d) a rollback barrier: %s; rolling back past it needs --force", p.rev.Version, p.rev.Number, reason))
}

// holdAtBarrier is called, while the rollout still bakes, when cause would
// flip the traffic back from p.rev to the previous revision. When a
// rollback barrier lies between them the rollout pauses for a human
// instead (BarrierHold): `cutover promote` (or resume) keeps p.rev and
// the rollout ends failed (errKeptAtBarrier); `cutover rollback --force`
// flips back (its cancel cause is returned). Otherwise it returns cause.
func (c *Controller) holdAtBarrier(p *progress, cause error) error {
	a := p.a
	a.mu.Lock()
	prevN := a.state.PreviousRevision
	b, found, err := c.barrierAfter(a, prevN)
	a.mu.Unlock()
	if err != nil {
		c.log.Error("look for a rollback barrier before flipping back; flipping back", "app", a.name, "err", err)
		return cause
	}
	if !found {
		return cause
	}
	prev := fmt.Sprintf("revision %d", prevN)
	if r, ok, err := c.opts.Store.Revision(a.name, prevN); err == nil && ok {
		prev = fmt.Sprintf("%s (revision %d)", r.Version, prevN)
	}
	c.event(a, p.run.id, p.rev.Number, warning, "BarrierHold",
		fmt.Sprintf("%v; not flipping back to %s: %s", cause, prev, describeBarrier(b)))
	err = p.pauseFor(pauseBarrierHold,
		fmt.Sprintf("%s keeps the traffic and waits for a human: `cutover promote %s` keeps it and ends this rollout (then deploy a fix), or `cutover rollback %s --force` flips back to %s anyway",
			p.rev.Version, a.name, a.name, prev))
	if err != nil {
		return err
	}
	return fmt.Errorf("%w; %s (revision %d) %w (%s): a human kept it", cause, p.rev.Version, p.rev.Number, errKeptAtBarrier, b.Barrier)
}
