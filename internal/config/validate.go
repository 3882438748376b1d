package config

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// dnsLabel is the form of app and analysis template names: they end up in
// URLs, metric labels and file names.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

const maxReplicas = 64

// validate records a problem in d for everything wrong with c, which must
// have its defaults applied.
func (c *Config) validate(d *document) {
	c.Admin.validate(d)
	c.Store.validate(d)
	c.Server.validate(d, "server")
	usesACME := false
	templates := c.validateAnalysisTemplates(d)
	if len(c.Apps) == 0 && c.Store.Kubernetes == nil {
		d.add("apps", "add an app with name, listen, version and target under apps:, or keep the store in Kubernetes (store: {kubernetes: {}}) "+
			"and declare the apps as CutoverApp objects, each with its entry in spec.app", "no apps are defined")
	}
	firstByName := map[string]string{} // app name → path of the app that first used it
	for i := range c.Apps {
		a := &c.Apps[i]
		path := fmt.Sprintf("apps[%d]", i)
		a.validate(d, path, templates)
		if a.TLS != nil {
			a.TLS.validate(d, path+".tls", a, c.ACME)
			usesACME = usesACME || a.TLS.ACME
		}
		if a.Name == "" || !dnsLabel.MatchString(a.Name) {
			continue
		}
		if first, ok := firstByName[a.Name]; ok {
			d.add(path+".name", "give every app a unique name",
				"app name %q is already used by %s (%s)", a.Name, first, d.where(first+".name"))
			continue
		}
		firstByName[a.Name] = path
	}
	if c.ACME != nil {
		c.ACME.validate(d, usesACME)
	}
	for i := range c.Notifications {
		c.Notifications[i].validate(d, fmt.Sprintf("notifications[%d]", i))
	}
	c.checkListeners(d)
	c.checkNginxFiles(d)
}

func (a *Admin) validate(d *document) {
	addr, err := parseAddress(a.Listen)
	if err != nil {
		d.addError("admin.listen", err)
		return
	}
	if a.Token == "" && !addr.loopback() {
		d.report("admin.listen", fmt.Sprintf("admin.token: required because admin.listen %q is reachable from other machines", a.Listen),
			"set admin.token to a long random secret, or listen on 127.0.0.1")
	}
	a.validateToken(d)
	for i, h := range a.Hosts {
		if n := normalHost(h); !isHostName(n) && !isIP(n) {
			d.add(fmt.Sprintf("admin.hosts[%d]", i), "write a host name such as deploy.internal, without scheme, port or path",
				"%q is not a host name", h)
		}
	}
}

func (a *App) validate(d *document, path string, templates templateIndex) {
	switch {
	case a.Name == "":
		d.add(path+".name", "name every app, such as name: web", "missing")
	case !dnsLabel.MatchString(a.Name):
		d.add(path+".name", "use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters",
			"%q is not a valid app name", a.Name)
	}
	if a.Version == "" {
		d.add(path+".version", "write the version label to deploy first, such as version: v1", "missing")
	} else if !versionLabel.MatchString(a.Version) {
		d.add(path+".version", versionHint, "%s is not a version label", Quote(a.Version))
	}
	if a.Listen == "" {
		d.add(path+".listen", "write listen: 127.0.0.1:8080; apps that share a listener each write the same address and name their hosts", "missing")
	} else if _, err := parseAddress(a.Listen); err != nil {
		d.addError(path+".listen", err)
	}
	for i, h := range a.Hosts {
		if n := normalHost(h); !isHostName(n) && !isIP(n) {
			d.add(fmt.Sprintf("%s.hosts[%d]", path, i), "write a host name such as example.com, without scheme, path or wildcard",
				"%q is not a host name", h)
		}
	}
	if !strings.HasPrefix(a.PathPrefix, "/") {
		d.add(path+".pathPrefix", "start it with a slash, such as /api", "%q does not start with \"/\"", a.PathPrefix)
	}
	if a.DeployTimeout <= 0 {
		d.add(path+".deployTimeout", "write a positive duration such as 60s, or leave it out for 60s", "%s is not positive", a.DeployTimeout)
	}
	if a.ProgressDeadline <= 0 {
		d.add(path+".progressDeadline", "write a positive duration such as 10m, or leave it out for 10m", "%s is not positive", a.ProgressDeadline)
	}
	a.Target.validate(d, path+".target")
	a.Traffic.validate(d, path+".traffic", &a.Target)
	a.Target.Kubernetes.validateWorkloadRef(d, path, &a.Traffic)
	a.Health.validate(d, path+".health")
	a.Upstream.validate(d, path+".upstream")
	a.Strategy.validate(d, path+".strategy", templates, a)
	if o := a.Traffic.outsideRouter(); o != nil && a.Strategy.Canary != nil {
		a.Strategy.Canary.validateOutside(d, path+".strategy.canary", templates, *o)
	}
	a.validateMirrorOutside(d, path, a.Traffic.outsideRouter())
	if o := a.Traffic.outsideRouter(); o != nil && o.reaches {
		// A proxy of the team's that cutover points at the replicas
		// (nginx, HAProxy) carries every request, tests included.
		validateBlueGreenOutside(d, path+".strategy", &a.Strategy, templates, *o)
	}
	a.Hooks.validate(d, path+".hooks")
	if a.Warmup != nil {
		a.Warmup.validate(d, path+".warmup", a.Traffic.outsideRouter())
	}
}

