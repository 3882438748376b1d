package config

import "fmt"

// MirrorRoute copies a share of the production requests to the revision
// under test and throws its answers away: the canary step
// setMirrorRoute, and blue-green's prePromotionMirror. Only cutover's
// router can copy requests.
type MirrorRoute struct {
	// Percent (0..100) of the requests that qualify are copied; 0 stops
	// a canary's mirror.
	Percent int `yaml:"percent"`
	// Header, when set, qualifies only requests whose header matches it;
	// Cookie the same for a cookie. At most one of them.
	Header *RouteMatch `yaml:"header"`
	Cookie *RouteMatch `yaml:"cookie"`
	// Methods qualify requests with these methods; default GET, HEAD and
	// OPTIONS. Naming another, such as POST, repeats its effects on the
	// revision under test.
	Methods []string `yaml:"methods"`
}

// mirrorExample is a mirror to show in hints.
const mirrorExample = "{percent: 20}"

// validate checks m at path; minPercent is 0 where percent 0 stops a
// mirror, 1 where it must copy something.
func (m *MirrorRoute) validate(d *document, path string, minPercent int) {
	switch {
	case !d.written(path + ".percent"):
		d.add(path+".percent", "write the share of requests to copy, such as "+mirrorExample, "missing")
	case m.Percent < minPercent || m.Percent > 100:
		d.add(path+".percent", fmt.Sprintf("use a percentage from %d to 100", minPercent), "%d is out of range", m.Percent)
	}
	if m.Header != nil && m.Cookie != nil {
		d.add(path, "keep one of header and cookie; add a step per match", "both header and cookie are set")
	}
	if m.Header != nil {
		m.Header.validate(d, path+".header", "header", "X-Canary")
	}
	if m.Cookie != nil {
		m.Cookie.validate(d, path+".cookie", "cookie", "canary")
	}
	for i, method := range m.Methods {
		if !isToken(method) {
			d.add(fmt.Sprintf("%s.methods[%d]", path, i), "write an HTTP method such as GET or POST", "%q is not an HTTP method", method)
		}
	}
}

// validateMirrorOutside refuses a mirror where o, a traffic provider
// other than cutover's router, carries the requests: nothing can copy
// them there.
func (a *App) validateMirrorOutside(d *document, path string, o *outside) {
	if o == nil {
		return
	}
	if bg := a.Strategy.BlueGreen; bg != nil && bg.PrePromotionMirror != nil {
		d.add(path+".strategy.blueGreen.prePromotionMirror", "remove it, "+useRouter,
			"%s cannot mirror requests: they do not pass through cutover", o.name)
	}
	if c := a.Strategy.Canary; c != nil {
		for i, s := range c.Steps {
			if s.SetMirrorRoute != nil {
				d.add(fmt.Sprintf("%s.strategy.canary.steps[%d].setMirrorRoute", path, i), "remove the step, "+useRouter,
					"%s cannot mirror requests: they do not pass through cutover", o.name)
			}
		}
	}
}
