// Package gatewayapi moves an app's traffic with a Gateway API HTTPRoute,
// the way Argo Rollouts and Flagger do: two Services of the team's, a
// stable one and a canary one, each pointed at one slot by its selector
// (through package servicepair), and the weights of the route's
// backendRefs to them splitting the traffic.
//
// The HTTPRoute is the team's too. Cutover changes only the weights of the
// rules that send to the stable Service (adding a canary backendRef where
// a rule has none) and the rules it owns, named HeaderRulePrefix-<n>, for
// header routes; it leaves every other rule, filter and field alone.
//
// Every write is an update with the route's resourceVersion under the
// field manager "cutover", which also records the canary weight it wrote
// in the annotation AnnotationWeight. Before each write and after it,
// cutover reads the route back: when the weights are no longer the ones
// it wrote, someone else changed them, and it refuses to go on, naming
// that writer from the route's managedFields. After a write it waits until
// every gateway controller that reports on the route (status.parents) has
// set Accepted and ResolvedRefs to True for the new generation; with no
// entry in status.parents (no controller has ever taken the route, as in
// tests) there is nothing to wait for and the write is done once read back.
package gatewayapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/typed/apis/v1"

	"github.com/cutover/cutover/internal/traffic"
	"github.com/cutover/cutover/internal/traffic/lastwrite"
	"github.com/cutover/cutover/internal/traffic/servicepair"
)

var _ traffic.HeaderRouter = (*Provider)(nil)

// AnnotationWeight records on the HTTPRoute the canary weight cutover
// last wrote. Remove it to let cutover take the route's weights over as
// they are after a refusal.
const AnnotationWeight = lastwrite.AnnotationWeight

// Options name an app's HTTPRoute and Services.
type Options struct {
	Namespace string
	App       string
	// HTTPRoute is the route whose rules send to StableService.
	HTTPRoute string
	// StableService selects the slot production traffic goes to.
	StableService string
	// CanaryService selects the slot a canary or preview runs in.
	CanaryService string
	// Timeout bounds each wait (for a Service's endpoints to follow its
	// selector, for the gateway to accept a change); default 2m. A
	// deadline of ctx's own can cut it shorter.
	Timeout time.Duration
}

// Provider drives an app's HTTPRoute and its two Services. It implements
// traffic.Provider, and traffic.Splitter and traffic.HeaderRouter for the
// weights and header routes of a canary, through servicepair.Pair: when
// to point which Service at a slot is the pair's, the HTTPRoute's weights
// and header rules are this package's.
type Provider struct {
	*servicepair.Pair
	route *routeWriter
}

// routeWriter reads and writes the app's HTTPRoute; it is the Pair's
// servicepair.Route.
type routeWriter struct {
	routes gatewayclient.HTTPRouteInterface
	opts   Options
}

// New watches the app's Services and pods (see service.New) and checks
// that the HTTPRoute exists and has a rule to split; the watches stop
// with ctx.
func New(ctx context.Context, client kubernetes.Interface, gateway gatewayclient.GatewayV1Interface, opts Options) (*Provider, error) {
	const example = "gatewayAPI: {httpRoute: web, stableService: web-stable, canaryService: web-canary}"
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.HTTPRoute == "" {
		return nil, fmt.Errorf("traffic through the Gateway API needs the HTTPRoute and both Services: %s", example)
	}
	w := &routeWriter{opts: opts}
	pair, err := servicepair.New(ctx, client, servicepair.Options{Namespace: opts.Namespace, App: opts.App,
		StableService: opts.StableService, CanaryService: opts.CanaryService, Timeout: opts.Timeout}, w, example)
	if err != nil {
		return nil, err
	}
	w.routes = gateway.HTTPRoutes(opts.Namespace) // after the pair's checks of opts, which need no client
	r, err := w.get(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := r.split(); err != nil {
		return nil, w.errorf("%w", err)
	}
	return &Provider{Pair: pair, route: w}, nil
}

// RemoveHeaderRoute deletes cutover's header rules.
func (p *Provider) RemoveHeaderRoute(ctx context.Context) error {
	return p.route.write(ctx, func(r route) error { r.removeHeaderRoute(); return nil })
}

// Weight returns the canary's share of the traffic in percent, as the
// first split rule of the route has it.
func (w *routeWriter) Weight(ctx context.Context) (int, error) {
	r, err := w.get(ctx)
	if err != nil {
		return 0, err
	}
	_, canary, _, err := r.weights()
	if err != nil {
		return 0, w.errorf("%w", err)
	}
	return canary, nil
}

// SetWeight gives the canary Service weight percent on every split rule
// and the stable Service the rest.
func (w *routeWriter) SetWeight(ctx context.Context, weight int) error {
	return w.write(ctx, func(r route) error { return r.setWeight(weight) })
}

// SetHeaderRoute sends the requests that carry the header to the canary
// Service, whatever the weight, through cutover's own rules (see
// HeaderRulePrefix); it replaces an earlier header route.
func (w *routeWriter) SetHeaderRoute(ctx context.Context, m traffic.HeaderMatch) error {
	return w.write(ctx, func(r route) error { return r.setHeaderRoute(m) })
}

// Abort sends all traffic back to the stable Service in one write: canary
// weight 0, stable 100, no header rules.
func (w *routeWriter) Abort(ctx context.Context) error {
	return w.write(ctx, func(r route) error { r.removeHeaderRoute(); return r.setWeight(0) })
}

// ToCanary reports whether the route sends the canary Service anything: a
// weight, weights cutover did not write, or a header rule.
func (w *routeWriter) ToCanary(ctx context.Context) (bool, error) {
	r, err := w.get(ctx)
	if err != nil {
		return false, err
	}
	_, canary, consistent, err := r.weights()
	if err != nil {
		return false, w.errorf("%w", err)
	}
	return canary > 0 || !consistent || slices.ContainsFunc(r.Spec.Rules, r.owned), nil
}

// write applies change to the route as it is now and updates it, after
// checking that nobody else changed the weights; a conflicting update by
// someone else starts over from a fresh read. It then waits for the
// gateway to accept the result (see settle).
func (w *routeWriter) write(ctx context.Context, change func(route) error) error {
	var gen int64
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		r, err := w.get(ctx)
		if err != nil {
			return err
		}
		if err := w.unchanged(r); err != nil {
			return err
		}
		before := r.DeepCopy()
		if err := change(r); err != nil {
			return w.errorf("left as it was: %w", err)
		}
		// Record the weights once they are cutover's; a header route
		// alone on a route cutover never weighed leaves them the team's.
		if _, canary, consistent, _ := r.weights(); consistent {
			metav1.SetMetaDataAnnotation(&r.ObjectMeta, AnnotationWeight, fmt.Sprint(canary))
		}
		if equality.Semantic.DeepEqual(before, r.HTTPRoute) {
			gen = r.Generation
			return nil
		}
		updated, err := w.routes.Update(ctx, r.HTTPRoute, metav1.UpdateOptions{FieldManager: lastwrite.FieldManager})
		if err != nil {
			return w.errorf("update: %w", err) // a conflict is still one to retry
		}
		gen = updated.Generation
		return nil
	})
	if err != nil {
		return err
	}
	return w.settle(ctx, gen)
}