func (s *Strategy) validate(d *document, path string, templates templateIndex, a *App) {
	var set []string
	for _, st := range []struct {
		name  string
		isSet bool
	}{{"blueGreen", s.BlueGreen != nil}, {"canary", s.Canary != nil}, {"recreate", s.Recreate != nil}, {"rolling", s.Rolling != nil}} {
		if st.isSet {
			set = append(set, st.name)
		}
	}
	const keepOne = "keep exactly one of blueGreen, canary, recreate and rolling"
	switch {
	case len(set) == 2:
		d.add(path, keepOne, "both %s are set", strings.Join(set, " and "))
	case len(set) > 2:
		d.add(path, keepOne, "%s and %s are all set", strings.Join(set[:len(set)-1], ", "), set[len(set)-1])
	}
	if s.BlueGreen != nil {
		s.BlueGreen.validate(d, path+".blueGreen", templates)
	}
	if s.Canary != nil {
		s.Canary.validate(d, path+".canary", templates)
	}
	if s.Recreate != nil {
		checkNotNegative(d, path+".recreate.drainTimeout", s.Recreate.DrainTimeout)
	}
	if s.Rolling != nil {
		s.Rolling.validate(d, path+".rolling", a)
	}
}

func (t *Target) validate(d *document, path string) {
	var set []string
	for name, isSet := range map[string]bool{"process": t.Process != nil, "static": t.Static != nil, "kubernetes": t.Kubernetes != nil} {
		if isSet {
			set = append(set, name)
		}
	}
	switch {
	case len(set) > 1:
		slices.Sort(set)
		d.add(path, "keep exactly one of process, static and kubernetes", "both %s are set", strings.Join(set, " and "))
	case t.Process != nil:
		t.Process.validate(d, path+".process")
	case t.Static != nil:
		t.Static.validate(d, path+".static")
	case t.Kubernetes != nil:
		t.Kubernetes.validate(d, path+".kubernetes")
	default:
		d.add(path, "write target: {process: {command: [./server, --port, \"${PORT}\"]}} or target: {static: {upstreams: [http://127.0.0.1:8080]}}",
			"missing; set process, static or kubernetes")
	}
}

func (p *ProcessTarget) validate(d *document, path string) {
	commandHint := `write the program and its arguments as a list, such as command: [./server, --port, "${PORT}"]`
	switch {
	case len(p.Command) == 0:
		d.add(path+".command", commandHint, "missing")
	case strings.TrimSpace(p.Command[0]) == "":
		d.add(path+".command[0]", commandHint, "the program name is empty")
	}
	if p.Replicas < 1 || p.Replicas > maxReplicas {
		d.add(path+".replicas", fmt.Sprintf("use 1 to %d replicas", maxReplicas), "%d is out of range", p.Replicas)
	}
	for _, name := range slices.Sorted(maps.Keys(p.Env)) {
		switch {
		case name == "PORT":
			d.add(path+".env.PORT", `remove it; write "${PORT}" in command to pass the port`, "PORT is set by cutover for each replica")
		case name == "" || strings.ContainsAny(name, "= \t"):
			d.add(path+".env."+name, "use letters, digits and '_', such as LOG_LEVEL", "%q is not an environment variable name", name)
		}
	}
	checkNotNegative(d, path+".stopGrace", p.StopGrace)
}

func (s *StaticTarget) validate(d *document, path string) {
	if len(s.Upstreams) == 0 {
		d.add(path+".upstreams", "list at least one URL, such as upstreams: [http://127.0.0.1:8080]", "no upstreams")
	}
	for i, raw := range s.Upstreams {
		if !isHTTPURL(raw) {
			d.add(fmt.Sprintf("%s.upstreams[%d]", path, i), "write it as http://host:port or https://host:port",
				"%q is not an absolute http(s) URL", raw)
		}
	}
}

