package daemon

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/follow"
	"github.com/cutover/cutover/internal/store/kube"
)

// followResync re-reads every CutoverApp a standby follows this often, on
// top of the watch's changes.
const followResync = time.Minute

// following is a standby's follower of the leader's routing, and what
// ends its watch of the store.
type following struct {
	f    *follow.Follower
	stop context.CancelFunc
	// closed is closed when the daemon stops.
	closed chan struct{}
}

// follow binds the router's listeners and serves the Kubernetes apps in
// router mode as the leader's records say, while this cutover waits for
// the store's Lease. Other apps get 503 from a standby: their replicas run
// where the leader runs, or a Service or gateway carries their traffic.
// Without an app in router mode a standby binds no app listener.
func (d *Daemon) follow(cfg *config.Config, listen func(network, addr string) (net.Listener, error)) error {
	var apps []config.App
	for _, a := range cfg.Apps {
		if a.Target.Kubernetes == nil || !a.Traffic.RouterMode() {
			continue
		}
		// The slots' pods are watched from here on, as the leader does.
		if _, err := d.kubes.forApp(a); err != nil {
			return fmt.Errorf("app %s: %w", a.Name, err)
		}
		apps = append(apps, a)
	}
	if len(apps) == 0 {
		return nil // no listener: nothing to serve before this one leads
	}
	var err error
	if d.router, err = newRouter(cfg, d.opts.DataDir, listen, d.log); err != nil {
		return err
	}
	if err := d.router.SetRoutes(routes(cfg)); err != nil {
		return err
	}
	kc := cfg.Store.Kubernetes
	rc, err := restConfig(kc.Kubeconfig)
	if err != nil {
		return fmt.Errorf("store.kubernetes: %w", err)
	}
	w, err := kube.NewWatcher(rc, storeNamespace(kc))
	if err != nil {
		return err
	}
	f := follow.New(apps, follow.Options{Router: d.router, Endpoints: d.kubes.endpoints, Logger: d.log})
	ctx, stop := context.WithCancel(context.Background())
	d.following = &following{f: f, stop: stop, closed: make(chan struct{})}
	go w.WatchApps(ctx, followResync, func(o kube.AppObject) { f.Seen(o.Name, o.State, o.Revisions) }, nil,
		func(err error) { d.log.Warn("standby: skipping a CutoverApp", "err", err) })
	go d.gates.run(f.Serves, func(addr string, apps []string) {
		d.log.Warn("standby: accepting on the listener although the leader's records give its apps nothing ready to route to; they answer 503",
			"listen", addr, "apps", apps)
	})
	d.log.Info("standby: serving the apps in router mode as the leader routes them", "apps", f.Apps())
	return nil
}

// servesFollowed reports whether a standby serves every app it follows;
// false when it follows none.
func (fl *following) servesFollowed() bool {
	if fl == nil {
		return false
	}
	apps := fl.f.Apps()
	for _, a := range apps {
		if !fl.f.Serves(a) {
			return false
		}
	}
	return len(apps) > 0
}

// handOver is called once this standby leads: the follower stops
// following the records, and each app's followed backends are released
// once the controller serves the app (its restore published its own).
func (fl *following) handOver(ctlServes func(app string) bool) {
	if fl == nil {
		return
	}
	fl.stop()
	fl.f.Stop()
	for _, app := range fl.f.Apps() {
		go func() {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for !ctlServes(app) {
				select {
				case <-fl.closed:
					return
				case <-tick.C:
				}
			}
			fl.f.Release(app)
		}()
	}
}

// close ends the follower's watches, health checks and hand-over.
func (fl *following) close() {
	if fl == nil {
		return
	}
	fl.stop()
	close(fl.closed)
	fl.f.Close()
}

// endpoints follows the ready pods of revision on a router-mode app's
// slot (follow.Endpoints).
func (k *kubeTargets) endpoints(ctx context.Context, app config.App, slot string, revision int, set func([]*url.URL)) error {
	t, err := k.forApp(app)
	if err != nil {
		return err
	}
	r, ok := t.(*kubeRouted)
	if !ok {
		return fmt.Errorf("app %s is not in router mode", app.Name)
	}
	return r.runner.Target.WatchEndpoints(ctx, app.Name, slot, revision, r.runner.Port, set)
}
