package kube

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaseName is the coordination.k8s.io Lease that the cutover using the
// store holds.
const LeaseName = "cutover-store"

// lease is this cutover's hold on the store, renewed by client-go's
// leader election until release.
type lease struct {
	cancel   context.CancelFunc
	done     chan struct{} // closed when the election loop has returned
	lost     chan struct{} // closed when the Lease could not be renewed
	released atomic.Bool
	once     sync.Once
}

// takeLease waits up to opts.Wait (with opts.Standby, until ctx is done)
// for the store's Lease and keeps renewing it in the background.
func takeLease(ctx context.Context, core kubernetes.Interface, opts Options) (*lease, error) {
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, opts.Namespace, LeaseName,
		core.CoreV1(), core.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: opts.Identity})
	if err != nil {
		return nil, fmt.Errorf("kubernetes store: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	l := &lease{cancel: cancel, done: make(chan struct{}), lost: make(chan struct{})}
	started := make(chan struct{})
	d := opts.LeaseDuration
	el, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            LeaseName,
		LeaseDuration:   d,
		RenewDeadline:   d * 2 / 3,
		RetryPeriod:     d / 5,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { close(started) },
			OnStoppedLeading: func() {
				if !l.released.Load() {
					close(l.lost)
				}
			},
			OnNewLeader: func(identity string) {
				if opts.Holder != nil && identity != opts.Identity {
					opts.Holder(identity)
				}
			},
		},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("kubernetes store: %w", err)
	}
	go func() {
		defer close(l.done)
		el.Run(runCtx)
	}()
	var waited <-chan time.Time // nil: a standby waits for ctx alone
	if !opts.Standby {
		wait := time.NewTimer(opts.Wait)
		defer wait.Stop()
		waited = wait.C
	}
	select {
	case <-started:
		return l, nil
	case <-ctx.Done():
		l.release()
		return nil, fmt.Errorf("kubernetes store: waiting for the Lease %s/%s: %w", opts.Namespace, LeaseName, ctx.Err())
	case <-waited:
		holder := el.GetLeader()
		l.release()
		if holder == "" {
			return nil, fmt.Errorf("kubernetes store: could not take the Lease %s/%s within %s; check that the namespace exists and that cutover may get, create and update leases in it",
				opts.Namespace, LeaseName, opts.Wait)
		}
		return nil, fmt.Errorf("kubernetes store in namespace %s is in use by another cutover (%s holds the Lease %s and renews it); only one cutover may use a store: stop that one, or use another namespace",
			opts.Namespace, holder, LeaseName)
	}
}

// release stops renewing the Lease and gives it up.
func (l *lease) release() {
	l.once.Do(func() {
		l.released.Store(true)
		l.cancel()
		<-l.done
	})
}