func (h *Health) validate(d *document, path string) {
	if !strings.HasPrefix(h.Path, "/") {
		d.add(path+".path", "start it with a slash, such as /healthz", "%q does not start with \"/\"", h.Path)
	}
	if h.Interval <= 0 {
		d.add(path+".interval", "write a positive duration such as 1s", "%s is not positive", h.Interval)
	}
	if h.Timeout <= 0 {
		d.add(path+".timeout", "write a positive duration such as 1s", "%s is not positive", h.Timeout)
	}
	if h.HealthyThreshold < 1 {
		d.add(path+".healthyThreshold", "use 1 or more", "%d is less than 1", h.HealthyThreshold)
	}
	if h.UnhealthyThreshold < 1 {
		d.add(path+".unhealthyThreshold", "use 1 or more", "%d is less than 1", h.UnhealthyThreshold)
	}
}

func (b *BlueGreen) validate(d *document, path string, templates templateIndex) {
	if b.PreviewListen != "" {
		if _, err := parseAddress(b.PreviewListen); err != nil {
			d.addError(path+".previewListen", err)
		}
	}
	checkNotNegative(d, path+".scaleDownDelay", b.ScaleDownDelay)
	checkNotNegative(d, path+".drainTimeout", b.DrainTimeout)
	checkNotNegative(d, path+".bakeTime", b.BakeTime)
	for i, s := range b.Smoke {
		at := fmt.Sprintf("%s.smoke[%d]", path, i)
		if !strings.HasPrefix(s.Path, "/") {
			d.add(at+".path", "start it with a slash, such as /healthz", "%q does not start with \"/\"", s.Path)
		}
		if s.ExpectStatus < 100 || s.ExpectStatus > 599 {
			d.add(at+".expectStatus", "use an HTTP status code from 100 to 599, such as 200", "%d is not an HTTP status code", s.ExpectStatus)
		}
	}
	if r := b.PrePromotionAnalysis; r != nil {
		r.validate(d, path+".prePromotionAnalysis", templates)
		r.checkEnds(d, path+".prePromotionAnalysis", templates, "")
	}
	if m := b.PrePromotionMirror; m != nil {
		m.validate(d, path+".prePromotionMirror", 1)
	}
	if r := b.PostPromotionAnalysis; r != nil {
		r.validate(d, path+".postPromotionAnalysis", templates)
		r.checkEnds(d, path+".postPromotionAnalysis", templates, "bakeTime watches the new slot for a fixed time without an analysis")
	}
}

func checkNotNegative(d *document, path string, v Duration) {
	if v < 0 {
		d.add(path, "write 0s or a positive duration", "%s is negative", v)
	}
}

// checkPositive reports a duration at path that is zero or negative;
// example is a sensible value for the hint.
func checkPositive(d *document, path string, v Duration, example string) {
	if v <= 0 {
		d.add(path, fmt.Sprintf("write a positive duration such as %s", example), "%s is not positive", v)
	}
}

// checkCount reports a count at path that is negative.
func checkCount(d *document, path string, n int) {
	if n < 0 {
		d.add(path, "use 0 or more", "%d is negative", n)
	}
}

// checkHTTPURL reports a field at path that is not an absolute http(s)
// URL; example shows one for the hint.
func checkHTTPURL(d *document, path, raw, example string) {
	hint := "write an absolute URL such as " + example
	switch {
	case raw == "":
		d.add(path, hint, "missing")
	case !isHTTPURL(raw):
		d.add(path, hint, "%q is not an absolute http(s) URL", raw)
	}
}

// isHTTPURL reports whether raw is an absolute http or https URL with a host.
func isHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// andList joins names for messages: "a and b", "a, b and c".
func andList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// checkCommand reports a command at path that is empty or whose program
// name is blank.
func checkCommand(d *document, path string, command []string, hint string) {
	switch {
	case len(command) == 0:
		d.add(path, hint, "empty")
	case strings.TrimSpace(command[0]) == "":
		d.add(path+"[0]", hint, "the program name is empty")
	}
}

// listener is one address cutover will listen on.
type listener struct {
	path   string // the field that sets it, such as "apps[1].listen"
	source string // where path is: the config file, or a declared app's source
	owner  string // who listens, for messages
	addr   address
	// app is set for an app's main listener, which may be shared with
	// other apps that name distinct hosts.
	app *App
	// redirectFor is set for an app's HTTPS redirect listener, which apps
	// sharing one HTTPS listener may share too.
	redirectFor *App
}

// checkListeners reports listeners that would compete for one address:
// the admin API, every app's listener and every preview listener. Each
// clash is reported once, at the listener written later in the file.
func (c *Config) checkListeners(d *document) {
	all := c.listeners()
	for j := range all {
		checkClash(d, all[j], all[:j])
	}
}

