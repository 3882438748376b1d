package target

import (
	"context"
	"net/url"
)

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

// Retirer is a Scaler whose caller chooses which replicas a scale down
// stops, so that the ones that fail their health checks go first, as a
// Kubernetes ReplicaSet deletes its unready pods first. A Scaler that is
// not Changing is a Retirer: its caller takes a replica out of rotation
// before it stops it, so the caller must say which one goes.
type Retirer interface {
	Scaler
	// Retire stops the replicas serving endpoints (URLs Endpoints
	// listed), as Scale stops the ones it removes, and returns once they
	// are gone; the others keep running, in the same order. An endpoint
	// the instance does not serve fails it before anything stops.
	Retire(ctx context.Context, endpoints []*url.URL) error
}
