// Package gitops acts on what a CutoverApp's spec asks for, written by a
// user (or Argo CD, Flux), in the cutover holding the store:
//
//   - spec.app declares an app, an entry as under apps: in cutover.yaml
//     without its name: the app is added to the config file's apps (as a
//     reload of the file would add it), changed when spec.app changes,
//     and removed when spec.app is, or the object deleted. A spec.app
//     that does not apply leaves the running config as it is, and says
//     why in status.appError until it is fixed.
//   - spec.version is deployed as `cutover deploy` would, with the cause
//     "spec" in the history, and the outcome reported in
//     status.specDeploy.
//
// A spec is acted on once: a deploy refused for now (a rollout in
// progress, the store being upgraded) is tried again at the next resync;
// one refused for good (an image that does not parse) or a rollout that
// fails waits for the spec to change. What was acted on is recorded in
// status.specDeploy, so a restarted cutover does not deploy it again.
package gitops

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/store/kube"
)

// Cause is the cause of a spec's revision in the history.
const Cause = "spec"

// Phases of status.specDeploy besides the rollout's own.
const (
	Waiting = "Waiting"
	Failed  = "Failed"
)

// Resync is how often every CutoverApp is looked at again, even unchanged:
// the next try of a deploy that was refused for now.
const Resync = 10 * time.Second

// Deployer deploys and follows rollouts: the controller.
type Deployer interface {
	Deploy(app string, req controller.DeployRequest) (store.Rollout, error)
	WaitRollout(ctx context.Context, app string, id int64) (store.Rollout, error)
}

// Declarer applies the apps that CutoverApps declare: the daemon.
type Declarer interface {
	// Declare applies o's spec.app: it adds or changes o's app, or removes
	// it when o declares none any more. It is called at every resync too,
	// and does nothing when spec.app is the one applied. The error says
	// why the running config stays as it is.
	Declare(o kube.AppObject) error
	// Deleted removes the app of a deleted CutoverApp if it declared one.
	Deleted(name string)
}

// Store watches the CutoverApps and records status.specDeploy and
// status.appError.
type Store interface {
	WatchApps(ctx context.Context, resync time.Duration, seen func(kube.AppObject), gone func(name string), bad func(error))
	PutSpecDeploy(app string, d kube.SpecDeploy) error
	PutAppError(app, msg string) error
}

// Run applies the spec.app of st's CutoverApps with apps, and deploys
// their spec.version with d, until ctx is done.
func Run(ctx context.Context, st Store, d Deployer, apps Declarer, log *slog.Logger) {
	r := &runner{ctx: ctx, st: st, d: d, apps: apps, log: log, acted: map[string]kube.Spec{}, waiting: map[string]string{},
		followed: map[int64]bool{}, appErrors: map[string]string{}}
	st.WatchApps(ctx, Resync, r.seen, r.gone, func(err error) { log.Warn("gitops: skipping a CutoverApp", "err", err) })
}

type runner struct {
	ctx  context.Context
	st   Store
	d    Deployer
	apps Declarer
	log  *slog.Logger

	mu sync.Mutex
	// acted is the spec last acted on, by app: it is ahead of what the
	// watch shows of status.specDeploy.
	acted map[string]kube.Spec
	// waiting is the message last reported of a refused deploy, by app.
	waiting map[string]string
	// followed are the rollouts whose end is being waited for.
	followed map[int64]bool
	// appErrors is status.appError as last written, by app: it is ahead
	// of what the watch shows.
	appErrors map[string]string
}

// seen acts on one CutoverApp as the watch sees it: its spec.app first,
// so that a spec.version finds the app it is for.
func (r *runner) seen(o kube.AppObject) {
	r.declare(o)
	if o.Spec.Version == "" {
		return
	}
	r.mu.Lock()
	acted, ok := r.acted[o.Name]
	if !ok && o.SpecDeploy != nil && o.SpecDeploy.Phase != Waiting {
		acted, ok = o.SpecDeploy.Spec, true
		r.acted[o.Name] = acted
		if o.SpecDeploy.Phase == string(store.RolloutProgressing) || o.SpecDeploy.Phase == string(store.RolloutPaused) {
			r.follow(o.Name, *o.SpecDeploy) // started by a previous cutover
		}
	}
	r.mu.Unlock()
	if ok && acted == o.Spec {
		return
	}
	if o.Spec.Version == o.ActiveVersion {
		r.mu.Lock()
		r.acted[o.Name] = o.Spec
		r.mu.Unlock()
		return
	}
	r.deploy(o.Name, o.Spec)
}

