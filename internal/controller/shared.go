package controller

import (
	"context"
	"path/filepath"
	"time"

	"github.com/cutover/cutover/internal/analysis"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/hooks"
	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/store"
)

// shared is the config every app's rollouts use: analysis templates and
// notification receivers. Guarded by Controller.mu.
type shared struct {
	templates []config.AnalysisTemplate
	notifier  *hooks.Notifier
}

// setShared takes the templates and notifications of a (re)loaded config.
func (c *Controller) setShared(cfg *config.Config) {
	n := hooks.NewNotifier(cfg.Notifications, nil, c.log)
	c.mu.Lock()
	old := c.shared.notifier
	c.shared = shared{templates: cfg.AnalysisTemplates, notifier: n}
	c.mu.Unlock()
	if old != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		old.Close(ctx)
	}
}

func (c *Controller) templates() []config.AnalysisTemplate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shared.templates
}

// notify sends a rollout notice to the configured receivers; it never blocks.
func (c *Controller) notify(a *app, event string, rollout int64, rev store.Revision, msg string) {
	c.mu.Lock()
	n := c.shared.notifier
	c.mu.Unlock()
	n.Notify(hooks.Notice{Event: event, App: a.name, Version: rev.Version, Revision: rev.Number,
		Rollout: rollout, Message: msg, Time: time.Now()})
}

// hookPayload is the JSON a hook receives: the app's recorded state and
// the revision being rolled out.
func (c *Controller) hookPayload(a *app, rollout int64, rev store.Revision, point string) any {
	a.mu.Lock()
	defer a.mu.Unlock()
	return map[string]any{"hook": point, "app": a.name, "rollout": a.state.Rollout, "revision": rev,
		"activeSlot": a.state.ActiveSlot}
}

func (c *Controller) hookInfo(a *app, cfg config.App, rev store.Revision, point string) hooks.Info {
	return hooks.Info{Point: point, App: a.name, Version: rev.Version, Revision: rev.Number, Dir: processDir(cfg)}
}

// processDir is where hook and analysis commands run: the app's process
// directory, or the current one.
func processDir(cfg config.App) string {
	if p := cfg.Target.Process; p != nil && p.Dir != "" {
		return filepath.Clean(p.Dir)
	}
	return ""
}

// timings returns the strategy's scale-down delay, drain timeout and
// abort scale-down delay.
func timings(cfg config.App) (scaleDown, drain, abortScaleDown time.Duration) {
	if cc := cfg.Strategy.Canary; cc != nil {
		return cc.ScaleDownDelay.D(), cc.DrainTimeout.D(), cc.AbortScaleDownDelay.D()
	}
	if bg := cfg.Strategy.BlueGreen; bg != nil {
		return bg.ScaleDownDelay.D(), bg.DrainTimeout.D(), 0
	}
	if rc := cfg.Strategy.Recreate; rc != nil {
		// The stable revision is stopped before the new one starts:
		// nothing is kept warm after the flip.
		return 0, rc.DrainTimeout.D(), 0
	}
	return 30 * time.Second, 30 * time.Second, 0
}

// windowSource feeds a backend's router window to the builtin analysis
// provider.
type windowSource struct{ m *metrics.BackendMetrics }

func (w windowSource) Stats(span time.Duration) analysis.Stats {
	s := w.m.Window().Stats(span)
	return analysis.Stats{Requests: s.Requests, Errors: s.Errors, P50: s.P50, P90: s.P90, P99: s.P99}
}
