package controller

import (
	"fmt"
	"strings"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/router"
)

// Mirroring: a canary's setMirrorRoute step, and blue-green's
// prePromotionMirror from the preview to the flip, have the router copy a
// share of the requests stable serves to the revision under test and
// throw its answers away. The copies' answers count in that revision's
// window, so builtin analysis judges it on live traffic before any
// client is exposed to it. A canary's mirror lasts until a later
// setMirrorRoute (percent 0 ends it) or the rollout's end; it is part of
// the split canaryRun.publish swaps in, so an abort or promotion, which
// publishes a split without it, ends it in the same swap.

// Mirror is the router's mirror for m to backend b; nil when m is nil or
// copies nothing (percent 0).
func Mirror(m *config.MirrorRoute, b *router.Backend) (*router.Mirror, error) {
	if m == nil || m.Percent == 0 {
		return nil, nil
	}
	rm := &router.Mirror{Backend: b, Percent: m.Percent, Methods: m.Methods}
	for _, match := range []struct {
		route  *config.RouteMatch
		header bool
	}{{m.Header, true}, {m.Cookie, false}} {
		if match.route == nil {
			continue
		}
		mt, err := routerMatch(match.route, match.header)
		if err != nil {
			return nil, err
		}
		rm.Matches = append(rm.Matches, mt)
	}
	return rm, nil
}

// describeMirror says what m copies, for steps and events: "mirror 20%
// of requests with header X-Tenant (GET, POST)", or "mirror off".
func describeMirror(m *config.MirrorRoute) string {
	if m.Percent == 0 {
		return "mirror off"
	}
	s := fmt.Sprintf("mirror %d%% of requests", m.Percent)
	switch {
	case m.Header != nil:
		s += " with header " + m.Header.Name
	case m.Cookie != nil:
		s += " with cookie " + m.Cookie.Name
	}
	if len(m.Methods) > 0 {
		s += " (" + strings.Join(m.Methods, ", ") + ")"
	}
	return s
}

// mirrorOf is the mirror of the canary's steps done so far: the last
// setMirrorRoute's, or nil.
func (cr *canaryRun) mirrorOf() *router.Mirror {
	m, err := Mirror(cr.mirror, cr.canary.backend)
	if err != nil { // the config was validated; a bad one mirrors nothing
		cr.c.log.Error("canary mirror", "app", cr.a.name, "err", err)
	}
	return m
}

// mirrorPreview has the router copy m's share of the production requests,
// which stable serves, to the preview slot sr until the flip, and reports
// whether it does: not for a first deploy (no stable). The caller makes
// sure no traffic provider carries the requests instead.
func (p *progress) mirrorPreview(m *config.MirrorRoute, stable, sr *slotRun) bool {
	if m == nil || stable == nil {
		return false
	}
	rm, err := Mirror(m, sr.backend)
	if err != nil || rm == nil {
		if err != nil {
			p.c.log.Error("preview mirror", "app", p.a.name, "err", err)
		}
		return false
	}
	p.c.opts.Router.SetSplit(p.a.name, &router.Split{Stable: stable.backend, Mirror: rm})
	p.c.event(p.a, p.run.id, p.rev.Number, normal, "MirrorSet",
		fmt.Sprintf("%s to %s on slot %s until the flip; its answers are thrown away", describeMirror(m), p.rev.Version, sr.backend.Slot))
	return true
}
