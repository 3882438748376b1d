package gatewayapi

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/cutover/cutover/internal/traffic"
)

// route is an HTTPRoute seen through the names of one app's Services.
// Its methods only look at or change the object in memory.
type route struct {
	*gatewayv1.HTTPRoute
	stable, canary string
}

// split returns the indexes of the rules whose backendRefs cutover weighs: a rule of the
// team's (not cutover's header rule) that sends to the stable Service.
func (r route) split() ([]int, error) {
	var idx []int
	for i, rule := range r.Spec.Rules {
		if r.owned(rule) || !slices.ContainsFunc(rule.BackendRefs, r.refersTo(r.stable)) {
			continue
		}
		for _, ref := range rule.BackendRefs {
			if !r.refersTo(r.stable)(ref) && !r.refersTo(r.canary)(ref) {
				return nil, fmt.Errorf("rule %d sends to %s %s as well as to service %s; cutover splits a rule between services %s and %s only: move that backend to a rule of its own",
					i, kindOf(ref), ref.Name, r.stable, r.stable, r.canary)
			}
		}
		idx = append(idx, i)
	}
	if len(idx) == 0 {
		return nil, fmt.Errorf("no rule sends to service %s; give the rule that serves the app the backendRefs [{name: %s, port: <port>}, {name: %s, port: <port>, weight: 0}]",
			r.stable, r.stable, r.canary)
	}
	return idx, nil
}

// weights returns the weights the first split rule gives the stable and
// the canary Service, and whether every split rule carries exactly the
// weights cutover writes for that canary share: stable 100-w, canary w
// (a missing canary ref counting as 0).
func (r route) weights() (stable, canary int, consistent bool, err error) {
	idx, err := r.split()
	if err != nil {
		return 0, 0, false, err
	}
	stable, canary = r.weightsOf(r.Spec.Rules[idx[0]])
	consistent = true
	for _, i := range idx {
		s, c := r.weightsOf(r.Spec.Rules[i])
		consistent = consistent && s+c == 100 && c == canary
	}
	return stable, canary, consistent, nil
}

// weightsOf sums the weights a rule gives the stable and canary Services
// (a ref without a weight counts 1, as the API defaults it).
func (r route) weightsOf(rule gatewayv1.HTTPRouteRule) (stable, canary int) {
	for _, ref := range rule.BackendRefs {
		w := 1
		if ref.Weight != nil {
			w = int(*ref.Weight)
		}
		if r.refersTo(r.stable)(ref) {
			stable += w
		} else {
			canary += w
		}
	}
	return stable, canary
}

// setWeight gives the canary Service w percent and the stable Service the
// rest on every split rule, adding a canary ref (on the stable ref's port)
// where a rule has none.
func (r route) setWeight(w int) error {
	idx, err := r.split()
	if err != nil {
		return err
	}
	for _, i := range idx {
		rule := &r.Spec.Rules[i]
		stableRef, canaryRef := r.refs(*rule)
		stableRef.Weight, canaryRef.Weight = ptr(int32(100-w)), ptr(int32(w))
		rule.BackendRefs = []gatewayv1.HTTPBackendRef{stableRef, canaryRef}
	}
	return nil
}

// refs returns copies of a split rule's backendRefs to the stable and the
// canary Service; without a canary ref, the canary's is the stable one's
// (port, filters) with the canary Service's name.
func (r route) refs(rule gatewayv1.HTTPRouteRule) (stable, canary gatewayv1.HTTPBackendRef) {
	stable = *rule.BackendRefs[slices.IndexFunc(rule.BackendRefs, r.refersTo(r.stable))].DeepCopy()
	if j := slices.IndexFunc(rule.BackendRefs, r.refersTo(r.canary)); j >= 0 {
		return stable, *rule.BackendRefs[j].DeepCopy()
	}
	canary = *stable.DeepCopy()
	canary.Name = gatewayv1.ObjectName(r.canary)
	return stable, canary
}

