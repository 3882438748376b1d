package gatewayapi

import "github.com/cutover/cutover/internal/traffic/lastwrite"

// unchanged returns an error naming who changed the weights when the
// route no longer has the ones cutover last wrote (see
// lastwrite.Unchanged); spec.rules is where they are.
func (w *routeWriter) unchanged(r route) error {
	stable, canary, consistent, err := r.weights()
	now := lastwrite.Weights{StableName: r.stable, CanaryName: r.canary, Stable: stable, Canary: canary, Consistent: consistent}
	if err := lastwrite.Unchanged(r.HTTPRoute, "rules", now, err); err != nil {
		return w.errorf("%w", err)
	}
	return nil
}
