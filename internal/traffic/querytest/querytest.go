// Package querytest checks the Prometheus queries the README documents for
// a traffic provider, for that provider's tests: it reads an analysis
// template out of the README's yaml examples as cutover's config parser
// reads a config file, fills in its arguments as the controller does, and
// runs its queries through promtool over recorded series.
package querytest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"
	"github.com/goccy/go-yaml"
	"github.com/prometheus/common/model"

	"github.com/cutover/cutover/internal/analysis"
	"github.com/cutover/cutover/internal/config"
)

// Template returns the analysis template called name from the README
// section headed "### <section>": the first yaml example of that section
// that holds analysisTemplates and defines it, parsed, defaulted and
// validated by config.Parse as a whole config file.
func Template(t testing.TB, section, name string) config.AnalysisTemplate {
	t.Helper()
	for _, example := range Examples(t, section) {
		if !bytes.Contains(example, []byte("analysisTemplates:")) {
			continue
		}
		cfg, err := config.Parse("README.md", example)
		if err != nil {
			t.Fatalf("the README's %s example does not parse: %v", section, err)
		}
		if i := slices.IndexFunc(cfg.AnalysisTemplates, func(a config.AnalysisTemplate) bool { return a.Name == name }); i >= 0 {
			return cfg.AnalysisTemplates[i]
		}
	}
	t.Fatalf("the README's %s section has no yaml example with the analysis template %s", section, name)
	return config.AnalysisTemplate{}
}

// Examples returns the yaml examples of the README section headed
// "### <section>", in their order.
func Examples(t testing.TB, section string) [][]byte {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(moduleRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	body := regexp.MustCompile("(?s)\n### " + regexp.QuoteMeta(section) + "\n(.*?)\n##").FindSubmatch(readme)
	if body == nil {
		t.Fatalf("README.md has no section ### %s", section)
	}
	var examples [][]byte
	for _, block := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(body[1], -1) {
		examples = append(examples, block[1])
	}
	return examples
}

// moduleRoot is the directory of go.mod above the test's working
// directory (its package's directory).
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// Metric returns the metric called name of tmpl.
func Metric(t testing.TB, tmpl config.AnalysisTemplate, name string) config.AnalysisMetric {
	t.Helper()
	i := slices.IndexFunc(tmpl.Metrics, func(m config.AnalysisMetric) bool { return m.Name == name })
	if i < 0 {
		t.Fatalf("analysis template %s has no metric %s", tmpl.Name, name)
	}
	return tmpl.Metrics[i]
}

// argRef is an {{args.NAME}} in a query, as the analysis package reads it.
var argRef = regexp.MustCompile(`\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}`)

// Query returns the Prometheus query of tmpl's metric called metric with
// its {{args.NAME}} filled in: args (what the controller gives, such as
// app and canarySlot) over the template's defaults, merged by
// analysis.Resolve as a rollout merges them.
func Query(t testing.TB, tmpl config.AnalysisTemplate, metric string, args map[string]string) string {
	t.Helper()
	m := Metric(t, tmpl, metric)
	if m.Provider.Prometheus == nil {
		t.Fatalf("metric %s of analysis template %s has no prometheus provider", metric, tmpl.Name)
	}
	_, merged, err := analysis.Resolve([]config.AnalysisTemplate{tmpl}, config.AnalysisRef{Templates: []string{tmpl.Name}}, args)
	if err != nil {
		t.Fatal(err)
	}
	return argRef.ReplaceAllStringFunc(m.Provider.Prometheus.Query, func(ref string) string {
		name := argRef.FindStringSubmatch(ref)[1]
		v, ok := merged[name]
		if !ok {
			t.Fatalf("the query of metric %s refers to args.%s, which has no value", metric, name)
		}
		return v
	})
}

// Meets reports whether condition (a successCondition or
// failureCondition) holds for a measurement of result.
func Meets(t testing.TB, condition string, result float64) bool {
	t.Helper()
	out, err := expr.Eval(condition, map[string]any{"result": result})
	if err != nil {
		t.Fatalf("evaluate %q with result %v: %v", condition, result, err)
	}
	ok, isBool := out.(bool)
	if !isBool {
		t.Fatalf("%q gave %v, not true or false", condition, out)
	}
	return ok
}

// Series is one recorded input series: a series in PromQL's notation
// (name{label="value",...}) and its samples in promtool's expanding
// notation ("0+13.5x40": 41 samples from 0, each 13.5 more than the last).
type Series struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

// Sample is one sample an expression is expected to give; Labels in
// PromQL's notation, "{}" for an aggregate without labels.
type Sample struct {
	Labels string  `yaml:"labels"`
	Value  float64 `yaml:"value"`
}

// Case is an expression evaluated At a time after the first sample, and
// the samples it must give (none: an empty result).
type Case struct {
	Expr string
	At   time.Duration
	Want []Sample
}

// Promtool runs `promtool test rules` over series sampled every interval
// and fails t, with promtool's report, when a case gives other samples
// than it wants. Without promtool it skips t, except in CI.
func Promtool(t testing.TB, interval time.Duration, series []Series, cases []Case) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool is not installed (apt-get install prometheus): %v", err)
		}
		t.Skipf("promtool is not installed (apt-get install prometheus); skipping: %v", err)
	}
	type exprTest struct {
		Expr       string   `yaml:"expr"`
		EvalTime   string   `yaml:"eval_time"`
		ExpSamples []Sample `yaml:"exp_samples"`
	}
	type unitTest struct {
		Interval    string     `yaml:"interval"`
		InputSeries []Series   `yaml:"input_series"`
		ExprTests   []exprTest `yaml:"promql_expr_test"`
	}
	test := unitTest{Interval: model.Duration(interval).String(), InputSeries: series}
	for _, c := range cases {
		want := c.Want
		if want == nil {
			want = []Sample{}
		}
		test.ExprTests = append(test.ExprTests, exprTest{Expr: c.Expr, EvalTime: model.Duration(c.At).String(), ExpSamples: want})
	}
	file, err := yaml.Marshal(map[string]any{
		"rule_files":          []string{},
		"evaluation_interval": test.Interval,
		"tests":               []unitTest{test},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "query-test.yaml")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "test", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s\n%s", err, strings.TrimSpace(string(out)), file)
	}
}
