package gatewayapi

import "github.com/cutover/cutover/internal/traffic/lastwrite"

// unchanged returns an error naming who changed the weights when the
// route no longer has the ones cutover last wrote (AnnotationWeight). A
// route without the annotation has not been written by cutover yet, and
// its weights are taken as they are.
func (p *Provider) unchanged(r route) error {
	want, ok, err := lastwrite.Weight(r.Annotations)
	if err != nil {
		return p.errorf("%w", err)
	}
	if !ok {
		return nil
	}
	stable, canary, consistent, err := r.weights()
	if err != nil {
		return p.errorf("changed since cutover's last write: %w", err)
	}
	if consistent && canary == want {
		return nil
	}
	return p.errorf("the weights were changed by %s since cutover set them to %s %d, %s %d (now %d and %d); cutover will not go on: set them back, or remove the annotation %s to let cutover take them over as they are",
		lastwrite.Writer(r.ManagedFields, "rules"), r.stable, 100-want, r.canary, want, stable, canary, AnnotationWeight)
}
