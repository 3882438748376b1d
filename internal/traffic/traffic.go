// Package traffic names what moves an app's traffic between its slots
// when that is not cutover's own router: a Kubernetes Service selector
// (service/), and later Gateway API, Istio, nginx or HAProxy. Each one
// lives in a package of its own behind Provider.
package traffic

import "context"

// Provider moves an app's traffic between its two slots.
type Provider interface {
	// Preview points the preview route at slot, for tests before the
	// flip. Callers call it only once slot is ready.
	Preview(ctx context.Context, slot string) error
	// Flip sends all production traffic to slot and returns once it
	// reaches slot only. It refuses, changing nothing, when slot has no
	// ready replica to take the traffic.
	Flip(ctx context.Context, slot string) error
	// Active returns the slot production traffic goes to now, or "" when
	// it goes to none of them.
	Active(ctx context.Context) (string, error)
}
