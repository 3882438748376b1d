package process

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/target"
)

// An instance chooses which of its replicas a scale down stops.
var _ target.Retirer = (*instance)(nil)

// Scale makes the instance run n replicas (0 included): it starts new
// ones on new ports, numbered after the last, or stops the last ones, as
// Retire stops them.
func (in *instance) Scale(ctx context.Context, n int) error {
	if n < 0 {
		return fmt.Errorf("scale %s to %d replicas: a count cannot be negative", in.name, n)
	}
	if in.stopRequested() {
		return fmt.Errorf("scale %s: the instance is stopped", in.name)
	}
	have := in.current()
	if n <= len(have) {
		return in.Retire(ctx, in.Endpoints()[n:])
	}
	ports, err := freePorts(n - len(have))
	if err != nil {
		return fmt.Errorf("scale %s to %d replicas: %w", in.name, n, err)
	}
	next := 0 // a replica Retire stopped may have left a gap in the numbers
	if len(have) > 0 {
		next = have[len(have)-1].index + 1
	}
	for i, port := range ports {
		if err := in.add(in.newReplica(next+i, port)); err != nil {
			return err
		}
	}
	return nil
}

// Retire stops the replicas serving endpoints (SIGTERM to each one's
// process group, SIGKILL once the grace period has passed) and waits
// until they are gone; the others keep running. The caller takes a
// replica out of rotation before it retires it; the replica finishes the
// requests it already has in the grace period SIGTERM gives it.
func (in *instance) Retire(ctx context.Context, endpoints []*url.URL) error {
	if in.stopRequested() {
		return fmt.Errorf("scale %s down: the instance is stopped", in.name)
	}
	unknown := make(map[string]bool, len(endpoints)) // until a replica serves it
	for _, u := range endpoints {
		unknown[u.String()] = true
	}
	in.mu.Lock()
	keep := make([]*replica, 0, len(in.replicas))
	var gone []*replica
	for _, r := range in.replicas {
		if unknown[r.url.String()] {
			delete(unknown, r.url.String())
			gone = append(gone, r)
		} else {
			keep = append(keep, r)
		}
	}
	if len(unknown) > 0 {
		in.mu.Unlock()
		return fmt.Errorf("scale %s down: it runs no replica on %s; give the URLs its Endpoints list", in.name, strings.Join(slices.Sorted(maps.Keys(unknown)), ", "))
	}
	in.replicas = keep
	in.mu.Unlock()
	var errs []error
	for _, r := range gone {
		errs = append(errs, r.retire(ctx, in.grace))
	}
	return errors.Join(errs...)
}

// add starts r and, once it runs, makes it one of the instance's replicas.
func (in *instance) add(r *replica) error {
	cmd, err := r.start(false)
	if err != nil {
		return fmt.Errorf("start replica %d of %s: %w", r.index, in.name, err)
	}
	in.mu.Lock()
	stopped := in.stopRequested() // Stop signals only the replicas it sees
	if !stopped {
		in.replicas = append(in.replicas, r)
	}
	in.mu.Unlock()
	go r.supervise(cmd)
	if stopped {
		ctx, cancel := context.WithTimeout(context.Background(), in.grace+5*time.Second)
		defer cancel()
		return errors.Join(fmt.Errorf("start replica %d of %s: %w", r.index, in.name, errStopping), r.retire(ctx, in.grace))
	}
	return nil
}

// retire stops this replica alone, as Stop stops an instance: SIGTERM,
// SIGKILL after grace or as soon as ctx ends; it returns once the
// replica's process group is gone.
func (r *replica) retire(ctx context.Context, grace time.Duration) error {
	r.mu.Lock()
	close(r.retired)
	r.mu.Unlock()
	r.signal(syscall.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-r.done:
		return nil
	case <-timer.C:
	case <-ctx.Done():
	}
	close(r.kill)
	r.signal(syscall.SIGKILL)
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop replica %d of %s: gave up waiting for it to exit after SIGKILL: %w", r.index, r.inst.name, ctx.Err())
	}
}

// stopRequested says whether the replica is to stop: its instance stops,
// or Scale removed it.
func (r *replica) stopRequested() bool {
	if r.inst.stopRequested() {
		return true
	}
	select {
	case <-r.retired:
		return true
	default:
		return false
	}
}
