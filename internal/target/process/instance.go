package process

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/target"
)

// instance is one started revision: its replicas and the stop protocol they
// share.
type instance struct {
	name        string // "web v2 (slot green)", for messages
	grace       time.Duration
	maxRestarts int
	backoff     backoff
	onExit      func(target.Replica) // Spec.OnReplicaExit; may be nil
	groups      groupFiles
	log         *slog.Logger

	// mu guards replicas, which Start fills before the instance is handed
	// out and Scale changes afterwards.
	mu       sync.Mutex
	replicas []*replica
	// newReplica makes replica i on port, not started yet; set by Start,
	// used by Scale.
	newReplica func(i, port int) *replica

	// stopping is closed by the first Stop; supervisors then stop
	// restarting, and a replica that is about to start does not.
	stopping chan struct{}
	stopOnce sync.Once
	// killAt is when the grace period of the first Stop ends; written inside
	// stopOnce, so every Stop reads it after that.
	killAt time.Time
	// kill is closed when the grace period ends (or a Stop gives up
	// waiting): whatever is left of every replica's process group gets
	// SIGKILL.
	kill     chan struct{}
	killOnce sync.Once
}

func newInstance(name string, opts Options, onExit func(target.Replica)) *instance {
	return &instance{
		name:        name,
		grace:       opts.StopGrace,
		maxRestarts: opts.MaxRestarts,
		backoff:     backoff{first: opts.FirstBackoff, max: opts.MaxBackoff, reset: opts.BackoffReset},
		onExit:      onExit,
		groups:      groupFiles{dir: opts.GroupDir},
		log:         opts.Logger.With("instance", name),
		stopping:    make(chan struct{}),
		kill:        make(chan struct{}),
	}
}

// Endpoints returns one URL per replica; each replica keeps its port across
// restarts, so the URLs are fixed for the instance's life.
func (in *instance) Endpoints() []*url.URL {
	replicas := in.current()
	out := make([]*url.URL, len(replicas))
	for i, r := range replicas {
		u := *r.url
		out[i] = &u
	}
	return out
}

// Replicas reports each replica's current state.
func (in *instance) Replicas() []target.Replica {
	replicas := in.current()
	out := make([]target.Replica, len(replicas))
	for i, r := range replicas {
		out[i] = r.status()
	}
	return out
}

// Err describes the first replica that crash-loops: it exited more than
// MaxRestarts times in a row and has not run for BackoffReset since. It is
// nil again once that replica has run for BackoffReset; the replica is
// restarted meanwhile all the same.
func (in *instance) Err() error {
	now := time.Now()
	for _, r := range in.current() {
		if err := r.crashLoop(now); err != nil {
			return err
		}
	}
	return nil
}

// current returns the replicas of the moment.
func (in *instance) current() []*replica {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.replicas
}

func (in *instance) stopRequested() bool {
	select {
	case <-in.stopping:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to every replica's process group, waits until the
// grace period after the first Stop call has passed, then sends SIGKILL to
// what is left. It returns nil once every process group is gone. If ctx ends
// first, it sends SIGKILL at once, so that no replica outlives a caller who
// gave up, and returns ctx's error. Calling Stop again, or concurrently, is
// safe and waits for the same shutdown.
func (in *instance) Stop(ctx context.Context) error {
	in.stopOnce.Do(func() {
		in.killAt = time.Now().Add(in.grace)
		in.mu.Lock()
		close(in.stopping)
		in.mu.Unlock()
		for _, r := range in.current() {
			r.signal(syscall.SIGTERM)
		}
	})
	grace := time.NewTimer(time.Until(in.killAt))
	defer grace.Stop()
	if in.waitAll(ctx, grace.C) {
		return nil
	}
	in.killOnce.Do(func() {
		close(in.kill)
		for _, r := range in.current() {
			r.signal(syscall.SIGKILL)
		}
	})
	if in.waitAll(ctx, nil) {
		return nil
	}
	return fmt.Errorf("stop %s: gave up waiting for replicas to exit after SIGKILL: %w", in.name, ctx.Err())
}

// waitAll reports whether every replica's supervisor finished before
// deadline fired or ctx ended.
func (in *instance) waitAll(ctx context.Context, deadline <-chan time.Time) bool {
	for _, r := range in.current() {
		select {
		case <-r.done:
			continue // already gone counts even when ctx has ended too
		default:
		}
		select {
		case <-r.done:
		case <-deadline:
			return false
		case <-ctx.Done():
			return false
		}
	}
	return true
}
