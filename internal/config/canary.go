package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/cutover/cutover/internal/traffic"
)

// stepsExample is a canary step list to show when there is none.
const stepsExample = "steps: [{setWeight: 20}, {pause: {duration: 1m}}, {setWeight: 50}, {pause: {}}]"

func (c *Canary) validate(d *document, path string, templates templateIndex) {
	if len(c.Steps) == 0 {
		d.add(path+".steps", "list what to do in order, such as "+stepsExample, "no steps")
	}
	for i := range c.Steps {
		c.Steps[i].validate(d, fmt.Sprintf("%s.steps[%d]", path, i), templates)
	}
	if c.Analysis != nil {
		c.Analysis.validate(d, path+".analysis", templates)
	}
	if s := c.StickySessions; s != nil && !isToken(s.Cookie) {
		d.add(path+".stickySessions.cookie", "use letters, digits and '-', such as cutover-slot, or leave it out for cutover-slot",
			"%q is not a cookie name", s.Cookie)
	}
	checkNotNegative(d, path+".scaleDownDelay", c.ScaleDownDelay)
	checkNotNegative(d, path+".abortScaleDownDelay", c.AbortScaleDownDelay)
	checkNotNegative(d, path+".drainTimeout", c.DrainTimeout)
}

// useRouter ends the hints for what only cutover's router can do.
const useRouter = "or use traffic: {router: {}}, where cutover's router carries the requests"

// outside is a traffic provider that moves the requests without
// cutover's router, and what that means for a canary.
type outside struct {
	// name is its key, such as traffic.service.
	name string
	// splits says how it shares the traffic, why it cannot keep a
	// client on one version.
	splits string
	// noHeader says why it cannot route a request by its header; empty
	// when it can.
	noHeader string
	// noCookie says why it cannot route a request by its cookie; empty
	// when it can.
	noCookie string
	// reaches says that cutover reaches the replicas itself, at the
	// addresses it points the provider at, so it can warm them up.
	reaches bool
}

var (
	serviceTraffic = outside{name: "traffic.service", splits: "a Service shares the traffic by pods",
		noHeader: "a Service shares the traffic by pods", noCookie: "a Service shares the traffic by pods"}
	// A gateway or a mesh routes a cookie as a regex on the Cookie header
	// (traffic.CookieMatch).
	gatewayTraffic = outside{name: "traffic.gatewayAPI", splits: "the gateway splits the requests by weight"}
	istioTraffic   = outside{name: "traffic.istio", splits: "the mesh splits the requests by weight"}
	// Cutover sets HAProxy's server weights, not its routing rules.
	haproxyTraffic = outside{name: "traffic.haproxy", splits: "HAProxy splits the requests by server weights",
		noHeader: "cutover sets HAProxy's server weights, not its routing rules", noCookie: "cutover sets HAProxy's server weights, not its routing rules",
		reaches: true}
)

// validateOutside refuses what a canary cannot do when o moves its
// traffic: no request passes through cutover's router, so nothing keeps
// a client on one version or retries a request on stable there, and the
// builtin analysis provider has nothing to measure; a Service cannot
// route by header or cookie either.
func (c *Canary) validateOutside(d *document, path string, templates templateIndex, o outside) {
	for i, s := range c.Steps {
		at := fmt.Sprintf("%s.steps[%d]", path, i)
		if s.SetHeaderRoute != nil && o.noHeader != "" {
			d.add(at+".setHeaderRoute", "remove the step, "+useRouter, "%s cannot route a request by its header: %s", o.name, o.noHeader)
		}
		switch c := s.SetCookieRoute; {
		case c != nil && o.noCookie != "":
			d.add(at+".setCookieRoute", "remove the step, "+useRouter, "%s cannot route a request by its cookie: %s", o.name, o.noCookie)
		case c != nil && c.Regex != "" && isToken(c.Name) && compiles(c.Regex):
			// The data plane gets the regex inside one on the Cookie header.
			if _, err := traffic.CookieMatch(traffic.HeaderMatch(*c)); err != nil {
				d.add(at+".setCookieRoute.regex", "rewrite it so, use value: or prefix:, "+useRouter, "%s matches the Cookie header: %v", o.name, err)
			}
		}
		if s.Analysis != nil {
			s.Analysis.checkNotBuiltin(d, at+".analysis", templates, o.name)
		}
	}
	if c.Analysis != nil {
		c.Analysis.checkNotBuiltin(d, path+".analysis", templates, o.name)
	}
	if c.StickySessions != nil {
		d.add(path+".stickySessions", "remove it, "+useRouter, "%s cannot keep a client on one version: %s", o.name, o.splits)
	}
	if c.RetryOnStable {
		d.add(path+".retryOnStable", "remove it, "+useRouter, "%s cannot retry a request on stable: the requests do not pass through cutover", o.name)
	}
}

