package gatewayapi

import (
	"encoding/json"
	"fmt"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// unchanged returns an error naming who changed the weights when the
// route no longer has the ones cutover last wrote (AnnotationWeight). A
// route without the annotation has not been written by cutover yet, and
// its weights are taken as they are.
func (p *Provider) unchanged(r route) error {
	last, ok := r.Annotations[AnnotationWeight]
	if !ok {
		return nil
	}
	want, err := strconv.Atoi(last)
	if err != nil {
		return p.errorf("annotation %s=%q is not a weight; remove it to let cutover take the weights over as they are", AnnotationWeight, last)
	}
	stable, canary, consistent, err := r.weights()
	if err != nil {
		return p.errorf("changed since cutover's last write: %w", err)
	}
	if consistent && canary == want {
		return nil
	}
	return p.errorf("the weights were changed by %s since cutover set them to %s %d, %s %d (now %d and %d); cutover will not go on: set them back, or remove the annotation %s to let cutover take them over as they are",
		rulesWriter(r.ManagedFields), r.stable, 100-want, r.canary, want, stable, canary, AnnotationWeight)
}

// rulesWriter names the field manager other than cutover that last wrote
// spec.rules, an atomic list whose whole ownership goes to its last
// writer, or says it is unknown.
func rulesWriter(entries []metav1.ManagedFieldsEntry) string {
	var last *metav1.ManagedFieldsEntry
	for i, e := range entries {
		if e.Manager == FieldManager || e.FieldsV1 == nil {
			continue
		}
		var fields struct {
			Spec map[string]json.RawMessage `json:"f:spec"`
		}
		if json.Unmarshal(e.FieldsV1.Raw, &fields) != nil || fields.Spec["f:rules"] == nil {
			continue
		}
		if last == nil || (e.Time != nil && last.Time != nil && last.Time.Before(e.Time)) {
			last = &entries[i]
		}
	}
	if last == nil {
		return "a writer the route's managedFields do not name"
	}
	return fmt.Sprintf("field manager %q (%s)", last.Manager, last.Operation)
}
