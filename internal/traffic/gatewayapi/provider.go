// Package gatewayapi moves an app's traffic with a Gateway API HTTPRoute,
// the way Argo Rollouts and Flagger do: two Services of the team's, a
// stable one and a canary one, each pointed at one slot by its selector
// (through package service), and the weights of the route's backendRefs
// to them splitting the traffic.
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
	"github.com/cutover/cutover/internal/traffic/service"
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
// weights and header routes of a canary.
type Provider struct {
	routes         gatewayclient.HTTPRouteInterface
	opts           Options
	stable, canary *service.Provider
}

// New watches the app's Services and pods (see service.New) and checks
// that the HTTPRoute exists and has a rule to split; the watches stop
// with ctx.
func New(ctx context.Context, client kubernetes.Interface, gateway gatewayclient.GatewayV1Interface, opts Options) (*Provider, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	switch {
	case opts.HTTPRoute == "" || opts.StableService == "" || opts.CanaryService == "":
		return nil, fmt.Errorf("traffic through the Gateway API needs the HTTPRoute and both Services: gatewayAPI: {httpRoute: web, stableService: web-stable, canaryService: web-canary}")
	case opts.StableService == opts.CanaryService:
		return nil, fmt.Errorf("the stable and the canary Service are both %s; give the canary one of its own, such as %s-canary", opts.StableService, opts.App)
	}
	newService := func(name string) (*service.Provider, error) {
		return service.New(ctx, client, service.Options{Namespace: opts.Namespace, App: opts.App, Active: name, FlipTimeout: opts.Timeout})
	}
	p := &Provider{routes: gateway.HTTPRoutes(opts.Namespace), opts: opts}
	var err error
	if p.stable, err = newService(opts.StableService); err != nil {
		return nil, err
	}
	if p.canary, err = newService(opts.CanaryService); err != nil {
		return nil, err
	}
	r, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := r.split(); err != nil {
		return nil, p.errorf("%w", err)
	}
	return p, nil
}

// Preview points the canary Service at slot and waits until its endpoints
// are slot's pods; it leaves the weights alone, so no production traffic
// goes there yet.
func (p *Provider) Preview(ctx context.Context, slot string) error {
	return p.canary.Flip(ctx, slot)
}

// Flip sends all traffic to slot. When the stable Service selects another
// slot, the canary Service is pointed at slot and given all the weight
// first, so the stable Service moves while it takes no traffic; then the
// stable Service selects slot and gets all the weight back (canary 0,
// stable 100), and cutover's header rules are removed. It refuses,
// changing nothing, when slot has no ready pod.
func (p *Provider) Flip(ctx context.Context, slot string) error {
	active, err := p.stable.Active(ctx)
	if err != nil {
		return err
	}
	if active != slot {
		if err := p.canary.Flip(ctx, slot); err != nil {
			return err
		}
		if err := p.write(ctx, func(r route) error { return r.setWeight(100) }); err != nil {
			return err
		}
	}
	if err := p.stable.Flip(ctx, slot); err != nil {
		return err
	}
	return p.Abort(ctx)
}

// Active returns the slot the stable Service selects, or the canary
// Service's when the canary has all the weight; "" when that Service
// selects no slot of the app. During a split it is the stable slot.
func (p *Provider) Active(ctx context.Context) (string, error) {
	w, err := p.Weight(ctx)
	if err != nil {
		return "", err
	}
	if w >= 100 {
		return p.canary.Active(ctx)
	}
	return p.stable.Active(ctx)
}

// Serves reports whether slot gets any of the route's traffic: the
// stable Service selects it, or the canary Service does and the route
// gives the canary a weight or a header rule. A slot that serves must not
// lose its pods, though it is not Active.
func (p *Provider) Serves(ctx context.Context, slot string) (bool, error) {
	if stable, err := p.stable.Active(ctx); err != nil || stable == slot {
		return stable == slot, err
	}
	if canary, err := p.canary.Active(ctx); err != nil || canary != slot {
		return false, err
	}
	r, err := p.get(ctx)
	if err != nil {
		return false, err
	}
	_, canary, consistent, err := r.weights()
	if err != nil {
		return false, p.errorf("%w", err)
	}
	return canary > 0 || !consistent || slices.ContainsFunc(r.Spec.Rules, r.owned), nil
}

// Weight returns the canary's share of the traffic in percent, as the
// first split rule of the route has it.
func (p *Provider) Weight(ctx context.Context) (int, error) {
	r, err := p.get(ctx)
	if err != nil {
		return 0, err
	}
	_, canary, _, err := r.weights()
	if err != nil {
		return 0, p.errorf("%w", err)
	}
	return canary, nil
}

