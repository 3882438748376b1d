package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/cutover/cutover/internal/config"
	kube "github.com/cutover/cutover/internal/target/kubernetes"
	"github.com/cutover/cutover/internal/traffic"
)

// workloadRef is the team's Deployment a kubernetes app takes its pod
// template from (target.kubernetes.workloadRef), scaled to 0 once one of
// cutover's slots serves in its stead.
type workloadRef struct {
	client          kubernetes.Interface
	namespace, name string
	log             *slog.Logger
}

// podTemplate returns the pod template of kc: the one written in the
// configuration, or the referenced Deployment's, read once now.
func podTemplate(ctx context.Context, client kubernetes.Interface, kc *config.KubernetesTarget) (corev1.PodTemplateSpec, error) {
	if kc.WorkloadRef == nil {
		return kc.Template.PodTemplateSpec, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return kube.TemplateFrom(ctx, client, kc.Namespace, kc.WorkloadRef.Name)
}

// retire scales the referenced Deployment to 0. The traffic has already
// moved when it is called, so a failure is logged rather than undoing
// the move; the next flip or start tries again.
func (w *workloadRef) retire(ctx context.Context) {
	if err := kube.Retire(ctx, w.client, w.namespace, w.name); err != nil {
		w.log.Error("scale the workloadRef Deployment to 0; cutover's slot serves, scale it down by hand or deploy again", "err", err)
	}
}

// retiringSplitter is service mode's provider for an app with a
// workloadRef: once a flip is done, the active Service's EndpointSlices
// list only cutover's slot, so the team's pods get no more traffic from
// it and their Deployment is scaled to 0.
type retiringSplitter struct {
	traffic.Splitter
	ref *workloadRef
}

// Flip flips, then retires the referenced Deployment.
func (r *retiringSplitter) Flip(ctx context.Context, slot string) error {
	if err := r.Splitter.Flip(ctx, slot); err != nil {
		return err
	}
	r.ref.retire(ctx)
	return nil
}

// retiringProvider wraps p so that a flip retires ref; p must split (as
// service mode's does), which config allows alone with a workloadRef.
func retiringProvider(p traffic.Provider, ref *workloadRef) (traffic.Provider, error) {
	s, ok := p.(traffic.Splitter)
	if !ok {
		return nil, fmt.Errorf("target.kubernetes.workloadRef works with traffic.service or cutover's router only")
	}
	return &retiringSplitter{Splitter: s, ref: ref}, nil
}
