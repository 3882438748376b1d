package istio

import "github.com/cutover/cutover/internal/traffic/lastwrite"

// unchanged returns an error naming who changed the weights when the
// VirtualService no longer has the ones cutover last wrote
// (lastwrite.AnnotationWeight). One without the annotation has not been
// written by cutover yet, and its weights are taken as they are.
func (p *Provider) unchanged(v virtualService) error {
	want, ok, err := lastwrite.Weight(v.Annotations)
	if err != nil {
		return p.errorf("%w", err)
	}
	if !ok {
		return nil
	}
	stable, canary, consistent, err := v.weights()
	if err != nil {
		return p.errorf("changed since cutover's last write: %w", err)
	}
	if consistent && canary == want {
		return nil
	}
	return p.errorf("the weights were changed by %s since cutover set them to %d for the first subset and %d for the second on every route of %v (now %d and %d); cutover will not go on: set them back, or remove the annotation %s to let cutover take them over as they are",
		lastwrite.Writer(v.ManagedFields, "http"), 100-want, want, p.opts.Routes, stable, canary, lastwrite.AnnotationWeight)
}
