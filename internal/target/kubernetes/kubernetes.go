// Package kubernetes runs each slot of an app as a Deployment <app>-<slot>
// in a Kubernetes namespace. It reads the cluster through informers (one
// watch per kind, no GET per decision) and writes idempotently: applying
// the same spec twice changes nothing, and it never touches an object
// that does not carry its managed-by label.
//
// In router mode (Runner.Router) cutover's router proxies to the slot's
// pods itself: their endpoints come from the pod informer, not from
// EndpointSlices (see Target.Endpoints), and follow the pods as they come
// and go.
package kubernetes

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
)

// The labels cutover puts on each slot's Deployment and pods.
const (
	LabelApp       = "app.kubernetes.io/name"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelSlot      = "cutover.dev/slot"
	LabelRevision  = "cutover.dev/revision"
	// ManagedBy is LabelManagedBy's value on every object cutover owns.
	ManagedBy = "cutover"
)

// Spec says what one slot runs.
type Spec struct {
	App      string
	Slot     string
	Revision int
	// Version replaces "${VERSION}" in the template's images, commands,
	// arguments and environment values.
	Version string
	// Image, when set, replaces the image of the template's container
	// named ImageContainer (its first when empty).
	Image          string
	ImageContainer string
	Replicas       int
	Template       corev1.PodTemplateSpec
}

// Target runs slots as Deployments in one namespace.
type Target struct {
	client      kubernetes.Interface
	namespace   string
	deployments appslisters.DeploymentNamespaceLister
	pods        corelisters.PodNamespaceLister
	podInformer cache.SharedIndexInformer
	events      *eventWatches
}

// New starts informers on the Deployments and pods cutover manages in
// namespace and returns once they have synced; they stop with ctx.
func New(ctx context.Context, client kubernetes.Interface, namespace string) (*Target, error) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = LabelManagedBy + "=" + ManagedBy }))
	t := &Target{client: client, namespace: namespace,
		deployments: factory.Apps().V1().Deployments().Lister().Deployments(namespace),
		pods:        factory.Core().V1().Pods().Lister().Pods(namespace),
		podInformer: factory.Core().V1().Pods().Informer()}
	// Events carry no labels: they are watched apart, all of the
	// namespace's, and told apart by the object they are about.
	evFactory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace))
	evInformer := evFactory.Core().V1().Events().Informer()
	t.events = &eventWatches{store: evInformer.GetStore(), byDep: map[string]*eventWatch{}}
	if _, err := evInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: t.events.observe, UpdateFunc: func(_, obj any) { t.events.observe(obj) }}); err != nil {
		return nil, fmt.Errorf("watch events in namespace %s: %w", namespace, err)
	}
	for _, f := range []informers.SharedInformerFactory{factory, evFactory} {
		f.Start(ctx.Done())
		for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
			if !ok {
				return nil, fmt.Errorf("watch %v in namespace %s: the cache did not sync (is the API server reachable?)", typ, namespace)
			}
		}
	}
	return t, nil
}

// Client is the client t reads and writes the namespace with, for a
// traffic provider that works on the same cluster (istio by host points
// two Services at the slots with it).
func (t *Target) Client() kubernetes.Interface { return t.client }

// Name is the Deployment that runs app's slot.
func Name(app, slot string) string { return app + "-" + slot }

// SlotSelector selects the pods of app's slot.
func SlotSelector(app, slot string) map[string]string {
	return map[string]string{LabelApp: app, LabelSlot: slot}
}

