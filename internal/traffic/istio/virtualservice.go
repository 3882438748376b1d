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
// routes and its DestinationRule's host. Its methods only look at or
// change the object in memory.
type virtualService struct {
	*istiov1.VirtualService
	// routes are the names of the HTTP routes that carry the weights.
	routes []string
	// host is the DestinationRule's host, which every weighed
	// destination names.
	host string
}

// split returns the weighed HTTP routes, in the order Options.Routes
// names them. Each must exist and send only to slot subsets of host, each
// subset once.
func (v virtualService) split() ([]*networking.HTTPRoute, error) {
	var split []*networking.HTTPRoute
	for _, name := range v.routes {
		i := slices.IndexFunc(v.Spec.Http, func(r *networking.HTTPRoute) bool { return r.GetName() == name })
		if i < 0 {
			return nil, fmt.Errorf("no http route is named %s; give the route that serves the app name: %s, and route: [{destination: {host: %s, subset: blue}}]", name, name, v.host)
		}
		r := v.Spec.Http[i]
		if len(r.Route) == 0 {
			return nil, fmt.Errorf("http route %s has no destinations (a redirect, a direct response or a delegate); cutover weighs a route's destinations: give it route: [{destination: {host: %s, subset: blue}}]", name, v.host)
		}
		seen := map[string]bool{}
		for _, d := range r.Route {
			dest := d.GetDestination()
			switch {
			case !sameHost(dest.GetHost(), v.host, v.Namespace):
				return nil, fmt.Errorf("http route %s sends to host %s; cutover splits a route between subsets of the DestinationRule's host %s only: move that destination to a route of its own", name, dest.GetHost(), v.host)
			case !slices.Contains(slots[:], dest.GetSubset()):
				return nil, fmt.Errorf("http route %s sends to subset %q of %s; cutover's subsets are named after its slots: send it to subset %s", name, dest.GetSubset(), v.host, strings.Join(slots[:], " or "))
			case seen[dest.GetSubset()]:
				return nil, fmt.Errorf("http route %s sends to subset %s twice; give each slot one destination", name, dest.GetSubset())
			}
			seen[dest.GetSubset()] = true
		}
		split = append(split, r)
	}
	return split, nil
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

// weights returns the weights the first split route gives its first
// destination (the stable subset, which a lone destination is with all
// the traffic) and its second (the canary, 0 when there is none), and
// whether every split route sends the same shares to the same subsets,
// adding up to 100.
func (v virtualService) weights() (stable, canary int, consistent bool, err error) {
	split, err := v.split()
	if err != nil {
		return 0, 0, false, err
	}
	first := destinations(split[0])
	stable, canary = first[0].weight, 0
	if len(first) > 1 {
		canary = first[1].weight
	}
	consistent = stable+canary == 100
	for _, r := range split {
		consistent = consistent && slices.Equal(destinations(r), first)
	}
	return stable, canary, consistent, nil
}

// weighed is one destination of a route: its subset and its weight, a
// lone destination's counted as 100 whatever it says.
type weighed struct {
	subset string
	weight int
}

func destinations(r *networking.HTTPRoute) []weighed {
	if len(r.Route) == 1 {
		return []weighed{{r.Route[0].GetDestination().GetSubset(), 100}}
	}
	var ds []weighed
	for _, d := range r.Route {
		ds = append(ds, weighed{d.GetDestination().GetSubset(), int(d.Weight)})
	}
	return ds
}

// active returns the subset that gets the traffic: the first destination
// of the first split route with some weight, "" when none has any.
func (v virtualService) active() (string, error) {
	split, err := v.split()
	if err != nil {
		return "", err
	}
	for _, d := range destinations(split[0]) {
		if d.weight > 0 {
			return d.subset, nil
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
		if slices.ContainsFunc(destinations(r), func(d weighed) bool { return d.subset == slot && d.weight > 0 }) {
			return true, nil
		}
	}
	for _, r := range v.Spec.Http {
		if owned(r) && slices.ContainsFunc(r.Route, func(d *networking.HTTPRouteDestination) bool { return d.GetDestination().GetSubset() == slot }) {
			return true, nil
		}
	}
	return false, nil
}

// setWeight makes the destinations of every split route subset stable
// with 100-w percent and subset canary with w, in that order; with canary
// "" stable becomes the lone destination. A destination keeps what else
// it had (port, headers); a new one copies the route's first.
func (v virtualService) setWeight(stable, canary string, w int) error {
	split, err := v.split()
	if err != nil {
		return err
	}
	for _, r := range split {
		next := []*networking.HTTPRouteDestination{destinationTo(r, stable)}
		if canary != "" {
			next = append(next, destinationTo(r, canary))
			next[0].Weight, next[1].Weight = int32(100-w), int32(w)
		}
		r.Route = next
	}
	return nil
}

// destinationTo returns a copy of r's destination to subset, or of its
// first destination sent to subset instead, without a weight.
func destinationTo(r *networking.HTTPRoute, subset string) *networking.HTTPRouteDestination {
	i := max(slices.IndexFunc(r.Route, func(d *networking.HTTPRouteDestination) bool { return d.GetDestination().GetSubset() == subset }), 0)
	d := proto.Clone(r.Route[i]).(*networking.HTTPRouteDestination)
	d.Destination.Subset, d.Weight = subset, 0
	return d
}

// other returns a subset of the first split route other than slot, ""
// when it sends to slot alone.
func (v virtualService) other(slot string) (string, error) {
	split, err := v.split()
	if err != nil {
		return "", err
	}
	for _, d := range destinations(split[0]) {
		if d.subset != slot {
			return d.subset, nil
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
// match also requires the header, sending to subset canary alone. Istio
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
		own.Route = []*networking.HTTPRouteDestination{destinationTo(r, canary)}
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
