// Package lastwrite keeps track of the weights cutover writes into an
// object it shares with a team (a Gateway API HTTPRoute, an Istio
// VirtualService): it records the canary weight it last wrote in an
// annotation, and when the object no longer carries that weight it names
// who else wrote it, from the object's managedFields.
package lastwrite

import (
	"encoding/json"
	"fmt"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FieldManager is the name cutover writes shared objects under; it is
// the one managedFields show for the weights it set.
const FieldManager = "cutover"

// AnnotationWeight records on the object the canary weight cutover last
// wrote. Remove it to let cutover take the object's weights over as they
// are after a refusal.
const AnnotationWeight = "cutover.dev/canary-weight"

// Weights is how a provider reads an object's weights now: the stable
// and the canary one (named as the provider's errors name them), and
// whether every place that carries them carries these.
type Weights struct {
	StableName, CanaryName string
	Stable, Canary         int
	Consistent             bool
}

// Unchanged returns an error naming who changed the weights when obj no
// longer has the ones cutover last wrote (AnnotationWeight), or when they
// cannot be read (err from the provider's read). An object without the
// annotation has not been written by cutover yet, and its weights are
// taken as they are.
func Unchanged(obj metav1.Object, field string, now Weights, err error) error {
	last, ok := obj.GetAnnotations()[AnnotationWeight]
	if !ok {
		return nil
	}
	want, convErr := strconv.Atoi(last)
	switch {
	case convErr != nil:
		return fmt.Errorf("annotation %s=%q is not a weight; remove it to let cutover take the weights over as they are", AnnotationWeight, last)
	case err != nil:
		return fmt.Errorf("changed since cutover's last write: %w", err)
	case now.Consistent && now.Canary == want:
		return nil
	}
	return fmt.Errorf("the weights were changed by %s since cutover set them to %s %d, %s %d (now %d and %d); cutover will not go on: set them back, or remove the annotation %s to let cutover take them over as they are",
		writer(obj.GetManagedFields(), field), now.StableName, 100-want, now.CanaryName, want, now.Stable, now.Canary, AnnotationWeight)
}

// writer names the field manager other than cutover that last wrote
// spec.<field> (an atomic list, such as an HTTPRoute's rules or a
// VirtualService's http routes, whose whole ownership goes to its last
// writer), or says it is unknown.
func writer(entries []metav1.ManagedFieldsEntry, field string) string {
	var last *metav1.ManagedFieldsEntry
	for i, e := range entries {
		if e.Manager == FieldManager || e.FieldsV1 == nil {
			continue
		}
		var fields struct {
			Spec map[string]json.RawMessage `json:"f:spec"`
		}
		if json.Unmarshal(e.FieldsV1.Raw, &fields) != nil || fields.Spec["f:"+field] == nil {
			continue
		}
		if last == nil || (e.Time != nil && last.Time != nil && last.Time.Before(e.Time)) {
			last = &entries[i]
		}
	}
	if last == nil {
		return "a writer the object's managedFields do not name"
	}
	return fmt.Sprintf("field manager %q (%s)", last.Manager, last.Operation)
}
