// Package istio moves an app's traffic with an Istio VirtualService, the
// team's own, in one of two ways. The weights go on the destinations of
// the VirtualService's HTTP routes that Options.Routes names, one
// destination per slot, the stable one first; Envoy sends each request to
// a destination by weight, so a split is exact.
//
// By subset (Options.DestinationRule), the DestinationRule's host is a
// Service that selects the pods of both slots, and its subsets blue and
// green select each slot's pods by the label cutover.dev/slot; no Service
// selector moves.
//
// By host (Options.StableService and CanaryService), as with the Gateway
// API, the destinations name two Services of the team's, a stable and a
// canary one, each pointed at one slot by its selector (package
// servicepair, shared with gatewayapi); no DestinationRule is needed.
//
// By subset, cutover adds the subsets blue and green to the
// DestinationRule when they are missing and refuses one of those names
// that selects other pods. On the VirtualService it changes only the
// destinations of the named routes and the routes it owns, named
// HeaderRoutePrefix+<route>, for header routes; it leaves every other
// route, and every other field, alone.
//
// Every write is an update with the object's resourceVersion under the
// field manager "cutover", which also records the canary weight it wrote
// in the annotation lastwrite.AnnotationWeight. Before each write and
// after it, cutover reads the VirtualService back: when the weights are no
// longer the ones it wrote, someone else changed them, and it refuses to
// go on, naming that writer from the object's managedFields. Cutover does
// not wait for istiod to push the change to the proxies: Istio reports
// that (status condition Reconciled) only with its distribution tracking
// on, which is off by default.
package istio

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	networkingclient "istio.io/client-go/pkg/clientset/versioned/typed/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	kube "github.com/cutover/cutover/internal/target/kubernetes"
	"github.com/cutover/cutover/internal/traffic"
	"github.com/cutover/cutover/internal/traffic/lastwrite"
	"github.com/cutover/cutover/internal/traffic/servicepair"
)

var _ traffic.HeaderRouter = (*Provider)(nil)

// Options name an app's VirtualService, the routes in it that carry the
// weights, and what they send to: its DestinationRule (by subset), or its
// stable and canary Services (by host).
type Options struct {
	Namespace string
	App       string
	// VirtualService is the one whose HTTP routes send to the app.
	VirtualService string
	// Routes names the HTTP routes whose destinations get the weights;
	// every one of them is split the same way.
	Routes []string
	// DestinationRule is the one whose host the routes send to, and
	// whose subsets blue and green cutover writes; empty by host.
	DestinationRule string
	// StableService, by host, is the Service the routes send production
	// traffic to, pointed at the stable slot; empty by subset.
	StableService string
	// CanaryService, by host, is the Service of the canary or preview,
	// pointed at its slot; empty by subset.
	CanaryService string
	// Timeout bounds each wait for a Service's endpoints to follow its
	// selector, by host; default 2m.
	Timeout time.Duration
}

// Provider drives an app's VirtualService and its DestinationRule or two
// Services. It implements traffic.Splitter and traffic.HeaderRouter.
type Provider struct {
	services networkingclient.VirtualServiceInterface
	rules    networkingclient.DestinationRuleInterface
	// slots tells whether a slot has ready pods to take traffic.
	slots *kube.Target
	opts  Options
	// pair points the two Services at the slots by host, and says when
	// to write which weights (see hostWeights); nil by subset.
	pair *servicepair.Pair
}