// SetWeight sends weight percent of the traffic to slot through the
// canary Service and the rest to the stable Service; with a weight above
// 0 it first points the canary Service at slot (see Preview).
func (p *Provider) SetWeight(ctx context.Context, slot string, weight int) error {
	if weight < 0 || weight > 100 {
		return fmt.Errorf("canary weight %d: use a percentage from 0 to 100", weight)
	}
	if weight > 0 {
		if err := p.canary.Flip(ctx, slot); err != nil {
			return err
		}
	}
	return p.write(ctx, func(r route) error { return r.setWeight(weight) })
}

// Split gives canary weight percent of the traffic and the stable
// Service the rest (SetWeight); weight 0 is Abort, which also removes the
// header route. The stable Service keeps the slot the last Flip gave it,
// stable. The gateway splits the requests themselves, so the share is
// exactly the weight.
func (p *Provider) Split(ctx context.Context, stable, canary string, weight int) (traffic.Share, error) {
	var err error
	if weight == 0 {
		err = p.Abort(ctx)
	} else {
		err = p.SetWeight(ctx, canary, weight)
	}
	if err != nil {
		return traffic.Share{}, err
	}
	return traffic.Share{Canary: weight, Total: 100, Exact: true}, nil
}

// SetHeaderRoute points the canary Service at slot and sends the requests
// that carry the header to it, whatever the weight, through cutover's own
// rules (see HeaderRulePrefix); it replaces an earlier header route.
func (p *Provider) SetHeaderRoute(ctx context.Context, slot string, m traffic.HeaderMatch) error {
	if _, err := headerMatch(m); err != nil {
		return err
	}
	if err := p.canary.Flip(ctx, slot); err != nil {
		return err
	}
	return p.write(ctx, func(r route) error { return r.setHeaderRoute(m) })
}

// RemoveHeaderRoute deletes cutover's header rules.
func (p *Provider) RemoveHeaderRoute(ctx context.Context) error {
	return p.write(ctx, func(r route) error { r.removeHeaderRoute(); return nil })
}

// Abort sends all traffic back to the stable Service in one write: canary
// weight 0, stable 100, no header rules. The canary Service keeps its
// selector.
func (p *Provider) Abort(ctx context.Context) error {
	return p.write(ctx, func(r route) error { r.removeHeaderRoute(); return r.setWeight(0) })
}

// write applies change to the route as it is now and updates it, after
// checking that nobody else changed the weights; a conflicting update by
// someone else starts over from a fresh read. It then waits for the
// gateway to accept the result (see settle).
func (p *Provider) write(ctx context.Context, change func(route) error) error {
	var gen int64
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		r, err := p.get(ctx)
		if err != nil {
			return err
		}
		if err := p.unchanged(r); err != nil {
			return err
		}
		before := r.DeepCopy()
		if err := change(r); err != nil {
			return p.errorf("left as it was: %w", err)
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
		updated, err := p.routes.Update(ctx, r.HTTPRoute, metav1.UpdateOptions{FieldManager: lastwrite.FieldManager})
		if err != nil {
			return p.errorf("update: %w", err) // a conflict is still one to retry
		}
		gen = updated.Generation
		return nil
	})
	if err != nil {
		return err
	}
	return p.settle(ctx, gen)
}

// settle reads the route back until every controller in status.parents
// has accepted generation gen or later (see accepted), checking each time
// that the weights are still the ones cutover wrote.
func (p *Provider) settle(ctx context.Context, gen int64) error {
	var pending string
	// The reads do not run under Timeout's deadline: near it, client-go's
	// rate limiter would refuse a read that cannot start in time, and
	// that refusal would hide what the wait was for.
	deadline := time.Now().Add(p.opts.Timeout)
	errLate := errors.New("not accepted in time")
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if time.Now().After(deadline) {
			return false, errLate
		}
		r, err := p.get(ctx)
		if err != nil {
			return false, err
		}
		if err := p.unchanged(r); err != nil {
			return false, err
		}
		pending, err = accepted(r.HTTPRoute, max(gen, r.Generation))
		if err != nil {
			return false, p.errorf("written, but turned down: %w", err)
		}
		return pending == "", nil
	})
	if (errors.Is(err, errLate) || wait.Interrupted(err)) && pending != "" {
		return p.errorf("written, but not accepted in time: %s", pending)
	}
	return err
}

// get reads the route from the API server, not a cache: a write must
// start from its latest version and a read-back must see the write.
func (p *Provider) get(ctx context.Context) (route, error) {
	hr, err := p.routes.Get(ctx, p.opts.HTTPRoute, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return route{}, p.errorf("not found; create it with a rule whose backendRefs name service %s (cutover sets the weights)", p.opts.StableService)
	}
	if err != nil {
		return route{}, p.errorf("%w", err)
	}
	return route{HTTPRoute: hr, stable: p.opts.StableService, canary: p.opts.CanaryService}, nil
}

func (p *Provider) errorf(format string, args ...any) error {
	return fmt.Errorf("httproute %s/%s: "+format, append([]any{p.opts.Namespace, p.opts.HTTPRoute}, args...)...)
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
