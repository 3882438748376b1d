package istio

import (
	"context"
	"fmt"
	"slices"

	networking "istio.io/api/networking/v1alpha3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	kube "github.com/cutover/cutover/internal/target/kubernetes"
	"github.com/cutover/cutover/internal/traffic/lastwrite"
)

// slots are cutover's two slots, and the names of the subsets that
// select their pods.
var slots = [...]string{"blue", "green"}

// host returns the DestinationRule's host, which the weighed destinations
// name.
func (p *Provider) host(ctx context.Context) (string, error) {
	dr, err := p.rules.Get(ctx, p.opts.DestinationRule, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", p.ruleErrorf("not found; create it with host: <the Service that selects the pods of both slots, such as %s> (cutover adds the subsets blue and green)", p.opts.App)
	}
	if err != nil {
		return "", p.ruleErrorf("%w", err)
	}
	if dr.Spec.Host == "" {
		return "", p.ruleErrorf("has no host; give it host: <the Service that selects the pods of both slots, such as %s>", p.opts.App)
	}
	return dr.Spec.Host, nil
}

// subsets makes sure the DestinationRule has a subset per slot, named
// after it and selecting its pods by the label kube.LabelSlot: it adds
// the missing ones and refuses, changing nothing, a subset of that name
// that selects other pods.
func (p *Provider) subsets(ctx context.Context) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		dr, err := p.rules.Get(ctx, p.opts.DestinationRule, metav1.GetOptions{})
		if err != nil {
			return p.ruleErrorf("%w", err)
		}
		added := false
		for _, slot := range slots {
			i := slices.IndexFunc(dr.Spec.Subsets, func(s *networking.Subset) bool { return s.GetName() == slot })
			if i < 0 {
				dr.Spec.Subsets = append(dr.Spec.Subsets, &networking.Subset{Name: slot, Labels: map[string]string{kube.LabelSlot: slot}})
				added = true
				continue
			}
			if got := dr.Spec.Subsets[i].Labels[kube.LabelSlot]; got != slot {
				return p.ruleErrorf("subset %s selects the labels %v, not %s=%s; cutover's subset %s is the pods of slot %s: give it labels: {%s: %s}, or remove it and cutover adds it",
					slot, dr.Spec.Subsets[i].Labels, kube.LabelSlot, slot, slot, slot, kube.LabelSlot, slot)
			}
		}
		if !added {
			return nil
		}
		if _, err := p.rules.Update(ctx, dr, metav1.UpdateOptions{FieldManager: lastwrite.FieldManager}); err != nil {
			return p.ruleErrorf("add the slots' subsets: %w", err)
		}
		return nil
	})
}

func (p *Provider) ruleErrorf(format string, args ...any) error {
	return fmt.Errorf("destinationrule %s/%s: "+format, append([]any{p.opts.Namespace, p.opts.DestinationRule}, args...)...)
}