// New checks that the DestinationRule has a host (by subset) and that the
// named HTTP routes of the VirtualService send to its subsets or to the
// two Services, so that cutover can split them; it writes nothing. By
// host it watches the Services and pods (see service.New) until ctx ends,
// through slots' client.
func New(ctx context.Context, slots *kube.Target, istio networkingclient.NetworkingV1Interface, opts Options) (*Provider, error) {
	bySubset := fmt.Sprintf("istio: {virtualService: %s, routes: [primary], destinationRule: %s}", opts.App, opts.App)
	byHost := fmt.Sprintf("istio: {virtualService: %s, routes: [primary], stableService: %s-stable, canaryService: %s-canary}", opts.App, opts.App, opts.App)
	services := opts.StableService != "" || opts.CanaryService != ""
	switch {
	case opts.VirtualService == "" || len(opts.Routes) == 0 || opts.DestinationRule == "" && !services:
		return nil, fmt.Errorf("traffic through Istio needs the VirtualService, the names of its HTTP routes to split, and the DestinationRule or two Services: %s, or %s", bySubset, byHost)
	case opts.DestinationRule != "" && services:
		return nil, fmt.Errorf("traffic through Istio weighs the subsets of a DestinationRule or two Services, not both: %s, or %s", bySubset, byHost)
	}
	for _, r := range opts.Routes {
		if strings.HasPrefix(r, HeaderRoutePrefix) {
			return nil, fmt.Errorf("istio route %s: names beginning with %s are cutover's own header routes; name the route of yours that serves the app", r, HeaderRoutePrefix)
		}
	}
	p := &Provider{services: istio.VirtualServices(opts.Namespace), rules: istio.DestinationRules(opts.Namespace), slots: slots, opts: opts}
	if services {
		var err error
		p.pair, err = servicepair.New(ctx, slots.Client(), servicepair.Options{Namespace: opts.Namespace, App: opts.App,
			StableService: opts.StableService, CanaryService: opts.CanaryService, Timeout: opts.Timeout}, hostWeights{p}, byHost)
		if err != nil {
			return nil, err
		}
	}
	if _, err := p.get(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Preview makes sure the DestinationRule has slot's subset, through which
// a header route (SetHeaderRoute) or a mesh client reaches slot before
// the flip; the weights stay as they are. By host it points the canary
// Service at slot (servicepair.Pair.Preview).
func (p *Provider) Preview(ctx context.Context, slot string) error {
	if p.pair != nil {
		return p.pair.Preview(ctx, slot)
	}
	return p.subsets(ctx)
}

// Flip sends all traffic to slot's subset in one write: slot first with
// 100, the subset that had traffic second with 0, and no header routes.
// It refuses, changing nothing, when slot has no ready pod. By host it
// moves the Services as servicepair.Pair.Flip does.
func (p *Provider) Flip(ctx context.Context, slot string) error {
	if p.pair != nil {
		return p.pair.Flip(ctx, slot)
	}
	if err := p.ready(slot); err != nil {
		return err
	}
	if err := p.subsets(ctx); err != nil {
		return err
	}
	return p.write(ctx, func(v virtualService) error {
		other, err := v.other(slot)
		if err != nil {
			return err
		}
		v.removeHeaderRoute()
		return v.setWeight(slot, other, 0)
	})
}

// Active returns the subset the traffic goes to: the first destination
// with some weight, which during a split is the stable slot; "" when no
// destination has any. By host it is the slot the stable Service selects
// (see servicepair.Pair.Active).
func (p *Provider) Active(ctx context.Context) (string, error) {
	if p.pair != nil {
		return p.pair.Active(ctx)
	}
	v, err := p.get(ctx)
	if err != nil {
		return "", err
	}
	active, err := v.active()
	if err != nil {
		return "", p.errorf("%w", err)
	}
	return active, nil
}

// Serves reports whether slot gets any of the traffic: a weight on one of
// the named routes, or cutover's header route. A slot that serves must not
// lose its pods, though it is not Active. By host, see
// servicepair.Pair.Serves.
func (p *Provider) Serves(ctx context.Context, slot string) (bool, error) {
	if p.pair != nil {
		return p.pair.Serves(ctx, slot)
	}
	v, err := p.get(ctx)
	if err != nil {
		return false, err
	}
	serves, err := v.serves(slot)
	if err != nil {
		return false, p.errorf("%w", err)
	}
	return serves, nil
}

// Split sends weight percent of the traffic to canary's subset and the
// rest to stable's, exactly: the Share is weight out of 100 requests, not
// a count of pods. Weight 0 also removes cutover's header routes, so that
// no request reaches the canary; weight 100 is Flip(canary). A weight
// above 0 is refused, changing nothing, when canary has no ready pod. By
// host the canary Service is pointed at canary first (see
// servicepair.Pair.Split).
func (p *Provider) Split(ctx context.Context, stable, canary string, weight int) (traffic.Share, error) {
	if p.pair != nil {
		return p.pair.Split(ctx, stable, canary, weight)
	}
	switch {
	case weight < 0 || weight > 100:
		return traffic.Share{}, fmt.Errorf("weight %d is not a percentage from 0 to 100", weight)
	case stable == canary:
		return traffic.Share{}, fmt.Errorf("the stable and the canary slot are both %s", stable)
	case !slices.Contains(slots[:], stable) || !slices.Contains(slots[:], canary):
		return traffic.Share{}, fmt.Errorf("split between %s and %s: the slots are %s", stable, canary, strings.Join(slots[:], " and "))
	case weight == 100:
		if err := p.Flip(ctx, canary); err != nil {
			return traffic.Share{}, err
		}
		return traffic.Share{Canary: 100, Total: 100, Exact: true}, nil
	case weight > 0:
		if err := p.ready(canary); err != nil {
			return traffic.Share{}, err
		}
	}
	if err := p.subsets(ctx); err != nil {
		return traffic.Share{}, err
	}
	err := p.write(ctx, func(v virtualService) error {
		if weight == 0 {
			v.removeHeaderRoute()
		}
		return v.setWeight(stable, canary, weight)
	})
	if err != nil {
		return traffic.Share{}, err
	}
	return traffic.Share{Canary: weight, Total: 100, Exact: true}, nil
}

// SetHeaderRoute sends the requests that carry the header to slot's
// subset, whatever the weights, through cutover's own routes (see
// HeaderRoutePrefix); it replaces an earlier header route. By host they
// go to the canary Service, pointed at slot first.
func (p *Provider) SetHeaderRoute(ctx context.Context, slot string, m traffic.HeaderMatch) error {
	if _, err := istioHeader(m); err != nil {
		return err
	}
	if p.pair != nil {
		return p.pair.SetHeaderRoute(ctx, slot, m)
	}
	if !slices.Contains(slots[:], slot) {
		return fmt.Errorf("header route to slot %s: the slots are %s", slot, strings.Join(slots[:], " and "))
	}
	if err := p.subsets(ctx); err != nil {
		return err
	}
	return p.write(ctx, func(v virtualService) error { return v.setHeaderRoute(slot, m) })
}

// RemoveHeaderRoute deletes cutover's header routes.
func (p *Provider) RemoveHeaderRoute(ctx context.Context) error {
	return p.write(ctx, func(v virtualService) error { v.removeHeaderRoute(); return nil })
}

// ready refuses a slot without a ready pod to take the traffic.
func (p *Provider) ready(slot string) error {
	if st := p.slots.Status(p.opts.App, slot); st.ReadyPods == 0 {
		return p.errorf("left as it was: no ready pod of slot %s to send traffic to; check deployment %s", slot, st.Deployment)
	}
	return nil
}

// write applies change to the VirtualService as it is now and updates
// it, after checking that nobody else changed the weights; a conflicting
// update by someone else starts over from a fresh read. It then reads the
// result back and checks it again.
func (p *Provider) write(ctx context.Context, change func(virtualService) error) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		v, err := p.get(ctx)
		if err != nil {
			return err
		}
		if err := p.unchanged(v); err != nil {
			return err
		}
		before := v.DeepCopy()
		if err := change(v); err != nil {
			return p.errorf("left as it was: %w", err)
		}
		// Record the weights as every write leaves them (a lone
		// destination is 100/0): from then on, a change by someone else
		// is refused. Weights that do not add up to 100 stay the team's.
		if _, canary, consistent, _ := v.weights(); consistent {
			metav1.SetMetaDataAnnotation(&v.ObjectMeta, lastwrite.AnnotationWeight, fmt.Sprint(canary))
		}
		if proto.Equal(&before.Spec, &v.Spec) && maps.Equal(before.Annotations, v.Annotations) {
			return nil
		}
		if _, err := p.services.Update(ctx, v.VirtualService, metav1.UpdateOptions{FieldManager: lastwrite.FieldManager}); err != nil {
			return p.errorf("update: %w", err) // a conflict is still one to retry
		}
		return nil
	})
	if err != nil {
		return err
	}
	v, err := p.get(ctx)
	if err != nil {
		return err
	}
	return p.unchanged(v)
}