// Apply creates or updates the slot's Deployment to run spec. It refuses a
// Deployment of the same name that cutover does not manage. The same spec
// applied again changes nothing: the Deployment keeps its generation and
// its pods. An update that races the cluster's own writes (the Deployment's
// status) is tried again on the newer object.
func (t *Target) Apply(ctx context.Context, spec Spec) error {
	if spec.Image != "" && imageContainer(&spec.Template.Spec, spec.ImageContainer) == nil {
		return fmt.Errorf("the pod template has no container %q to run image %s in; name one of its containers (CONTAINER=IMAGE)",
			spec.ImageContainer, spec.Image)
	}
	want := deployment(spec)
	deps := t.client.AppsV1().Deployments(t.namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := deps.Get(ctx, want.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			if _, err := deps.Create(ctx, want, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create deployment %s/%s: %w", t.namespace, want.Name, err)
			}
			return nil
		case err != nil:
			return fmt.Errorf("read deployment %s/%s: %w", t.namespace, want.Name, err)
		case cur.Labels[LabelManagedBy] != ManagedBy:
			return fmt.Errorf("deployment %s/%s exists and is not managed by cutover (no %s=%s label); rename or delete it, cutover will not adopt it",
				t.namespace, want.Name, LabelManagedBy, ManagedBy)
		}
		cur = cur.DeepCopy()
		cur.Labels, cur.Spec = want.Labels, want.Spec
		if _, err := deps.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update deployment %s/%s: %w", t.namespace, want.Name, err)
		}
		return nil
	})
}

// deployment builds the Deployment that runs spec.
func deployment(spec Spec) *appsv1.Deployment {
	l := map[string]string{LabelApp: spec.App, LabelSlot: spec.Slot, LabelRevision: strconv.Itoa(spec.Revision), LabelManagedBy: ManagedBy}
	tmpl := *spec.Template.DeepCopy()
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	for k, v := range l {
		tmpl.Labels[k] = v
	}
	substitute(&tmpl.Spec, spec.Version)
	if c := imageContainer(&tmpl.Spec, spec.ImageContainer); spec.Image != "" && c != nil {
		c.Image = spec.Image
	}
	replicas := int32(spec.Replicas)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: Name(spec.App, spec.Slot), Labels: l},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			// The selector is immutable, so it names only what never
			// changes for the slot: not the revision.
			Selector: &metav1.LabelSelector{MatchLabels: SlotSelector(spec.App, spec.Slot)},
			Template: tmpl,
		},
	}
}

// imageContainer is the pod's container named name, its first when name
// is "", or nil.
func imageContainer(pod *corev1.PodSpec, name string) *corev1.Container {
	for i := range pod.Containers {
		if name == "" || pod.Containers[i].Name == name {
			return &pod.Containers[i]
		}
	}
	return nil
}

// substitute replaces "${VERSION}" where a pod template names what runs.
func substitute(pod *corev1.PodSpec, version string) {
	sub := func(s string) string { return strings.ReplaceAll(s, "${VERSION}", version) }
	for _, cs := range [][]corev1.Container{pod.InitContainers, pod.Containers} {
		for i := range cs {
			c := &cs[i]
			c.Image = sub(c.Image)
			for j := range c.Command {
				c.Command[j] = sub(c.Command[j])
			}
			for j := range c.Args {
				c.Args[j] = sub(c.Args[j])
			}
			for j := range c.Env {
				c.Env[j].Value = sub(c.Env[j].Value)
			}
		}
	}
}

// Scale sets the slot's Deployment to replicas pods; a missing Deployment
// is an error. Scaling to 0 keeps the Deployment for a rollback.
func (t *Target) Scale(ctx context.Context, app, slot string, replicas int) error {
	name := Name(app, slot)
	if err := t.owned(ctx, name); err != nil {
		return err
	}
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)
	if _, err := t.client.AppsV1().Deployments(t.namespace).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("scale deployment %s/%s to %d: %w", t.namespace, name, replicas, err)
	}
	return nil
}

// Stop scales the slot to 0 pods, keeping its Deployment for a rollback.
func (t *Target) Stop(ctx context.Context, app, slot string) error {
	return t.Scale(ctx, app, slot, 0)
}

// owned checks that the Deployment name exists and is cutover's.
func (t *Target) owned(ctx context.Context, name string) error {
	d, err := t.client.AppsV1().Deployments(t.namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read deployment %s/%s: %w", t.namespace, name, err)
	}
	if d.Labels[LabelManagedBy] != ManagedBy {
		return fmt.Errorf("deployment %s/%s is not managed by cutover; it is left alone", t.namespace, name)
	}
	return nil
}