// validateBlueGreenOutside refuses blue-green analyses measured by the
// builtin provider, which reads cutover's router, when o carries the
// requests instead. A canary's are checked with validateOutside.
func validateBlueGreenOutside(d *document, path string, s *Strategy, templates templateIndex, o outside) {
	bg := s.BlueGreen
	if bg == nil {
		return
	}
	for _, r := range []struct {
		key string
		ref *AnalysisRef
	}{{"prePromotionAnalysis", bg.PrePromotionAnalysis}, {"postPromotionAnalysis", bg.PostPromotionAnalysis}} {
		if r.ref != nil {
			r.ref.checkNotBuiltin(d, path+".blueGreen."+r.key, templates, o.name)
		}
	}
}

// checkNotBuiltin refuses templates measured by the builtin provider,
// which reads what cutover's router saw: nothing, when the traffic
// provider named mode moves the requests.
func (r *AnalysisRef) checkNotBuiltin(d *document, path string, templates templateIndex, mode string) {
	for i, name := range r.Templates {
		t := templates.byName[name]
		if t == nil {
			continue // the reference's own check names it
		}
		for _, m := range t.Metrics {
			if m.Provider.Builtin != nil {
				d.add(fmt.Sprintf("%s.templates[%d]", path, i), "measure the canary with prometheus, web or command metrics, "+useRouter,
					"template %s measures %s with the builtin provider, which reads cutover's router; with %s no request passes through it", name, m.Name, mode)
				break
			}
		}
	}
}

// actions names the actions s sets, in the order of the type's fields.
func (s *CanaryStep) actions() []string {
	var names []string
	for _, a := range []struct {
		name string
		set  bool
	}{
		{"setWeight", s.SetWeight != nil},
		{"pause", s.Pause != nil},
		{"analysis", s.Analysis != nil},
		{"setHeaderRoute", s.SetHeaderRoute != nil},
		{"setCookieRoute", s.SetCookieRoute != nil},
		{"setMirrorRoute", s.SetMirrorRoute != nil},
	} {
		if a.set {
			names = append(names, a.name)
		}
	}
	return names
}

func (s *CanaryStep) validate(d *document, path string, templates templateIndex) {
	switch actions := s.actions(); len(actions) {
	case 0:
		d.add(path, "write exactly one of setWeight, pause, analysis, setHeaderRoute, setCookieRoute or setMirrorRoute, such as - setWeight: 20",
			"the step does nothing")
	case 1:
	default:
		d.add(path, "split it into one step per action, in the order they should happen",
			"the step sets %s; a step does exactly one thing", andList(actions))
	}
	if w := s.SetWeight; w != nil && (*w < 0 || *w > 100) {
		d.add(path+".setWeight", "use a percentage from 0 to 100", "%d is out of range", *w)
	}
	if p := s.Pause; p != nil && p.Duration < 0 {
		d.add(path+".pause.duration", "write a positive duration such as 1m, or leave it out to wait for `cutover promote`",
			"%s is negative", p.Duration)
	}
	if s.Analysis != nil {
		s.Analysis.validate(d, path+".analysis", templates)
		s.Analysis.checkEnds(d, path+".analysis", templates, "to watch the whole rollout, put the template under strategy.canary.analysis instead")
	}
	if s.SetHeaderRoute != nil {
		s.SetHeaderRoute.validate(d, path+".setHeaderRoute", "header", "X-Canary")
	}
	if s.SetCookieRoute != nil {
		s.SetCookieRoute.validate(d, path+".setCookieRoute", "cookie", "canary")
	}
	if s.SetMirrorRoute != nil {
		s.SetMirrorRoute.validate(d, path+".setMirrorRoute", 0)
	}
}

// validate checks a match on a header or cookie (kind), whose example
// name goes in hints.
func (m *RouteMatch) validate(d *document, path, kind, example string) {
	switch {
	case m.Name == "":
		d.add(path+".name", fmt.Sprintf("write the %s's name, such as name: %s", kind, example), "missing")
	case !isToken(m.Name):
		d.add(path+".name", fmt.Sprintf("use letters, digits and '-', such as %s", example), "%q is not a %s name", m.Name, kind)
	}
	var given []string
	for _, f := range []struct{ name, value string }{{"value", m.Value}, {"prefix", m.Prefix}, {"regex", m.Regex}} {
		if f.value != "" {
			given = append(given, f.name)
		}
	}
	switch len(given) {
	case 0:
		d.add(path, fmt.Sprintf("add value: (the exact %s value), prefix: or regex:", kind), "no value, prefix or regex to match")
	case 1:
	default:
		d.add(path, "keep exactly one of value, prefix and regex", "%s are set", andList(given))
	}
	if m.Regex != "" {
		if _, err := regexp.Compile(m.Regex); err != nil {
			d.add(path+".regex", "write a Go regular expression (RE2 syntax), such as ^(beta|internal)$",
				"%q does not compile: %v", m.Regex, err)
		}
	}
}

func compiles(regex string) bool {
	_, err := regexp.Compile(regex)
	return err == nil
}

// isToken reports whether s is a valid HTTP header or cookie name (an
// RFC 9110 token).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}
