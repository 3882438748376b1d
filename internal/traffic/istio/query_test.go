package istio

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/config"
)

// documentedTemplate returns the analysis template istio-success-rate
// of the README's Istio section, as cutover's config parser reads the
// example it is in.
func documentedTemplate(t *testing.T) config.AnalysisTemplate {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile("(?s)\n### Istio\n(.*?)\n##").FindSubmatch(readme)
	if section == nil {
		t.Fatal("README.md has no section ### Istio")
	}
	for _, block := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(section[1], -1) {
		if !bytes.Contains(block[1], []byte("analysisTemplates:")) {
			continue
		}
		cfg, err := config.Parse("README.md", block[1])
		if err != nil {
			t.Fatalf("the README's Istio example does not parse: %v", err)
		}
		if i := slices.IndexFunc(cfg.AnalysisTemplates, func(a config.AnalysisTemplate) bool { return a.Name == "istio-success-rate" }); i >= 0 {
			return cfg.AnalysisTemplates[i]
		}
	}
	t.Fatal("the README's Istio section has no yaml example with the analysis template istio-success-rate")
	return config.AnalysisTemplate{}
}

// TestTheDocumentedSuccessRateQuery runs the query of the README, its
// arguments filled in as the controller does for a canary of web on slot
// green, through promtool over recorded istio_requests_total series: the
// canary's own requests count, those of the stable slot, of another
// namespace and as reported by the clients' sidecars do not.
func TestTheDocumentedSuccessRateQuery(t *testing.T) {
	tmpl := documentedTemplate(t)
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool is not installed (apt-get install prometheus): %v", err)
		}
		t.Skipf("promtool is not installed (apt-get install prometheus); skipping: %v", err)
	}
	query := func(app string) string {
		args := map[string]string{"app": app, "canarySlot": "green"}
		for _, a := range tmpl.Args {
			args[a.Name] = *a.Value
		}
		q := regexp.MustCompile(`\{\{\s*args\.(\w+)\s*\}\}`).ReplaceAllStringFunc(tmpl.Metrics[0].Provider.Prometheus.Query, func(ref string) string {
			return args[strings.Trim(ref, "{} ")[len("args."):]]
		})
		return strings.ReplaceAll(q, "'", "''") // quoted for the YAML below
	}
	series := func(reporter, ns, workload, code, values string) string {
		return fmt.Sprintf("      - series: 'istio_requests_total{reporter=%q,destination_workload_namespace=%q,destination_workload=%q,response_code=%q}'\n        values: '%s'\n",
			reporter, ns, workload, code, values)
	}
	// One sample every 15s: the canary serves 0.9 requests/s with a 200
	// and 0.1 with a 503, for 10 minutes.
	tests := "rule_files: []\nevaluation_interval: 15s\ntests:\n  - interval: 15s\n    input_series:\n" +
		series("destination", "shop", "web-green", "200", "0+13.5x40") +
		series("destination", "shop", "web-green", "503", "0+1.5x40") +
		series("destination", "shop", "web-blue", "500", "0+20x40") +
		series("source", "shop", "web-green", "500", "0+50x40") +
		series("destination", "staging", "web-green", "500", "0+30x40") +
		"    promql_expr_test:\n" +
		"      - expr: '" + query("web") + "'\n        eval_time: 5m\n        exp_samples: [{labels: '{}', value: 0.9}]\n" +
		// An app whose canary had no request: no sample, so NaN.
		"      - expr: '" + query("api") + "'\n        eval_time: 5m\n        exp_samples: []\n"
	file := filepath.Join(t.TempDir(), "istio-query-test.yaml")
	if err := os.WriteFile(file, []byte(tests), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "test", "rules", file).CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s\n%s", err, out, tests)
	}
}