// HeaderRulePrefix begins the name of every rule cutover owns on an
// HTTPRoute: the header routes it adds, one per split rule, named
// cutover-header-route-0, -1, ... Cutover replaces or removes these rules
// and no others; do not give a rule of your own a name with this prefix.
const HeaderRulePrefix = "cutover-header-route"

func (r route) owned(rule gatewayv1.HTTPRouteRule) bool {
	return rule.Name != nil && strings.HasPrefix(string(*rule.Name), HeaderRulePrefix)
}

// setHeaderRoute replaces cutover's header rules with one per split rule:
// a copy of it (matches, filters, timeouts) whose every match also
// requires the header, sending to the canary Service alone. The extra
// header match makes it more specific than the team's rule, so the
// gateway prefers it whatever the rule order.
func (r route) setHeaderRoute(m traffic.HeaderMatch) error {
	idx, err := r.split()
	if err != nil {
		return err
	}
	header, err := headerMatch(m)
	if err != nil {
		return err
	}
	var owned []gatewayv1.HTTPRouteRule
	for n, i := range idx {
		rule := *r.Spec.Rules[i].DeepCopy()
		rule.Name = ptr(gatewayv1.SectionName(HeaderRulePrefix + "-" + strconv.Itoa(n)))
		if len(rule.Matches) == 0 { // the API's default: every path
			rule.Matches = []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{
				Type: ptr(gatewayv1.PathMatchPathPrefix), Value: ptr("/")}}}
		}
		for j := range rule.Matches {
			rule.Matches[j].Headers = append(rule.Matches[j].Headers, header)
		}
		_, canaryRef := r.refs(rule)
		canaryRef.Weight = ptr(int32(1))
		rule.BackendRefs = []gatewayv1.HTTPBackendRef{canaryRef}
		owned = append(owned, rule)
	}
	r.removeHeaderRoute()
	r.Spec.Rules = append(r.Spec.Rules, owned...)
	return nil
}

// removeHeaderRoute deletes cutover's header rules, leaving the others in
// their order.
func (r route) removeHeaderRoute() {
	r.Spec.Rules = slices.DeleteFunc(r.Spec.Rules, r.owned)
}

// refersTo returns a test for a backendRef to Service name in the route's
// namespace.
func (r route) refersTo(name string) func(gatewayv1.HTTPBackendRef) bool {
	return func(ref gatewayv1.HTTPBackendRef) bool {
		return string(ref.Name) == name &&
			(ref.Group == nil || *ref.Group == "") &&
			(ref.Kind == nil || *ref.Kind == "Service") &&
			(ref.Namespace == nil || string(*ref.Namespace) == r.Namespace)
	}
}

func kindOf(ref gatewayv1.HTTPBackendRef) string {
	if ref.Kind == nil {
		return "service"
	}
	return strings.ToLower(string(*ref.Kind))
}

// headerMatch turns m into the Gateway API's match: an Exact match of a
// value, else a RegularExpression (in the gateway's own dialect, Envoy's
// RE2 for most) for a prefix or a regex.
func headerMatch(m traffic.HeaderMatch) (gatewayv1.HTTPHeaderMatch, error) {
	h := gatewayv1.HTTPHeaderMatch{Name: gatewayv1.HTTPHeaderName(m.Name)}
	if err := m.Check(); err != nil {
		return h, err
	}
	switch {
	case m.Value != "":
		h.Type, h.Value = ptr(gatewayv1.HeaderMatchExact), m.Value
	case m.Prefix != "":
		h.Type, h.Value = ptr(gatewayv1.HeaderMatchRegularExpression), "^"+regexp.QuoteMeta(m.Prefix)+".*"
	default:
		h.Type, h.Value = ptr(gatewayv1.HeaderMatchRegularExpression), m.Regex
	}
	return h, nil
}

func ptr[T any](v T) *T { return &v }
