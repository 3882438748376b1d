package istio

import "github.com/cutover/cutover/internal/traffic/lastwrite"

// unchanged returns an error naming who changed the weights when the
// VirtualService no longer has the ones cutover last wrote (see
// lastwrite.Unchanged); spec.http is where they are, on the subsets by
// position or on the two Services by host.
func (p *Provider) unchanged(v virtualService) error {
	stable, canary, consistent, err := v.weights()
	now := lastwrite.Weights{StableName: "the first subset", CanaryName: "the second subset", Stable: stable, Canary: canary, Consistent: consistent}
	if v.services != nil {
		now.StableName, now.CanaryName = v.services[0], v.services[1]
	}
	if err := lastwrite.Unchanged(v.VirtualService, "http", now, err); err != nil {
		return p.errorf("%w", err)
	}
	return nil
}
