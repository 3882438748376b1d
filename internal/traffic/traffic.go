// Package traffic names what moves an app's traffic between its slots
// when that is not cutover's own router: a Kubernetes Service selector
// (service/), a Gateway API HTTPRoute (gatewayapi/), an Istio
// VirtualService (istio/), nginx's upstream file (nginx/) and HAProxy's
// runtime API (haproxy/). Each one lives in
// a package of its own behind Provider; those that can also split the
// traffic for a canary implement Splitter, and those that can route a
// request by its header too, HeaderRouter; a route by cookie reaches
// those as a header route on Cookie (CookieMatch).
package traffic

import (
	"context"
	"fmt"
	"net/url"
)

// SlotEndpoints returns the endpoints of the revision that runs in slot
// now (one URL per replica), or none when slot runs nothing. Providers
// that point a proxy at addresses (nginx's upstream file, HAProxy's
// servers) are given one, since they do not find a slot's replicas by a
// label as a cluster does.
type SlotEndpoints func(slot string) []*url.URL

// Provider moves an app's traffic between its two slots.
type Provider interface {
	// Preview points the preview route at slot, for tests before the
	// flip. Callers call it only once slot is ready.
	Preview(ctx context.Context, slot string) error
	// Flip sends all production traffic to slot and returns once it
	// reaches slot only. It refuses, changing nothing, when slot has no
	// ready replica to take the traffic.
	Flip(ctx context.Context, slot string) error
	// Active returns the slot production traffic goes to now, or "" when
	// it goes to none of them. While a Splitter splits the traffic, it
	// is the stable slot: the one that keeps it all on an abort.
	Active(ctx context.Context) (string, error)
}

// Restorer is a Provider that points a proxy at the slots' addresses
// (SlotEndpoints) rather than finding their replicas by a label. Replicas
// started anew get new addresses, so when a restarted cutover has started
// the active slot's replicas again, it calls Restore to point the proxy
// at them; the controller finds out with a type assertion.
type Restorer interface {
	Provider
	// Restore sends all production traffic to slot's replicas as they
	// are now, as Flip does.
	Restore(ctx context.Context, slot string) error
}

// Splitter is a Provider that can also share the production traffic
// between the stable slot and a canary. The controller finds out with a
// type assertion, so a provider that cannot split needs nothing more.
type Splitter interface {
	Provider
	// Split sends about weight percent (0 to 100) of the production
	// traffic to canary and the rest to stable, and returns the share
	// canary really gets once it gets it. Weight 0 sends it all to stable
	// (canary keeps running); weight 100 is Flip(canary). A provider that
	// cannot split exactly says so in the Share it returns.
	Split(ctx context.Context, stable, canary string, weight int) (Share, error)
}

// Share is what a canary really gets once a Split is done. A provider
// that shares by backends (a Service's pods) counts the ready ones the
// traffic is sent to: Canary of them run the canary, out of Total. One
// that splits the requests at exact weights (a gateway) sets Exact, and
// Canary is then the canary's percent of the requests, out of Total 100.
// One that weighs servers (HAProxy) and cannot give the percent exactly
// sets Weights: Canary is the canary servers' weight, out of all
// servers' Total.
type Share struct {
	Canary  int
	Total   int
	Exact   bool
	Weights bool
}

// HeaderRouter is a Splitter that can also send the requests carrying a
// header to the canary, whatever the weight. The controller finds out
// with a type assertion, as for Splitter.
type HeaderRouter interface {
	Splitter
	// SetHeaderRoute sends the requests that m matches to canary,
	// replacing the header route set before. Split with weight 0 and
	// Flip remove it: the stable slot then gets every request.
	SetHeaderRoute(ctx context.Context, canary string, m HeaderMatch) error
}

// HeaderMatch is a request header that sends a request to the canary,
// whatever the weight: Value matches it exactly, else Prefix matches its
// beginning, else Regex (in the data plane's own dialect, Envoy's RE2 for
// most) matches it.
type HeaderMatch struct {
	Name   string
	Value  string
	Prefix string
	Regex  string
}

// Check says what a header match lacks: a name, or something to match.
func (m HeaderMatch) Check() error {
	switch {
	case m.Name == "":
		return fmt.Errorf("a header route needs the header's name, such as X-Canary")
	case m.Value == "" && m.Prefix == "" && m.Regex == "":
		return fmt.Errorf("header route %s: give a value, prefix or regex to match", m.Name)
	}
	return nil
}
