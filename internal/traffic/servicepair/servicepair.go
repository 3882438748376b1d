// Package servicepair moves an app's traffic the way Argo Rollouts and
// Flagger do with a gateway or a mesh: two Services of the team's, a
// stable one and a canary one, each pointed at one slot by its selector
// (through package service), and a route whose weights between the two
// Services split the traffic. The route is what the provider using the
// pair writes: an HTTPRoute's backendRefs (package gatewayapi) or a
// VirtualService's destination hosts (package istio, by host); Pair only
// says when to point a Service and when to write which weights.
package servicepair

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/cutover/cutover/internal/traffic"
	"github.com/cutover/cutover/internal/traffic/service"
)

var _ traffic.HeaderRouter = (*Pair)(nil)

// Route is the object whose weights share the traffic between the stable
// and the canary Service. Each method reads it afresh, and each write
// refuses, changing nothing, when someone else changed the weights since
// cutover last wrote them.
type Route interface {
	// Weight returns the canary Service's share of the traffic in
	// percent.
	Weight(ctx context.Context) (int, error)
	// SetWeight gives the canary Service w percent of the traffic and the
	// stable Service the rest.
	SetWeight(ctx context.Context, w int) error
	// SetHeaderRoute sends the requests m matches to the canary Service,
	// whatever the weights, replacing the header route set before.
	SetHeaderRoute(ctx context.Context, m traffic.HeaderMatch) error
	// Abort sends all traffic to the stable Service in one write: canary
	// weight 0, no header route.
	Abort(ctx context.Context) error
	// ToCanary reports whether the canary Service gets any traffic: a
	// weight, a header route, or weights cutover did not write.
	ToCanary(ctx context.Context) (bool, error)
}

// Options name an app's two Services.
type Options struct {
	Namespace string
	App       string
	// StableService selects the slot production traffic goes to.
	StableService string
	// CanaryService selects the slot a canary or preview runs in.
	CanaryService string
	// Timeout bounds each wait for a Service's endpoints to follow its
	// selector; default 2m. A deadline of ctx's own can cut it shorter.
	Timeout time.Duration
}

// Pair drives an app's two Services and the weights of its Route. It
// implements traffic.HeaderRouter.
type Pair struct {
	stable, canary *service.Provider
	route          Route
}

// New watches the app's Services and pods (see service.New); the watches
// stop with ctx. example is the provider's configuration written right,
// for the error when a Service is not named.
func New(ctx context.Context, client kubernetes.Interface, opts Options, route Route, example string) (*Pair, error) {
	switch {
	case opts.StableService == "" || opts.CanaryService == "":
		return nil, fmt.Errorf("weights between two Services need both of them: %s", example)
	case opts.StableService == opts.CanaryService:
		return nil, fmt.Errorf("the stable and the canary Service are both %s; give the canary one of its own, such as %s-canary", opts.StableService, opts.App)
	}
	newService := func(name string) (*service.Provider, error) {
		return service.New(ctx, client, service.Options{Namespace: opts.Namespace, App: opts.App, Active: name, FlipTimeout: opts.Timeout})
	}
	p := &Pair{route: route}
	var err error
	if p.stable, err = newService(opts.StableService); err != nil {
		return nil, err
	}
	if p.canary, err = newService(opts.CanaryService); err != nil {
		return nil, err
	}
	return p, nil
}

// Preview points the canary Service at slot and waits until its endpoints
// are slot's pods; it leaves the weights alone, so no production traffic
// goes there yet.
func (p *Pair) Preview(ctx context.Context, slot string) error {
	return p.canary.Flip(ctx, slot)
}

// Flip sends all traffic to slot. When the stable Service selects another
// slot, the canary Service is pointed at slot and given all the weight
// first, so the stable Service moves while it takes no traffic; then the
// stable Service selects slot and gets all the weight back (canary 0,
// stable 100), and cutover's header route is removed. It refuses,
// changing nothing, when slot has no ready pod.
func (p *Pair) Flip(ctx context.Context, slot string) error {
	active, err := p.stable.Active(ctx)
	if err != nil {
		return err
	}
	if active != slot {
		if err := p.canary.Flip(ctx, slot); err != nil {
			return err
		}
		if err := p.route.SetWeight(ctx, 100); err != nil {
			return err
		}
	}
	if err := p.stable.Flip(ctx, slot); err != nil {
		return err
	}
	return p.route.Abort(ctx)
}

// Active returns the slot the stable Service selects, or the canary
// Service's when the canary has all the weight; "" when that Service
// selects no slot of the app. During a split it is the stable slot.
func (p *Pair) Active(ctx context.Context) (string, error) {
	w, err := p.route.Weight(ctx)
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
// sends the canary some (see Route.ToCanary). A slot that serves must not
// lose its pods, though it is not Active.
func (p *Pair) Serves(ctx context.Context, slot string) (bool, error) {
	if stable, err := p.stable.Active(ctx); err != nil || stable == slot {
		return stable == slot, err
	}
	if canary, err := p.canary.Active(ctx); err != nil || canary != slot {
		return false, err
	}
	return p.route.ToCanary(ctx)
}

// Weight returns the canary's share of the traffic in percent.
func (p *Pair) Weight(ctx context.Context) (int, error) {
	return p.route.Weight(ctx)
}

// SetWeight sends weight percent of the traffic to slot through the
// canary Service and the rest to the stable Service; with a weight above
// 0 it first points the canary Service at slot (see Preview).
func (p *Pair) SetWeight(ctx context.Context, slot string, weight int) error {
	if weight < 0 || weight > 100 {
		return fmt.Errorf("canary weight %d: use a percentage from 0 to 100", weight)
	}
	if weight > 0 {
		if err := p.canary.Flip(ctx, slot); err != nil {
			return err
		}
	}
	return p.route.SetWeight(ctx, weight)
}

// Split gives canary weight percent of the traffic and the stable
// Service the rest (SetWeight); weight 0 is Abort, which also removes the
// header route. The stable Service keeps the slot the last Flip gave it,
// stable. The gateway or the mesh splits the requests themselves, so the
// share is exactly the weight.
func (p *Pair) Split(ctx context.Context, stable, canary string, weight int) (traffic.Share, error) {
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
// that m matches to it, whatever the weight; it replaces an earlier
// header route.
func (p *Pair) SetHeaderRoute(ctx context.Context, slot string, m traffic.HeaderMatch) error {
	if err := m.Check(); err != nil {
		return err
	}
	if err := p.canary.Flip(ctx, slot); err != nil {
		return err
	}
	return p.route.SetHeaderRoute(ctx, m)
}

// Abort sends all traffic back to the stable Service in one write: canary
// weight 0, stable 100, no header route. The canary Service keeps its
// selector.
func (p *Pair) Abort(ctx context.Context) error {
	return p.route.Abort(ctx)
}