// WaitNoPods waits until the informer shows no pod of the slot, those
// being deleted included, or ctx ends.
func (t *Target) WaitNoPods(ctx context.Context, app, slot string) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		pods, err := t.pods.List(labels.SelectorFromSet(SlotSelector(app, slot)))
		if err == nil && len(pods) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deployment %s/%s scaled to 0, but %d pod(s) still there: %w", t.namespace, Name(app, slot), len(pods), ctx.Err())
		case <-tick.C:
		}
	}
}

// Exists reports whether the slot's Deployment is there (as the informer
// last saw it).
func (t *Target) Exists(app, slot string) bool {
	_, err := t.deployments.Get(Name(app, slot))
	return err == nil
}

// WaitReady waits until the slot's Deployment of revision is fully rolled
// out and every pod is Ready. It fails fast, naming the pod and
// Kubernetes' reason, when a pod crash-loops, cannot pull its image or
// stays unschedulable for UnschedulableGrace, and when timeout passes; on failure it scales the slot to 0,
// so that nothing half-started keeps running.
//
// Only revision counts: until the watch shows the Deployment of that
// revision, what it shows is an older state that says nothing about it.
func (t *Target) WaitReady(ctx context.Context, app, slot string, revision int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last string
	seen := false
	for {
		st := t.Status(app, slot)
		current := st.Exists && st.Revision == revision
		if current && st.Ready() {
			return nil
		}
		var err error
		switch {
		case current:
			seen = true
			err = st.failure(time.Now())
		case seen:
			err = fmt.Errorf("deployment %s is gone or was replaced while it started", st.Deployment)
		}
		if err == nil && ctx.Err() != nil {
			err = fmt.Errorf("deployment %s not ready after %s: %s", st.Deployment, timeout, orWaiting(last))
		}
		if err != nil {
			// A fresh context: the deploy's own may be what ran out.
			stopCtx, stop := context.WithTimeout(context.Background(), 30*time.Second)
			defer stop()
			err = t.explain(stopCtx, err, st)
			if serr := t.Stop(stopCtx, app, slot); serr != nil {
				return fmt.Errorf("%w (and scaling it to 0 failed: %v)", err, serr)
			}
			return err
		}
		last = st.summary()
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// explain adds to err the cluster's last warning about an unready pod of
// st (FailedScheduling, BackOff, ...), which often says more than the
// pod's status. It reads events once, on failure only.
func (t *Target) explain(ctx context.Context, err error, st Status) error {
	for _, p := range st.Pods {
		if p.Ready {
			continue
		}
		evs, lerr := t.client.CoreV1().Events(t.namespace).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.name", p.Name).String()})
		if lerr != nil {
			return err
		}
		var last *corev1.Event
		for i := range evs.Items {
			ev := &evs.Items[i]
			if ev.Type == corev1.EventTypeWarning && (last == nil || eventTime(ev).After(eventTime(last))) {
				last = ev
			}
		}
		if last != nil {
			return fmt.Errorf("%w; last event of pod %s: %s: %s", err, p.Name, last.Reason, strings.TrimSpace(last.Message))
		}
	}
	return err
}

// eventTime is when ev last happened, whichever API wrote it.
func eventTime(ev *corev1.Event) time.Time {
	for _, t := range []time.Time{ev.LastTimestamp.Time, ev.EventTime.Time, ev.CreationTimestamp.Time} {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

func orWaiting(s string) string {
	if s == "" {
		return "waiting for its pods"
	}
	return s
}

// Status is what the cluster says about one slot.
type Status struct {
	// Deployment is namespace/name.
	Deployment string `json:"deployment"`
	// Exists is false when the Deployment is not there.
	Exists    bool `json:"exists"`
	Revision  int  `json:"revision,omitempty"`
	Desired   int  `json:"desired"`
	Updated   int  `json:"updated"`
	ReadyPods int  `json:"ready"`
	// RolledOut is true once the controller has seen the latest spec and
	// every desired replica is updated and available.
	RolledOut bool `json:"rolledOut"`
	// Pods lists every pod of the slot.
	Pods []Pod `json:"pods"`
}

// Pod is one pod of a slot.
type Pod struct {
	Name  string `json:"name"`
	IP    string `json:"ip,omitempty"`
	Ready bool   `json:"ready"`
	// Reason says why an unready pod is not ready, in Kubernetes' words
	// (CrashLoopBackOff, ImagePullBackOff, Unschedulable, ...).
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Restarts counts the restarts of the pod's containers, so a bake
	// sees a container that crashed and came back between two looks.
	Restarts int `json:"restarts"`
	// since is when the pod's scheduling condition last changed.
	since time.Time
}

// fatalReasons are the pod states that do not get better by waiting.
var fatalReasons = map[string]bool{"CrashLoopBackOff": true, "ImagePullBackOff": true, "ErrImagePull": true,
	"InvalidImageName": true, "CreateContainerConfigError": true, corev1.PodReasonUnschedulable: true}

// Ready reports whether the slot is fully rolled out with every pod Ready.
func (s Status) Ready() bool {
	if !s.Exists || !s.RolledOut || s.Desired == 0 || len(s.Pods) != s.Desired {
		return false
	}
	for _, p := range s.Pods {
		if !p.Ready {
			return false
		}
	}
	return true
}

// UnschedulableGrace is how long a pod may stay unschedulable before the
// slot fails: the scheduler retries as nodes come, become ready or free up.
const UnschedulableGrace = 10 * time.Second

// failure returns the first pod's fatal state at now as an error, or nil.
func (s Status) failure(now time.Time) error {
	for _, p := range s.Pods {
		if !fatalReasons[p.Reason] || (p.Reason == corev1.PodReasonUnschedulable && now.Sub(p.since) < UnschedulableGrace) {
			continue
		}
		return fmt.Errorf("pod %s: %s: %s", p.Name, p.Reason, p.Message)
	}
	return nil
}

// summary says what the slot waits for, for a timeout's message.
func (s Status) summary() string {
	for _, p := range s.Pods {
		if !p.Ready && p.Reason != "" {
			return fmt.Sprintf("%d/%d pods ready; pod %s: %s", s.ReadyPods, s.Desired, p.Name, p.Reason)
		}
	}
	return fmt.Sprintf("%d/%d pods ready, %d/%d updated", s.ReadyPods, s.Desired, s.Updated, s.Desired)
}

// Status reports the slot as the informers last saw it. Pods being deleted
// are left out: they no longer count for the slot.
func (t *Target) Status(app, slot string) Status {
	name := Name(app, slot)
	st := Status{Deployment: t.namespace + "/" + name}
	d, err := t.deployments.Get(name)
	if err != nil {
		return st
	}
	st.Exists = true
	st.Revision, _ = strconv.Atoi(d.Labels[LabelRevision])
	if d.Spec.Replicas != nil {
		st.Desired = int(*d.Spec.Replicas)
	}
	st.Updated = int(d.Status.UpdatedReplicas)
	st.RolledOut = d.Status.ObservedGeneration >= d.Generation && st.Updated == st.Desired &&
		int(d.Status.AvailableReplicas) == st.Desired && int(d.Status.Replicas) == st.Desired
	pods, _ := t.pods.List(labels.SelectorFromSet(SlotSelector(app, slot)))
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Labels[LabelRevision] != d.Labels[LabelRevision] {
			continue
		}
		pod := podStatus(p)
		if pod.Ready {
			st.ReadyPods++
		}
		st.Pods = append(st.Pods, pod)
	}
	return st
}

// podStatus reads one pod's readiness and, when it is not ready, the most
// telling reason Kubernetes gives.
func podStatus(p *corev1.Pod) Pod {
	pod := Pod{Name: p.Name, IP: p.Status.PodIP}
	for _, cs := range p.Status.ContainerStatuses {
		pod.Restarts += int(cs.RestartCount)
	}
	for _, c := range p.Status.Conditions {
		switch {
		case c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue:
			pod.Ready = true
		case c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable:
			pod.Reason, pod.Message, pod.since = c.Reason, c.Message, c.LastTransitionTime.Time
		}
	}
	if pod.Ready {
		return pod
	}
	for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			pod.Reason, pod.Message = w.Reason, fmt.Sprintf("container %s: %s", cs.Name, w.Message)
			return pod
		}
	}
	if pod.Reason == "" && p.Status.Phase == corev1.PodPending {
		pod.Reason = "Pending"
	}
	return pod
}
