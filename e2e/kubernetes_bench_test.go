package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/cutover/cutover/internal/kubetest"
)

// BenchmarkKubernetesServiceMode measures blue-green deploys in service mode
// on the real control plane from kubetest (pods played by kwok), driving the
// real binary: `cutover serve` and one `cutover deploy web --version vN -o
// json` per iteration, with 3 and with 30 replicas a slot, the default
// strategy (autoPromotion, bakeTime 10s). It reports, median and p90
// (nearest rank) over the iterations:
//
//   - s/deploy-to-promoted: from the start of `cutover deploy` to the time
//     of its Promoted event, which cutover records once the new slot is
//     ready, the preview and active Services point at it and the active
//     one's EndpointSlices list its pods alone.
//   - ms/ready-to-promoted: the part of it after the new slot was ready
//     (cutover's ReplicasReady event): the preview patch, the active patch
//     and the wait for the EndpointSlices.
//   - s/deploy: `cutover deploy` from start to exit, which adds the
//     bakeTime watch after the flip; ns/op is its mean.
//   - ms/selector-to-endpointslice: in those deploys, from the watch event
//     of the Service carrying the new slot in its selector (cutover's patch
//     committed) to the watch event after which its EndpointSlices list
//     the new slot's ready pods, all of them, and nothing else.
//   - ms/bare-patch-to-endpointslice: the same interval for a selector
//     patch the benchmark sends itself (what `kubectl patch svc` sends) to a
//     Service over two plain Deployments of as many replicas, in the same
//     cluster, once per iteration just before the deploy; cutover/bare is
//     the ratio of the two medians.
//
// Every iteration starts from the same state: the idle slot scaled to 0 and
// its pods gone, as it is when deploys are minutes apart (the old slot is
// kept warm for bakeTime + 2s). The cutover binary is the e2e one, built
// with -race and run with GORACE=atexit_sleep_ms=0 (see TestMain).
//
//	CUTOVER_REQUIRE_KUBE=1 go test ./e2e -run '^$' -bench KubernetesServiceMode -benchtime 10x
func BenchmarkKubernetesServiceMode(b *testing.B) {
	for _, replicas := range []int{3, 30} {
		b.Run(fmt.Sprintf("replicas=%d", replicas), func(b *testing.B) {
			benchServiceMode(b, replicas)
		})
	}
}

func benchServiceMode(b *testing.B, replicas int) {
	k := newKubeSetup(b)
	k.replicas = replicas
	k.scaleDownDelay = "1s"
	k.writeKubeConfig(b, "")
	bare := newBareFlip(b, k.cluster, replicas)
	cw := watchFlips(b, k.cluster.Client, k.ns, "web", "cutover.dev/slot")
	k.serve(b)
	kubetest.WaitFor(b, 2*time.Minute, func() (bool, error) {
		return k.selectorSlot(b, "web") == "blue" && len(k.endpointPods(b, "web")) == replicas, nil
	})

	var promoted, flips, deploys, cutoverEps, bareEps []time.Duration
	version := 1
	for b.Loop() {
		b.StopTimer()
		idle := map[string]string{"blue": "green", "green": "blue"}[k.selectorSlot(b, "web")]
		k.waitScaledToZero(b, idle)
		bareEps = append(bareEps, bare.flip(b))

		version++
		cw.reset()
		b.StartTimer()
		start := time.Now()
		r := k.mustCLI(b, "deploy", "web", "--version", fmt.Sprintf("v%d", version), "-o", "json")
		deploys = append(deploys, time.Since(start))
		promotedAt := eventTime(b, r.stderr, "Promoted")
		promoted = append(promoted, promotedAt.Sub(start))
		flips = append(flips, promotedAt.Sub(eventTime(b, r.stderr, "ReplicasReady")))
		cutoverEps = append(cutoverEps, cw.flipTime(b, idle, "web-"+idle+"-", replicas))
	}

	report(b, promoted, time.Second, "s/deploy-to-promoted")
	report(b, flips, time.Millisecond, "ms/ready-to-promoted")
	report(b, deploys, time.Second, "s/deploy")
	report(b, cutoverEps, time.Millisecond, "ms/selector-to-endpointslice")
	report(b, bareEps, time.Millisecond, "ms/bare-patch-to-endpointslice")
	b.ReportMetric(float64(percentile(cutoverEps, 0.5))/float64(percentile(bareEps, 0.5)), "cutover/bare")
}

