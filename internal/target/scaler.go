package target

import "context"

// Scaler is an Instance whose number of replicas changes while it runs,
// for a rolling update: the new revision's instance grows a few replicas
// at a time while the stable one shrinks.
type Scaler interface {
	Instance
	// Scale makes the instance run n replicas. It starts the missing
	// ones and returns once their processes exist (readiness is for
	// health checks to say), or stops the most recently added ones, as
	// Stop stops them all, and returns once they are gone. Endpoints and
	// Replicas list the replicas that remain once it returns. Scale after
	// Stop fails.
	Scale(ctx context.Context, n int) error
}
