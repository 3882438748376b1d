package config

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/types"
)

// BuiltinArgs are the analysis arguments the controller always supplies:
// the app's name, the version being rolled out and the stable one, their
// slots and the new revision's number. Templates may refer to them as
// {{args.NAME}} without declaring them, and references never need to pass
// them.
var BuiltinArgs = []string{"app", "version", "stableVersion", "canaryVersion", "slot", "stableSlot", "canarySlot", "revision"}

// BuiltinMetrics are the metrics the builtin provider reads from the
// router's own windows.
var BuiltinMetrics = []string{"successRate", "errorRate", "requestCount", "requestRate", "latencyP50", "latencyP90", "latencyP99"}

var (
	// argRef is one {{args.NAME}} reference, spaces allowed inside the braces.
	argRef = regexp.MustCompile(`\{\{\s*args\.([^{}\s]*)\s*\}\}`)
	// anyRef is any {{...}} reference, filled in before a URL is checked.
	anyRef = regexp.MustCompile(`\{\{[^{}]*\}\}`)
	// argName is the form of a declared argument's name.
	argName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
	// httpMethod is the form of a web provider's method.
	httpMethod = regexp.MustCompile(`^[A-Z]+$`)
)

// conditionEnv is what successCondition and failureCondition may use:
// result, of whatever type the provider measures, isNaN and default. It
// is a types.Map rather than a map of sample values because only a type
// can say "any type" for result; a nil sample would make result the nil
// type, which rejects result >= 0.99.
var conditionEnv = types.Map{
	"result":  types.Any,
	"isNaN":   types.TypeOf(math.IsNaN),
	"default": types.TypeOf((func(value, fallback any) any)(nil)),
}

// conditionHint is what to write instead of a condition that does not compile.
const conditionHint = "write an expression over result that is true or false, such as result >= 0.99; isNaN(x) and default(x, fallback) are available"

// templateIndex finds analysis templates by name, for references.
type templateIndex struct {
	byName map[string]*AnalysisTemplate
	names  []string // in file order, for hints
}

// missingHint is the hint for a reference to name, which is not defined.
func (x templateIndex) missingHint(name string) string {
	if len(x.names) == 0 {
		return fmt.Sprintf("define it under analysisTemplates, with name: %s and its metrics", name)
	}
	defined := "defined templates: " + strings.Join(x.names, ", ")
	if best := closest(name, x.names); best != "" {
		return fmt.Sprintf("did you mean `%s`? (%s)", best, defined)
	}
	return "name one of the " + defined
}

// validateAnalysisTemplates checks every template and returns them by
// name for the references to check against.
func (c *Config) validateAnalysisTemplates(d *document) templateIndex {
	idx := templateIndex{byName: map[string]*AnalysisTemplate{}}
	firstByName := map[string]string{} // template name → path of the template that first used it
	for i := range c.AnalysisTemplates {
		t := &c.AnalysisTemplates[i]
		path := fmt.Sprintf("analysisTemplates[%d]", i)
		t.validate(d, path)
		if t.Name == "" {
			continue
		}
		if first, ok := firstByName[t.Name]; ok {
			d.add(path+".name", "give every analysis template a unique name",
				"template name %q is already used by %s (%s)", t.Name, first, d.where(first+".name"))
			continue
		}
		firstByName[t.Name] = path
		idx.byName[t.Name] = t
		idx.names = append(idx.names, t.Name)
	}
	return idx
}