// get reads the VirtualService from the API server, not a cache: a write
// must start from its latest version and a read-back must see the write.
// It checks that the named routes can be split.
func (p *Provider) get(ctx context.Context) (virtualService, error) {
	v := virtualService{routes: p.opts.Routes}
	if p.pair != nil {
		v.services = []string{p.opts.StableService, p.opts.CanaryService}
	} else {
		var err error
		if v.host, err = p.host(ctx); err != nil {
			return virtualService{}, err
		}
	}
	var err error
	v.VirtualService, err = p.services.Get(ctx, p.opts.VirtualService, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return virtualService{}, p.errorf("not found; create it with an http route named %s whose route is %s (cutover sets the weights)", p.opts.Routes[0], v.example())
	}
	if err != nil {
		return virtualService{}, p.errorf("%w", err)
	}
	if _, err := v.split(); err != nil {
		return virtualService{}, p.errorf("%w", err)
	}
	return v, nil
}

func (p *Provider) errorf(format string, args ...any) error {
	return fmt.Errorf("virtualservice %s/%s: "+format, append([]any{p.opts.Namespace, p.opts.VirtualService}, args...)...)
}

// hostWeights writes the weights of the VirtualService's destinations to
// the two Services, by host: the Route of the Provider's servicepair.Pair.
type hostWeights struct{ p *Provider }