// waitScaledToZero waits until slot's Deployment (if any) is at 0 replicas
// and its pods are gone.
func (k *kubeSetup) waitScaledToZero(t testing.TB, slot string) {
	t.Helper()
	ctx := context.Background()
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		d, err := k.cluster.Client.AppsV1().Deployments(k.ns).Get(ctx, "web-"+slot, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil || *d.Spec.Replicas != 0 || d.Status.Replicas != 0 {
			return false, err
		}
		pods, err := k.cluster.Client.CoreV1().Pods(k.ns).List(ctx, metav1.ListOptions{LabelSelector: "cutover.dev/slot=" + slot})
		return err == nil && len(pods.Items) == 0, err
	})
}

// bareFlip is the seeds' recipe done by hand: two Deployments, bare-blue and
// bare-green, and a Service whose selector's version key the benchmark
// patches, in a namespace of their own.
type bareFlip struct {
	client kubernetes.Interface
	ns     string
	pods   int
	active string
	watch  *flipWatch
}

func newBareFlip(t testing.TB, c *kubetest.Cluster, replicas int) *bareFlip {
	t.Helper()
	ctx := context.Background()
	f := &bareFlip{client: c.Client, ns: c.Namespace(t), pods: replicas, active: "blue"}
	for _, v := range []string{"blue", "green"} {
		sel := map[string]string{"app": "bare", "version": v}
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "bare-" + v},
			Spec: appsv1.DeploymentSpec{Replicas: new(int32(replicas)), Selector: &metav1.LabelSelector{MatchLabels: sel},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example/web:" + v}}}}}}
		if _, err := c.Client.AppsV1().Deployments(f.ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "bare"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "bare", "version": "blue"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	if _, err := c.Client.CoreV1().Services(f.ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.watch = watchFlips(t, c.Client, f.ns, "bare", "version")
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		for _, v := range []string{"blue", "green"} {
			d, err := c.Client.AppsV1().Deployments(f.ns).Get(ctx, "bare-"+v, metav1.GetOptions{})
			if err != nil || d.Status.AvailableReplicas != int32(replicas) {
				return false, err
			}
		}
		return len(c.EndpointPods(t, f.ns, "bare")) == replicas, nil
	})
	return f
}

// flip patches the Service to the other Deployment, as `kubectl patch svc
// bare -p '{"spec":{"selector":{"version":"green"}}}'` does, and returns the
// time its EndpointSlices took to list only that Deployment's pods.
func (f *bareFlip) flip(t testing.TB) time.Duration {
	t.Helper()
	next := map[string]string{"blue": "green", "green": "blue"}[f.active]
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"selector": map[string]string{"version": next}}})
	if err != nil {
		t.Fatal(err)
	}
	f.watch.reset()
	if _, err := f.client.CoreV1().Services(f.ns).Patch(context.Background(), "bare", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	f.active = next
	return f.watch.flipTime(t, next, "bare-"+next+"-", f.pods)
}

// flipWatch follows one Service and its EndpointSlices through informers
// and stamps every change as it arrives, so both ends of a flip are read
// off the same kind of watch stream: when the Service first carried a value
// of the selector key, and what the EndpointSlices listed at each change.
type flipWatch struct {
	svc, key string
	slices   cache.Indexer

	mu         sync.Mutex
	selectorAt map[string]time.Time // key's value -> first seen since reset
	listings   []listing            // since reset, in arrival order
}

// listing is what a Service's EndpointSlices held at one moment.
type listing struct {
	at    time.Time
	pods  []string // the pod of each endpoint
	ready int      // how many endpoints are ready
}