func (t *AnalysisTemplate) validate(d *document, path string) {
	switch {
	case t.Name == "":
		d.add(path+".name", "name every template, such as name: success-rate", "missing")
	case !dnsLabel.MatchString(t.Name):
		d.add(path+".name", "use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters",
			"%q is not a valid template name", t.Name)
	}
	scope := argScope{template: t.Name}
	for i, a := range t.Args {
		at := fmt.Sprintf("%s.args[%d].name", path, i)
		switch {
		case a.Name == "":
			d.add(at, "name the argument, such as name: service; queries use it as {{args.service}}", "missing")
		case !argName.MatchString(a.Name):
			d.add(at, "use letters, digits, '_' and '-', starting with a letter or '_'", "%q is not an argument name", a.Name)
		case slices.Contains(scope.declared, a.Name):
			d.add(at, "declare each argument once", "argument %q is declared twice", a.Name)
		default:
			scope.declared = append(scope.declared, a.Name)
		}
	}
	if len(t.Metrics) == 0 {
		d.add(path+".metrics", "add one, such as metrics: [{name: success-rate, provider: {builtin: {metric: successRate}}, successCondition: result >= 0.99}]",
			"no metrics")
	}
	firstByName := map[string]string{} // metric name → path of the metric that first used it
	for i := range t.Metrics {
		m := &t.Metrics[i]
		at := fmt.Sprintf("%s.metrics[%d]", path, i)
		m.validate(d, at, scope)
		if m.Name == "" {
			continue
		}
		if first, ok := firstByName[m.Name]; ok {
			d.add(at+".name", "give every metric of a template a unique name",
				"metric name %q is already used by %s (%s)", m.Name, first, d.where(first+".name"))
			continue
		}
		firstByName[m.Name] = at
	}
}

// argScope is what {{args.NAME}} may name inside one template.
type argScope struct {
	template string
	declared []string
}

// known reports whether the template declares name or cutover supplies it.
func (s argScope) known(name string) bool {
	return slices.Contains(s.declared, name) || slices.Contains(BuiltinArgs, name)
}

// checkArgRefs reports every {{args.NAME}} in text, the field at path,
// that names an argument the template neither declares nor gets from
// cutover.
func (s argScope) checkArgRefs(d *document, path, text string) {
	var reported []string
	for _, m := range argRef.FindAllStringSubmatch(text, -1) {
		name := m[1]
		if s.known(name) || slices.Contains(reported, name) {
			continue
		}
		reported = append(reported, name)
		hint := fmt.Sprintf("declare it under the template's args, or use one that cutover supplies: %s", strings.Join(BuiltinArgs, ", "))
		if best := closest(name, append(slices.Clone(s.declared), BuiltinArgs...)); best != "" {
			hint = fmt.Sprintf("did you mean `%s`? (%s)", best, hint)
		}
		d.add(path, hint, "%s names no argument of template %q", m[0], s.template)
	}
}

func (m *AnalysisMetric) validate(d *document, path string, scope argScope) {
	if m.Name == "" {
		d.add(path+".name", "name every metric, such as name: success-rate", "missing")
	}
	m.Provider.validate(d, path+".provider", scope)
	checkPositive(d, path+".interval", m.Interval, "1s")
	checkNotNegative(d, path+".initialDelay", m.InitialDelay)
	checkCount(d, path+".count", m.Count)
	checkCount(d, path+".failureLimit", m.FailureLimit)
	checkCount(d, path+".inconclusiveLimit", m.InconclusiveLimit)
	if m.ConsecutiveErrorLimit != nil {
		checkCount(d, path+".consecutiveErrorLimit", *m.ConsecutiveErrorLimit)
	}
	checkCount(d, path+".minSamples", m.MinSamples)
	if m.Provider.Builtin != nil {
		checkPositive(d, path+".minSamplesTimeout", m.MinSamplesTimeout, "1m")
	} else {
		checkNotNegative(d, path+".minSamplesTimeout", m.MinSamplesTimeout)
	}
	// A command's exit code is a verdict of its own; every other provider
	// gives a number that only a condition can judge.
	if m.SuccessCondition == "" && m.FailureCondition == "" && m.Provider.Command == nil {
		d.add(path, "add successCondition: result >= 0.99, failureCondition: result < 0.9, or both",
			"neither successCondition nor failureCondition is set")
	}
	checkCondition(d, path+".successCondition", m.SuccessCondition)
	checkCondition(d, path+".failureCondition", m.FailureCondition)
}

