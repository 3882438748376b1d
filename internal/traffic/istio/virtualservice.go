package istio

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/cutover/cutover/internal/traffic"
)

// virtualService is a VirtualService seen through the names of one app's
// routes and what they send to: the subsets of its DestinationRule's host
// or, by host, its two Services. Its methods only look at or change the
// object in memory.
type virtualService struct {
	*istiov1.VirtualService
	// routes are the names of the HTTP routes that carry the weights.
	routes []string
	// host is the DestinationRule's host, which every weighed
	// destination names by subset; "" by host.
	host string
	// services are the stable and the canary Service, which the weighed
	// destinations name by host; empty by subset.
	services []string
}

// targets are what a weighed destination may send to: the slots'
// subsets, or by host the two Services.
func (v virtualService) targets() []string {
	if v.services != nil {
		return v.services
	}
	return slots[:]
}

// target is what d sends to: its subset, or by host the Service its host
// names (the host as written when it names neither Service).
func (v virtualService) target(d *networking.Destination) string {
	if v.services == nil {
		return d.GetSubset()
	}
	for _, svc := range v.services {
		if sameHost(d.GetHost(), svc, v.Namespace) {
			return svc
		}
	}
	return d.GetHost()
}

// example is a weighed destination written right, for error messages.
func (v virtualService) example() string {
	if v.services != nil {
		return fmt.Sprintf("[{destination: {host: %s}}]", v.services[0])
	}
	return fmt.Sprintf("[{destination: {host: %s, subset: blue}}]", v.host)
}

// split returns the weighed HTTP routes, in the order Options.Routes
// names them. Each must exist and send only to targets, each once.
func (v virtualService) split() ([]*networking.HTTPRoute, error) {
	var split []*networking.HTTPRoute
	for _, name := range v.routes {
		i := slices.IndexFunc(v.Spec.Http, func(r *networking.HTTPRoute) bool { return r.GetName() == name })
		if i < 0 {
			return nil, fmt.Errorf("no http route is named %s; give the route that serves the app name: %s, and route: %s", name, name, v.example())
		}
		r := v.Spec.Http[i]
		if len(r.Route) == 0 {
			return nil, fmt.Errorf("http route %s has no destinations (a redirect, a direct response or a delegate); cutover weighs a route's destinations: give it route: %s", name, v.example())
		}
		seen := map[string]bool{}
		for _, d := range r.Route {
			if err := v.check(name, d.GetDestination(), seen); err != nil {
				return nil, err
			}
			seen[v.target(d.GetDestination())] = true
		}
		split = append(split, r)
	}
	return split, nil
}

// check refuses a destination of route name that cutover cannot weigh:
// one to something else than its targets, or to one seen already.
func (v virtualService) check(name string, dest *networking.Destination, seen map[string]bool) error {
	if v.services != nil {
		switch svc := v.target(dest); {
		case !slices.Contains(v.services, svc):
			return fmt.Errorf("http route %s sends to host %s; cutover splits a route between the Services %s only: move that destination to a route of its own", name, dest.GetHost(), strings.Join(v.services, " and "))
		case dest.GetSubset() != "":
			return fmt.Errorf("http route %s sends to subset %s of %s; with stableService and canaryService cutover weighs the Services themselves: remove the subset", name, dest.GetSubset(), svc)
		case seen[svc]:
			return fmt.Errorf("http route %s sends to %s twice; give each Service one destination", name, svc)
		}
		return nil
	}
	switch {
	case !sameHost(dest.GetHost(), v.host, v.Namespace):
		return fmt.Errorf("http route %s sends to host %s; cutover splits a route between subsets of the DestinationRule's host %s only: move that destination to a route of its own", name, dest.GetHost(), v.host)
	case !slices.Contains(slots[:], dest.GetSubset()):
		return fmt.Errorf("http route %s sends to subset %q of %s; cutover's subsets are named after its slots: send it to subset %s", name, dest.GetSubset(), v.host, strings.Join(slots[:], " or "))
	case seen[dest.GetSubset()]:
		return fmt.Errorf("http route %s sends to subset %s twice; give each slot one destination", name, dest.GetSubset())
	}
	return nil
}

// sameHost reports whether hosts a and b name the same Service of
// namespace ns, short or fully qualified.
func sameHost(a, b, ns string) bool {
	short := func(h string) string {
		for _, suffix := range []string{"." + ns + ".svc.cluster.local", "." + ns + ".svc", "." + ns} {
			if s, ok := strings.CutSuffix(h, suffix); ok {
				return s
			}
		}
		return h
	}
	return short(a) == short(b)
}

// weights returns the weights the first split route gives the stable
// and the canary target, and whether every split route sends the same
// shares to the same targets, adding up to 100. By subset the stable one
// is the first destination (which a lone destination is, with all the
// traffic) and the canary the second (0 when there is none); by host they
// are the two Services, a missing one getting 0.
func (v virtualService) weights() (stable, canary int, consistent bool, err error) {
	split, err := v.split()
	if err != nil {
		return 0, 0, false, err
	}
	first := v.destinations(split[0])
	if v.services != nil {
		stable, canary = weightOf(first, v.services[0]), weightOf(first, v.services[1])
	} else if stable = first[0].weight; len(first) > 1 {
		canary = first[1].weight
	}
	consistent = stable+canary == 100
	for _, r := range split {
		consistent = consistent && slices.Equal(v.destinations(r), first)
	}
	return stable, canary, consistent, nil
}

// weighed is one destination of a route: its target and its weight, a
// lone destination's counted as 100 whatever it says.
type weighed struct {
	target string
	weight int
}