// watchFlips starts informers on Service svc of ns and its EndpointSlices;
// they stop at the end of the test.
func watchFlips(t testing.TB, client kubernetes.Interface, ns, svc, key string) *flipWatch {
	t.Helper()
	w := &flipWatch{svc: svc, key: key, selectorAt: map[string]time.Time{}}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	svcs := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", svc).String()
		}))
	eps := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = discoveryv1.LabelServiceName + "=" + svc }))
	onService := func(obj any) {
		at := time.Now()
		if s, ok := obj.(*corev1.Service); ok {
			w.sawSelector(at, s.Spec.Selector[key])
		}
	}
	onSlices := func(any) { w.sawSlices(time.Now()) }
	si := svcs.Core().V1().Services().Informer()
	ei := eps.Discovery().V1().EndpointSlices().Informer()
	w.slices = ei.GetIndexer()
	for _, reg := range []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandlerFuncs
	}{
		{si, cache.ResourceEventHandlerFuncs{AddFunc: onService, UpdateFunc: func(_, obj any) { onService(obj) }}},
		{ei, cache.ResourceEventHandlerFuncs{AddFunc: onSlices, UpdateFunc: func(_, obj any) { onSlices(obj) }, DeleteFunc: onSlices}},
	} {
		if _, err := reg.inf.AddEventHandler(reg.h); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []informers.SharedInformerFactory{svcs, eps} {
		f.Start(stop)
		for typ, ok := range f.WaitForCacheSync(stop) {
			if !ok {
				t.Fatalf("watch %v of service %s/%s: the cache did not sync", typ, ns, svc)
			}
		}
	}
	return w
}

func (w *flipWatch) sawSelector(at time.Time, value string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, seen := w.selectorAt[value]; !seen {
		w.selectorAt[value] = at
	}
}

// sawSlices records what the EndpointSlices list now; the informer's
// store already holds the change it reports.
func (w *flipWatch) sawSlices(at time.Time) {
	l := listing{at: at}
	for _, obj := range w.slices.List() {
		for _, ep := range obj.(*discoveryv1.EndpointSlice).Endpoints {
			name := ""
			if ep.TargetRef != nil {
				name = ep.TargetRef.Name
			}
			l.pods = append(l.pods, name)
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				l.ready++
			}
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.listings = append(w.listings, l)
}

// reset forgets what was seen, before a flip.
func (w *flipWatch) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	clear(w.selectorAt)
	w.listings = nil
}

// flipTime waits until, since the last reset, the Service carried value in
// its selector and its EndpointSlices listed n ready endpoints, all of pods
// named with prefix, and returns the time between the two events.
func (w *flipWatch) flipTime(t testing.TB, value, prefix string, n int) time.Duration {
	t.Helper()
	var d time.Duration
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		patched, ok := w.selectorAt[value]
		if !ok {
			return false, nil
		}
		for _, l := range w.listings {
			if l.ready != n || len(l.pods) != n || slices.ContainsFunc(l.pods, func(p string) bool { return !strings.HasPrefix(p, prefix) }) {
				continue
			}
			// The two kinds come on two watch streams: on a busy machine
			// the slices' change can arrive first although it was
			// written after the Service's, and that is then below what
			// this can resolve.
			d = max(l.at.Sub(patched), 0)
			return true, nil
		}
		return false, nil
	})
	return d
}

// report logs every sample and reports their median and p90 in unit, the
// median as metric and the p90 as "p90-"+metric.
func report(b *testing.B, ds []time.Duration, unit time.Duration, metric string) {
	b.Helper()
	if len(ds) == 0 {
		return
	}
	b.Logf("%s: %v", metric, ds)
	b.ReportMetric(float64(percentile(ds, 0.5))/float64(unit), metric)
	b.ReportMetric(float64(percentile(ds, 0.9))/float64(unit), "p90-"+metric)
}

// eventTime returns the time of the first event with reason in the
// progress lines `deploy -o json` wrote to stderr.
func eventTime(t testing.TB, stderr, reason string) time.Time {
	t.Helper()
	for line := range strings.Lines(stderr) {
		var ev struct {
			Reason string    `json:"reason"`
			Time   time.Time `json:"time"`
		}
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Reason == reason {
			return ev.Time
		}
	}
	t.Fatalf("no %s event in the output of deploy:\n%s", reason, stderr)
	return time.Time{}
}

// percentile returns the nearest-rank p-th quantile of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(i, 0)]
}
