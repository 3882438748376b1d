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

// Weight returns the canary weight cutover last wrote into an object with
// these annotations; ok is false when it has written none yet, and the
// error says what to do when the annotation is not a weight.
func Weight(annotations map[string]string) (weight int, ok bool, err error) {
	last, ok := annotations[AnnotationWeight]
	if !ok {
		return 0, false, nil
	}
	weight, err = strconv.Atoi(last)
	if err != nil {
		return 0, false, fmt.Errorf("annotation %s=%q is not a weight; remove it to let cutover take the weights over as they are", AnnotationWeight, last)
	}
	return weight, true, nil
}

// Writer names the field manager other than cutover that last wrote
// spec.<field> (an atomic list, such as an HTTPRoute's rules or a
// VirtualService's http routes, whose whole ownership goes to its last
// writer), or says it is unknown.
func Writer(entries []metav1.ManagedFieldsEntry, field string) string {
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
