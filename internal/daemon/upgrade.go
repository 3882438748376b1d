package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
)

// Upgrade hands this cutover's listeners to a new process running the
// executable at the same path (see the package doc for the sequence). It
// returns nil once the new process serves; Upgraded is then closed and the
// caller should Shutdown. On an error this process goes on serving as
// before. Errors wrapping controller.ErrConflict mean "not now": another
// upgrade or a rollout is in progress.
func (d *Daemon) Upgrade() error {
	if d.upg == nil {
		return errors.New("hot upgrade is off in this cutover; restart it instead")
	}
	if !d.upgrading.TryLock() {
		return fmt.Errorf("%w: an upgrade is already in progress", controller.ErrConflict)
	}
	defer d.upgrading.Unlock()
	// The previous generation must be gone before there can be a next one.
	ctx, cancel := context.WithTimeout(context.Background(), parentWait)
	err := d.upg.WaitForParent(ctx)
	cancel()
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: the previous cutover process is still draining; try again shortly", controller.ErrConflict)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.checkNoRollout(); err != nil {
		return err
	}
	d.log.Info("upgrade: handing the store and the listeners to a new process")
	if err := d.store.release(); err != nil {
		return fmt.Errorf("upgrade not started: %w", err)
	}
	upErr := d.upg.Upgrade()
	if upErr == nil {
		d.log.Info("upgrade: the new process serves; draining and exiting")
		return nil
	}
	d.log.Error("upgrade failed; this process goes on serving", "err", upErr)
	ctx, cancel = context.WithTimeout(context.Background(), lockWait)
	defer cancel()
	if err := d.store.reopen(ctx); err != nil {
		return fmt.Errorf("upgrade failed (%v), and the store could not be opened again: %w; restart cutover", upErr, err)
	}
	return fmt.Errorf("upgrade failed, this cutover goes on serving: %w; see the new process's output above", upErr)
}

// checkNoRollout refuses an upgrade while a rollout runs: the new process
// would record it as interrupted.
func (d *Daemon) checkNoRollout() error {
	for _, name := range d.ctl.Apps() {
		st, err := d.ctl.Status(name)
		if err != nil {
			continue
		}
		if ro := st.Rollout; ro != nil && !ro.Done() {
			return fmt.Errorf("%w: app %s has a rollout in progress (revision %d); wait for it to finish, or abort it, then upgrade",
				controller.ErrConflict, name, ro.Revision)
		}
	}
	return nil
}

// readyWait bounds how long a new process waits for the apps: the longest
// deploy timeout, plus time for the health checks.
func readyWait(cfg *config.Config) time.Duration {
	longest := time.Duration(0)
	for _, a := range cfg.Apps {
		longest = max(longest, a.DeployTimeout.D())
	}
	return longest + 10*time.Second
}

// waitReady polls the controller until every app's active revision has a
// ready endpoint. An app that has never been deployed counts once its
// first deploy has made a slot active.
func (d *Daemon) waitReady(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		waiting := ""
		for _, name := range d.ctl.Apps() {
			if !d.appReady(name) {
				waiting = name
				break
			}
		}
		if waiting == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("app %s did not serve again in time; check its replicas' logs", waiting)
		case <-tick.C:
		}
	}
}

// appReady reports whether app's active slot serves with a ready endpoint.
func (d *Daemon) appReady(app string) bool {
	st, err := d.ctl.Status(app)
	if err != nil || st.ActiveSlot == "" {
		return false
	}
	for _, s := range st.Slots {
		if s.Name != st.ActiveSlot || s.Phase != store.SlotActive {
			continue
		}
		for _, e := range s.Endpoints {
			if e.Ready {
				return true
			}
		}
	}
	return false
}