func (v virtualService) destinations(r *networking.HTTPRoute) []weighed {
	if len(r.Route) == 1 {
		return []weighed{{v.target(r.Route[0].GetDestination()), 100}}
	}
	var ds []weighed
	for _, d := range r.Route {
		ds = append(ds, weighed{v.target(d.GetDestination()), int(d.Weight)})
	}
	return ds
}

func weightOf(ds []weighed, target string) int {
	if i := slices.IndexFunc(ds, func(d weighed) bool { return d.target == target }); i >= 0 {
		return ds[i].weight
	}
	return 0
}

// active returns the subset that gets the traffic: the first destination
// of the first split route with some weight, "" when none has any.
func (v virtualService) active() (string, error) {
	split, err := v.split()
	if err != nil {
		return "", err
	}
	for _, d := range v.destinations(split[0]) {
		if d.weight > 0 {
			return d.target, nil
		}
	}
	return "", nil
}

// serves reports whether a split route gives subset slot some weight, or
// one of cutover's header routes sends to it.
func (v virtualService) serves(slot string) (bool, error) {
	split, err := v.split()
	if err != nil {
		return false, err
	}
	for _, r := range split {
		if slices.ContainsFunc(v.destinations(r), func(d weighed) bool { return d.target == slot && d.weight > 0 }) {
			return true, nil
		}
	}
	for _, r := range v.Spec.Http {
		if owned(r) && slices.ContainsFunc(r.Route, func(d *networking.HTTPRouteDestination) bool { return v.target(d.GetDestination()) == slot }) {
			return true, nil
		}
	}
	return false, nil
}

// setWeight makes the destinations of every split route target stable
// with 100-w percent and target canary with w, in that order; with canary
// "" stable becomes the lone destination. A destination keeps what else
// it had (port, headers); a new one copies the route's first.
func (v virtualService) setWeight(stable, canary string, w int) error {
	split, err := v.split()
	if err != nil {
		return err
	}
	for _, r := range split {
		next := []*networking.HTTPRouteDestination{v.destinationTo(r, stable)}
		if canary != "" {
			next = append(next, v.destinationTo(r, canary))
			next[0].Weight, next[1].Weight = int32(100-w), int32(w)
		}
		r.Route = next
	}
	return nil
}

// destinationTo returns a copy of r's destination to target, or of its
// first destination sent to target instead (by subset, or by host), without
// a weight.
func (v virtualService) destinationTo(r *networking.HTTPRoute, target string) *networking.HTTPRouteDestination {
	i := slices.IndexFunc(r.Route, func(d *networking.HTTPRouteDestination) bool { return v.target(d.GetDestination()) == target })
	d := proto.Clone(r.Route[max(i, 0)]).(*networking.HTTPRouteDestination)
	switch {
	case v.services == nil:
		d.Destination.Subset = target
	case i < 0:
		d.Destination.Host = target
	}
	d.Weight = 0
	return d
}

// other returns a subset of the first split route other than slot, ""
// when it sends to slot alone.
func (v virtualService) other(slot string) (string, error) {
	split, err := v.split()
	if err != nil {
		return "", err
	}
	for _, d := range v.destinations(split[0]) {
		if d.target != slot {
			return d.target, nil
		}
	}
	return "", nil
}

// HeaderRoutePrefix begins the name of every HTTP route cutover owns on a
// VirtualService: the header route it puts before each weighed route,
// named cutover-header-<route>. Cutover replaces or removes these routes
// and no others; do not give a route of your own a name with this prefix.
const HeaderRoutePrefix = "cutover-header-"

func owned(r *networking.HTTPRoute) bool { return strings.HasPrefix(r.GetName(), HeaderRoutePrefix) }

// setHeaderRoute replaces cutover's header routes with one before each
// split route: a copy of it (rewrites, timeouts, retries...) whose every
// match also requires the header, sending to target canary alone. Istio
// takes the first route that matches, so the header route comes first.
func (v virtualService) setHeaderRoute(canary string, m traffic.HeaderMatch) error {
	header, err := istioHeader(m)
	if err != nil {
		return err
	}
	if _, err := v.split(); err != nil {
		return err
	}
	v.removeHeaderRoute()
	split, _ := v.split()
	for _, r := range split {
		own := proto.Clone(r).(*networking.HTTPRoute)
		own.Name = HeaderRoutePrefix + r.Name
		if len(own.Match) == 0 { // Istio's default: every request
			own.Match = []*networking.HTTPMatchRequest{{}}
		}
		for _, match := range own.Match {
			if match.Headers == nil {
				match.Headers = map[string]*networking.StringMatch{}
			}
			match.Headers[strings.ToLower(m.Name)] = header
		}
		own.Route = []*networking.HTTPRouteDestination{v.destinationTo(r, canary)}
		i := slices.Index(v.Spec.Http, r)
		v.Spec.Http = slices.Insert(v.Spec.Http, i, own)
	}
	return nil
}

// removeHeaderRoute deletes cutover's header routes, leaving the others
// in their order.
func (v virtualService) removeHeaderRoute() {
	v.Spec.Http = slices.DeleteFunc(v.Spec.Http, owned)
}

// istioHeader is m as a VirtualService match; Istio wants header names
// in lower case.
func istioHeader(m traffic.HeaderMatch) (*networking.StringMatch, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	switch {
	case m.Value != "":
		return &networking.StringMatch{MatchType: &networking.StringMatch_Exact{Exact: m.Value}}, nil
	case m.Prefix != "":
		return &networking.StringMatch{MatchType: &networking.StringMatch_Prefix{Prefix: m.Prefix}}, nil
	}
	if _, err := regexp.Compile(m.Regex); err != nil {
		return nil, fmt.Errorf("header route %s: regex %q: %w", m.Name, m.Regex, err)
	}
	return &networking.StringMatch{MatchType: &networking.StringMatch_Regex{Regex: m.Regex}}, nil
}
