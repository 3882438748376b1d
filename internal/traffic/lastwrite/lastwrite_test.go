package lastwrite

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestUnchangedNamesTheLastOtherWriterOfTheField(t *testing.T) {
	at := func(s int) *metav1.Time { return &metav1.Time{Time: time.Unix(int64(s), 0)} }
	fields := func(raw string) *metav1.FieldsV1 { return &metav1.FieldsV1{Raw: []byte(raw)} }
	written := []metav1.ManagedFieldsEntry{
		{Manager: "kubectl-create", Operation: metav1.ManagedFieldsOperationUpdate, Time: at(1), FieldsV1: fields(`{"f:spec":{"f:http":{}}}`)},
		{Manager: "kubectl-edit", Operation: metav1.ManagedFieldsOperationUpdate, Time: at(3), FieldsV1: fields(`{"f:spec":{"f:http":{}}}`)},
		{Manager: "labeler", Operation: metav1.ManagedFieldsOperationApply, Time: at(4), FieldsV1: fields(`{"f:metadata":{"f:labels":{}}}`)},
		{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationUpdate, Time: at(5), FieldsV1: fields(`{"f:spec":{"f:http":{}}}`)},
	}
	same := Weights{StableName: "blue", CanaryName: "green", Stable: 75, Canary: 25, Consistent: true}
	moved := Weights{StableName: "blue", CanaryName: "green", Stable: 60, Canary: 40, Consistent: true}
	for _, tc := range []struct {
		name       string
		annotation string // "" for none
		managed    []metav1.ManagedFieldsEntry
		now        Weights
		err        error
		want       string // "" for no error
	}{
		{"never written by cutover", "", written, moved, nil, ""},
		{"as cutover left them", "25", written, same, nil, ""},
		{"changed", "25", written, moved, nil, `changed by field manager "kubectl-edit" (Update) since cutover set them to blue 75, green 25 (now 60 and 40)`},
		{"changed by someone unnamed", "25", nil, moved, nil, "a writer the object's managedFields do not name"},
		{"inconsistent", "25", written, Weights{Stable: 75, Canary: 25}, nil, "will not go on"},
		{"unreadable", "25", written, same, errors.New("no route"), "changed since cutover's last write: no route"},
		{"not a weight", "a lot", written, same, nil, `annotation cutover.dev/canary-weight="a lot" is not a weight; remove it`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := &metav1.ObjectMeta{ManagedFields: tc.managed}
			if tc.annotation != "" {
				obj.Annotations = map[string]string{AnnotationWeight: tc.annotation}
			}
			err := Unchanged(obj, "http", tc.now, tc.err)
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Unchanged: %v, want %q", err, tc.want)
			}
		})
	}
}