// checkCondition reports a condition at path that does not compile to a
// boolean expression over result.
func checkCondition(d *document, path, cond string) {
	if cond == "" {
		return
	}
	if _, err := expr.Compile(cond, expr.Env(conditionEnv), expr.AsBool()); err != nil {
		// expr adds the source and a caret on further lines; one line
		// keeps the problem list one problem per line.
		msg, _, _ := strings.Cut(err.Error(), "\n")
		d.add(path, conditionHint, "%q does not compile: %s", cond, msg)
	}
}

func (p *MetricProvider) validate(d *document, path string, scope argScope) {
	var given []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"builtin", p.Builtin != nil},
		{"prometheus", p.Prometheus != nil},
		{"web", p.Web != nil},
		{"command", p.Command != nil},
	} {
		if f.set {
			given = append(given, f.name)
		}
	}
	switch len(given) {
	case 0:
		d.add(path, "set one of builtin, prometheus, web or command, such as provider: {builtin: {metric: successRate}}", "missing")
	case 1:
	default:
		d.add(path, "keep exactly one of builtin, prometheus, web and command; use one metric per provider", "%s are set", andList(given))
	}
	if b := p.Builtin; b != nil {
		b.validate(d, path+".builtin")
	}
	if pr := p.Prometheus; pr != nil {
		pr.validate(d, path+".prometheus", scope)
	}
	if w := p.Web; w != nil {
		w.validate(d, path+".web", scope)
	}
	if c := p.Command; c != nil {
		c.validate(d, path+".command", scope)
	}
}

func (b *BuiltinProvider) validate(d *document, path string) {
	all := strings.Join(BuiltinMetrics, ", ")
	switch {
	case b.Metric == "":
		d.add(path+".metric", "write one of "+all, "missing")
	case !slices.Contains(BuiltinMetrics, b.Metric):
		hint := "use one of " + all
		if best := closest(b.Metric, BuiltinMetrics); best != "" {
			hint = fmt.Sprintf("did you mean `%s`? (builtin metrics: %s)", best, all)
		}
		d.add(path+".metric", hint, "%q is not a builtin metric", b.Metric)
	}
	checkPositive(d, path+".window", b.Window, "10s")
}

func (p *PrometheusProvider) validate(d *document, path string, scope argScope) {
	checkHTTPURL(d, path+".address", p.Address, "http://127.0.0.1:9090")
	if strings.TrimSpace(p.Query) == "" {
		d.add(path+".query", `write a PromQL query that gives one number, such as query: sum(rate(http_requests_total{code!~"5.."}[1m])) / sum(rate(http_requests_total[1m]))`,
			"missing")
	}
	scope.checkArgRefs(d, path+".query", p.Query)
	checkPositive(d, path+".timeout", p.Timeout, "5s")
}

func (w *WebProvider) validate(d *document, path string, scope argScope) {
	hint := "write an absolute URL such as https://metrics.example.com/check?app={{args.app}}"
	switch {
	case w.URL == "":
		d.add(path+".url", hint, "missing")
	// The references are filled in at run time; with a stand-in for each,
	// the rest of the URL must already be absolute.
	case !isHTTPURL(anyRef.ReplaceAllString(w.URL, "x")):
		d.add(path+".url", hint, "%q is not an absolute http(s) URL", w.URL)
	}
	scope.checkArgRefs(d, path+".url", w.URL)
	if !httpMethod.MatchString(w.Method) {
		d.add(path+".method", "write an HTTP method in capitals, such as GET or POST", "%q is not an HTTP method", w.Method)
	}
	for _, name := range slices.Sorted(maps.Keys(w.Headers)) {
		if !isToken(name) {
			d.add(path+".headers."+name, "use letters, digits and '-', such as Authorization", "%q is not a header name", name)
		}
		scope.checkArgRefs(d, path+".headers."+name, w.Headers[name])
	}
	scope.checkArgRefs(d, path+".body", w.Body)
	if w.JSONPath != "" && !strings.HasPrefix(w.JSONPath, "$") {
		d.add(path+".jsonPath", fmt.Sprintf("start it at the answer's root, such as $.%s", strings.TrimPrefix(w.JSONPath, ".")),
			"%q does not start with \"$\"", w.JSONPath)
	}
	checkPositive(d, path+".timeout", w.Timeout, "5s")
}