// listeners lists every address c listens on, in the order written: the
// file's, then the declared apps'.
func (c *Config) listeners() []listener {
	var all []listener
	if addr, err := parseAddress(c.Admin.Listen); err == nil {
		all = append(all, listener{path: "admin.listen", source: c.File, owner: "the admin API", addr: addr})
	}
	if c.ACME != nil && c.ACME.HTTPListen != "" {
		if addr, err := parseAddress(c.ACME.HTTPListen); err == nil {
			all = append(all, listener{path: "acme.httpListen", source: c.File, owner: "the ACME HTTP-01 listener", addr: addr})
		}
	}
	for i := range c.Apps {
		a := &c.Apps[i]
		path, source := fmt.Sprintf("apps[%d]", i), c.File
		if a.Declared != nil {
			path, source = a.Declared.Path, a.Declared.Source
		}
		if addr, err := parseAddress(a.Listen); err == nil {
			all = append(all, listener{path: path + ".listen", source: source, owner: fmt.Sprintf("app %q", a.Name), addr: addr, app: a})
		}
		if a.TLS != nil && a.TLS.RedirectFrom != "" {
			if addr, err := parseAddress(a.TLS.RedirectFrom); err == nil {
				all = append(all, listener{path: path + ".tls.redirectFrom", source: source, owner: fmt.Sprintf("the HTTPS redirect of app %q", a.Name), addr: addr, redirectFor: a})
			}
		}
		if bg := a.Strategy.BlueGreen; bg != nil && bg.PreviewListen != "" {
			if addr, err := parseAddress(bg.PreviewListen); err == nil {
				all = append(all, listener{path: path + ".strategy.blueGreen.previewListen", source: source, owner: fmt.Sprintf("the preview of app %q", a.Name), addr: addr})
			}
		}
	}
	return all
}

// checkClash reports l if it competes with one of the listeners before it.
func checkClash(d *document, l listener, before []listener) {
	for _, prev := range before {
		if !l.addr.overlaps(prev.addr) {
			continue
		}
		reason, hint, clashes := clash(prev, l)
		if !clashes {
			continue
		}
		at := d.where(prev.path)
		if prev.source != d.file {
			at = prev.source + " " + prev.path
		}
		d.add(l.path, hint, "%s is already used by %s (%s)%s", l.addr, prev.owner, at, reason)
		return
	}
}

// clash reports whether two listeners on overlapping addresses compete,
// with the reason to add to the message when it is not obvious and a hint.
// Only two apps that name disjoint hosts can share an address.
func clash(prev, l listener) (reason, hint string, clashes bool) {
	if prev.redirectFor != nil && l.redirectFor != nil && sameAddress(prev.redirectFor.Listen, l.redirectFor.Listen) {
		return "", "", false
	}
	if prev.app == nil || l.app == nil {
		return "", "choose another port", true
	}
	switch {
	case len(prev.app.Hosts) == 0:
		return ", which answers every host there", "give this app its own listen address, or set distinct hosts on both apps", true
	case len(l.app.Hosts) == 0:
		return ", and this app names no hosts", "set hosts on this app, or give it its own listen address", true
	}
	for _, h := range l.app.Hosts {
		if slices.ContainsFunc(prev.app.Hosts, func(p string) bool { return normalHost(p) == normalHost(h) }) {
			return fmt.Sprintf(", which also answers host %q", normalHost(h)), "give the apps distinct hosts, or separate listen addresses", true
		}
	}
	if (prev.app.TLS == nil) != (l.app.TLS == nil) {
		reason := ", which serves plain HTTP there while this app has tls"
		if prev.app.TLS != nil {
			reason = ", which serves HTTPS there while this app has no tls"
		}
		return reason, "give every app on one listener tls, or none of them; or use separate listen addresses", true
	}
	return "", "", false
}

// sameAddress reports whether two listen addresses name the same socket.
func sameAddress(a, b string) bool {
	x, errA := parseAddress(a)
	y, errB := parseAddress(b)
	return errA == nil && errB == nil && x == y
}

// report records a problem positioned at the field at path with a message
// that names another field, such as a missing token reported at the
// listen address that requires it.
func (d *document) report(path, msg, hint string) {
	d.problems = append(d.problems, d.problem(path, msg, hint))
}

// where names the position of the field at path for messages, such as
// "cutover.yaml:4:13", or "by default" when the file leaves it out.
func (d *document) where(path string) string {
	if !d.written(path) {
		return "by default"
	}
	p := d.problem(path, "", "")
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}