// settle reads the route back until every controller in status.parents
// has accepted generation gen or later (see accepted), checking each time
// that the weights are still the ones cutover wrote.
func (w *routeWriter) settle(ctx context.Context, gen int64) error {
	var pending string
	// The reads do not run under Timeout's deadline: near it, client-go's
	// rate limiter would refuse a read that cannot start in time, and
	// that refusal would hide what the wait was for.
	deadline := time.Now().Add(w.opts.Timeout)
	errLate := errors.New("not accepted in time")
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if time.Now().After(deadline) {
			return false, errLate
		}
		r, err := w.get(ctx)
		if err != nil {
			return false, err
		}
		if err := w.unchanged(r); err != nil {
			return false, err
		}
		pending, err = accepted(r.HTTPRoute, max(gen, r.Generation))
		if err != nil {
			return false, w.errorf("written, but turned down: %w", err)
		}
		return pending == "", nil
	})
	if (errors.Is(err, errLate) || wait.Interrupted(err)) && pending != "" {
		return w.errorf("written, but not accepted in time: %s", pending)
	}
	return err
}

// get reads the route from the API server, not a cache: a write must
// start from its latest version and a read-back must see the write.
func (w *routeWriter) get(ctx context.Context) (route, error) {
	hr, err := w.routes.Get(ctx, w.opts.HTTPRoute, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return route{}, w.errorf("not found; create it with a rule whose backendRefs name service %s (cutover sets the weights)", w.opts.StableService)
	}
	if err != nil {
		return route{}, w.errorf("%w", err)
	}
	return route{HTTPRoute: hr, stable: w.opts.StableService, canary: w.opts.CanaryService}, nil
}

func (w *routeWriter) errorf(format string, args ...any) error {
	return fmt.Errorf("httproute %s/%s: "+format, append([]any{w.opts.Namespace, w.opts.HTTPRoute}, args...)...)
}

// accepted returns what is still pending before every entry of the
// route's status.parents has Accepted and ResolvedRefs True for
// generation gen or later ("" when nothing is, as with no entry at all),
// and an error when a controller has turned the generation down.
func accepted(hr *gatewayv1.HTTPRoute, gen int64) (string, error) {
	for _, parent := range hr.Status.Parents {
		for _, typ := range []gatewayv1.RouteConditionType{gatewayv1.RouteConditionAccepted, gatewayv1.RouteConditionResolvedRefs} {
			c := meta.FindStatusCondition(parent.Conditions, string(typ))
			switch {
			case c == nil || c.ObservedGeneration < gen:
				return fmt.Sprintf("controller %s has not reported %s for generation %d on parent %s", parent.ControllerName, typ, gen, parent.ParentRef.Name), nil
			case c.Status != metav1.ConditionTrue:
				return "", fmt.Errorf("controller %s reports %s=%s on parent %s: %s: %s", parent.ControllerName, typ, c.Status, parent.ParentRef.Name, c.Reason, c.Message)
			}
		}
	}
	return "", nil
}
