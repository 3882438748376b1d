package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// AnnotationOriginalReplicas is set on a referenced Deployment (a
// workloadRef) when Retire scales it to 0: its replicas before, so that
// `kubectl scale --replicas=N` can undo it.
const AnnotationOriginalReplicas = "cutover.dev/original-replicas"

// templateHashLabel is the label the Deployment controller puts on each
// ReplicaSet's pods; a slot's ReplicaSets get their own.
const templateHashLabel = "pod-template-hash"

// TemplateFrom returns the pod template of Deployment name in namespace
// (a workloadRef), for the slots to run: its spec.template without the
// labels cutover sets on each slot and without pod-template-hash. It
// reads the Deployment once and changes nothing.
func TemplateFrom(ctx context.Context, client kubernetes.Interface, namespace, name string) (corev1.PodTemplateSpec, error) {
	d, err := client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return corev1.PodTemplateSpec{}, fmt.Errorf("deployment %s/%s (target.kubernetes.workloadRef) not found; create it, correct workloadRef.name or write target.kubernetes.template instead",
			namespace, name)
	case err != nil:
		return corev1.PodTemplateSpec{}, fmt.Errorf("read deployment %s/%s (target.kubernetes.workloadRef): %w", namespace, name, err)
	case d.Labels[LabelManagedBy] == ManagedBy:
		return corev1.PodTemplateSpec{}, fmt.Errorf("deployment %s/%s (target.kubernetes.workloadRef) is one of cutover's slots; name the team's own Deployment",
			namespace, name)
	}
	tmpl := *d.Spec.Template.DeepCopy()
	for _, l := range []string{LabelApp, LabelManagedBy, LabelSlot, LabelRevision, templateHashLabel} {
		delete(tmpl.Labels, l)
	}
	return tmpl, nil
}

// Retire scales Deployment name in namespace (a workloadRef) to 0 once
// cutover's slots serve in its stead, recording its replicas in
// AnnotationOriginalReplicas. Nothing else of it changes, and a
// Deployment already at 0 is left as it is, so calling it again is safe.
func Retire(ctx context.Context, client kubernetes.Interface, namespace, name string) error {
	deps := client.AppsV1().Deployments(namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := deps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("read deployment %s/%s (workloadRef) to scale it to 0: %w", namespace, name, err)
		}
		replicas := int32(1) // the API's default when unset
		if d.Spec.Replicas != nil {
			replicas = *d.Spec.Replicas
		}
		if replicas == 0 {
			return nil
		}
		// resourceVersion makes the patch conditional: a write in between
		// is a conflict, read again, rather than a count recorded wrong.
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": d.ResourceVersion,
				"annotations": map[string]string{AnnotationOriginalReplicas: strconv.Itoa(int(replicas))}},
			"spec": map[string]any{"replicas": 0}})
		if err != nil {
			return fmt.Errorf("encode the scale patch: %w", err)
		}
		if _, err := deps.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("scale deployment %s/%s (workloadRef) to 0: %w", namespace, name, err)
		}
		return nil
	})
}