// Weight returns the canary Service's share, as the first split route has
// it.
func (h hostWeights) Weight(ctx context.Context) (int, error) {
	v, err := h.p.get(ctx)
	if err != nil {
		return 0, err
	}
	_, canary, _, err := v.weights()
	if err != nil {
		return 0, h.p.errorf("%w", err)
	}
	return canary, nil
}

// SetWeight gives the canary Service w percent on every split route and
// the stable Service the rest.
func (h hostWeights) SetWeight(ctx context.Context, w int) error {
	return h.p.write(ctx, func(v virtualService) error { return v.setWeight(h.p.opts.StableService, h.p.opts.CanaryService, w) })
}

// SetHeaderRoute puts cutover's header routes, to the canary Service,
// before the split ones.
func (h hostWeights) SetHeaderRoute(ctx context.Context, m traffic.HeaderMatch) error {
	return h.p.write(ctx, func(v virtualService) error { return v.setHeaderRoute(h.p.opts.CanaryService, m) })
}

// Abort gives the stable Service all the weight and removes cutover's
// header routes, in one write.
func (h hostWeights) Abort(ctx context.Context) error {
	return h.p.write(ctx, func(v virtualService) error {
		v.removeHeaderRoute()
		return v.setWeight(h.p.opts.StableService, h.p.opts.CanaryService, 0)
	})
}

// ToCanary reports whether the canary Service gets a weight, weights
// cutover did not write, or a header route.
func (h hostWeights) ToCanary(ctx context.Context) (bool, error) {
	v, err := h.p.get(ctx)
	if err != nil {
		return false, err
	}
	_, canary, consistent, err := v.weights()
	if err != nil {
		return false, h.p.errorf("%w", err)
	}
	return canary > 0 || !consistent || slices.ContainsFunc(v.Spec.Http, owned), nil
}