func (c *CommandProvider) validate(d *document, path string, scope argScope) {
	checkCommand(d, path+".command", c.Command, `write the program and its arguments as a list, such as command: [./check.sh, "{{args.version}}"]`)
	for i, arg := range c.Command {
		scope.checkArgRefs(d, fmt.Sprintf("%s.command[%d]", path, i), arg)
	}
	checkPositive(d, path+".timeout", c.Timeout, "30s")
}

// validate checks a reference to analysis templates at path: every
// template exists and gets every argument it requires.
func (r *AnalysisRef) validate(d *document, path string, templates templateIndex) {
	if len(r.Templates) == 0 {
		hint := "name the analysis templates to run, such as templates: [success-rate]"
		if len(templates.names) > 0 {
			hint += "; defined templates: " + strings.Join(templates.names, ", ")
		}
		d.add(path+".templates", hint, "no templates")
	}
	declared := map[string]bool{} // arguments of the templates found
	missing := map[string]bool{}  // required arguments already reported
	allFound := true
	for i, name := range r.Templates {
		at := fmt.Sprintf("%s.templates[%d]", path, i)
		t, ok := templates.byName[name]
		if !ok {
			allFound = false
			d.add(at, templates.missingHint(name), "analysis template %q is not defined", name)
			continue
		}
		for _, a := range t.Args {
			// A badly named argument is the template's problem, reported there.
			if a.Name == "" || !argName.MatchString(a.Name) {
				continue
			}
			declared[a.Name] = true
			if _, given := r.Args[a.Name]; given || a.Value != nil || slices.Contains(BuiltinArgs, a.Name) || missing[a.Name] {
				continue
			}
			missing[a.Name] = true
			d.add(at, fmt.Sprintf("pass it, such as args: {%s: ...}, or give the template's argument a value", a.Name),
				"template %q requires argument %q", name, a.Name)
		}
	}
	// With a template missing, its arguments are unknown too; saying so
	// would only repeat the problem above.
	if !allFound {
		return
	}
	for _, name := range slices.Sorted(maps.Keys(r.Args)) {
		if declared[name] || slices.Contains(BuiltinArgs, name) {
			continue
		}
		hint := "remove it, or declare it under the args of one of the templates"
		if best := closest(name, slices.Sorted(maps.Keys(declared))); best != "" {
			hint = fmt.Sprintf("did you mean `%s`? (%s)", best, hint)
		}
		d.add(path+".args."+name, hint, "no template in %s declares argument %q", strings.Join(r.Templates, ", "), name)
	}
}

// checkEnds reports an analysis at path that the rollout waits for (a
// canary step, a blue-green pre- or post-promotion analysis) and that
// cannot end on its own. An analysis decides once every counted metric
// that is not a dry run has its verdict; a metric with count: 0 measures
// until it is stopped, so without a counted metric the rollout waits until
// `cutover promote` or the progress deadline. alternative, when not empty,
// ends the hint with what to write instead.
func (r *AnalysisRef) checkEnds(d *document, path string, templates templateIndex, alternative string) {
	metrics := 0
	for _, name := range r.Templates {
		t, ok := templates.byName[name]
		if !ok {
			return // reported by validate; what it would measure is unknown
		}
		for _, m := range t.Metrics {
			if m.Count > 0 && !m.DryRun {
				return
			}
			metrics++
		}
	}
	if metrics == 0 {
		return // no metrics: it passes at once, or is reported elsewhere
	}
	hint := "give a metric a count, such as count: 5 (5 measurements, one per interval)"
	if alternative != "" {
		hint += "; " + alternative
	}
	d.add(path+".templates", hint,
		"this analysis never ends on its own: no metric of %s has a count (count: 0 measures until stopped; a dry run decides nothing)",
		strings.Join(r.Templates, ", "))
}
