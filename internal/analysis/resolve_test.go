package analysis

import (
	"maps"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/config"
)

func strp(s string) *string { return &s }

func TestResolveMergesArgsDefaultsThenEnvThenRef(t *testing.T) {
	all := []config.AnalysisTemplate{
		{Name: "other"},
		{Name: "rate", Args: []config.AnalysisArg{
			{Name: "window", Value: strp("5m")},
			{Name: "version", Value: strp("default")},
			{Name: "service", Value: strp("default")},
			{Name: "threshold"},
		}},
	}
	ref := config.AnalysisRef{Templates: []string{"rate"}, Args: map[string]string{"service": "ref", "threshold": "0.9"}}
	templates, args, err := Resolve(all, ref, map[string]string{"version": "v2", "service": "env", "app": "web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(templates) != 1 || templates[0].Name != "rate" {
		t.Fatalf("templates = %v, want rate", templates)
	}
	want := map[string]string{"window": "5m", "version": "v2", "service": "ref", "threshold": "0.9", "app": "web"}
	if !maps.Equal(args, want) {
		t.Fatalf("args = %v, want %v", args, want)
	}
}

func TestResolveNamesMissingTemplateAndArg(t *testing.T) {
	all := []config.AnalysisTemplate{{Name: "rate", Args: []config.AnalysisArg{{Name: "service"}}}}
	_, _, err := Resolve(all, config.AnalysisRef{Templates: []string{"latency"}}, nil)
	if err == nil || !strings.Contains(err.Error(), `"latency" not found`) {
		t.Fatalf("err = %v, want the missing template named", err)
	}
	_, _, err = Resolve(all, config.AnalysisRef{Templates: []string{"rate"}}, nil)
	if err == nil || !strings.Contains(err.Error(), `needs arg "service"`) {
		t.Fatalf("err = %v, want the missing arg named", err)
	}
}

func TestRunWithMissingTemplateIsError(t *testing.T) {
	res := Run(t.Context(), nil, config.AnalysisRef{Templates: []string{"nope"}}, Env{}, nil)
	if res.Phase != Error || !strings.Contains(res.Message, `"nope"`) {
		t.Fatalf("got %s, want Error naming the template", Describe(res))
	}
}

func TestQueryReferringToUnknownArgIsError(t *testing.T) {
	m := config.AnalysisMetric{Name: "q", Provider: config.MetricProvider{Prometheus: &config.PrometheusProvider{
		Address: "http://127.0.0.1:9", Query: `sum(rate(x{app="{{args.app}}",v="{{ args.missing }}"}[1m]))`,
	}}}
	res := runMetrics(t, t.Context(), Env{Args: map[string]string{"app": "web"}}, m)
	if res.Phase != Error || !strings.Contains(res.Message, "args missing") {
		t.Fatalf("got %s, want Error naming the missing arg", Describe(res))
	}
}

func TestExpandArgs(t *testing.T) {
	got, err := expandArgs(`x{app="{{args.app}}",v="{{ args.version }}"}`, map[string]string{"app": "web", "version": "v2"})
	if want := `x{app="web",v="v2"}`; err != nil || got != want {
		t.Fatalf("expandArgs = %q, %v; want %q", got, err, want)
	}
}