// deploy starts the rollout of spec and records what became of it.
func (r *runner) deploy(app string, spec kube.Spec) {
	ro, err := r.d.Deploy(app, controller.DeployRequest{Version: spec.Version, Image: spec.Image, Cause: Cause})
	rep := kube.SpecDeploy{Spec: spec, Time: time.Now()}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil:
		r.acted[app] = spec
		delete(r.waiting, app)
		rep.Phase, rep.Rollout = ro.Phase, ro.ID
		r.log.Info("gitops: deploying the spec of CutoverApp "+app, "version", spec.Version, "rollout", ro.ID)
		r.follow(app, rep)
	case errors.Is(err, controller.ErrInvalid):
		r.acted[app] = spec
		delete(r.waiting, app)
		rep.Phase, rep.Message = Failed, err.Error()
		r.log.Warn("gitops: the spec of CutoverApp "+app+" cannot be deployed; waiting for another spec", "version", spec.Version, "err", err)
	default:
		if r.waiting[app] == err.Error() {
			return // reported already
		}
		r.waiting[app] = err.Error()
		rep.Phase, rep.Message = Waiting, err.Error()
		r.log.Info("gitops: the deploy of CutoverApp "+app+"'s spec waits", "version", spec.Version, "err", err)
	}
	r.report(app, rep)
}

// follow waits, in the background, for the end of the rollout rep reports
// and reports its outcome. Callers hold r.mu.
func (r *runner) follow(app string, rep kube.SpecDeploy) {
	if rep.Rollout == 0 || r.followed[rep.Rollout] {
		return
	}
	r.followed[rep.Rollout] = true
	go func() {
		ro, err := r.d.WaitRollout(r.ctx, app, rep.Rollout)
		if err != nil {
			return // stopping, or a newer rollout replaced it
		}
		rep.Phase, rep.Message, rep.Time = ro.Phase, ro.Message, time.Now()
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.acted[app] == rep.Spec {
			r.report(app, rep)
		}
	}()
}

// report records rep in app's status.
func (r *runner) report(app string, rep kube.SpecDeploy) {
	if err := r.st.PutSpecDeploy(app, rep); err != nil {
		r.log.Error("gitops: report in CutoverApp "+app, "err", err)
	}
}

// declare applies o's spec.app and reports, in status.appError, why it
// does not apply, or that it does again.
func (r *runner) declare(o kube.AppObject) {
	msg := ""
	if err := r.apps.Declare(o); err != nil {
		msg = err.Error()
	}
	r.mu.Lock()
	written, ok := r.appErrors[o.Name]
	if !ok {
		written = o.AppError
	}
	if msg == written {
		r.mu.Unlock()
		return
	}
	r.appErrors[o.Name] = msg
	r.mu.Unlock()
	if msg != "" {
		r.log.Warn("gitops: the spec.app of CutoverApp "+o.Name+" is not applied; the running config stays", "err", msg)
	} else {
		r.log.Info("gitops: applied the spec.app of CutoverApp " + o.Name)
	}
	if err := r.st.PutAppError(o.Name, msg); err != nil {
		r.log.Error("gitops: report in CutoverApp "+o.Name, "err", err)
		r.mu.Lock()
		delete(r.appErrors, o.Name) // try again at the next resync
		r.mu.Unlock()
	}
}

// gone removes the app a deleted CutoverApp declared, and forgets what
// was acted on of its spec: an object created again starts afresh.
func (r *runner) gone(name string) {
	r.apps.Deleted(name)
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.acted, name)
	delete(r.waiting, name)
	delete(r.appErrors, name)
}
