package analysis

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/config"
)

func TestWebProviderTemplatesRequestAndReadsJSONPath(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/apps/web/health" || r.Header.Get("X-Version") != "v2" || string(body) != `{"version":"v2"}` {
			http.Error(w, fmt.Sprintf("unexpected %s %s %q %q", r.Method, r.URL.Path, r.Header.Get("X-Version"), body), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, `{"data":{"items":[{"rate":0.97},{"rate":0.5}],"ok":true}}`)
	}))
	defer srv.Close()
	m := config.AnalysisMetric{
		Name: "web",
		Provider: config.MetricProvider{Web: &config.WebProvider{
			URL:      srv.URL + "/apps/{{args.app}}/health",
			Method:   http.MethodPost,
			Headers:  map[string]string{"X-Version": "{{args.version}}"},
			Body:     `{"version":"{{args.version}}"}`,
			JSONPath: "$.data.items[0].rate",
		}},
		Interval:         fast,
		Count:            2,
		SuccessCondition: "result > 0.95",
	}
	res := runMetrics(t, t.Context(), Env{Args: map[string]string{"app": "web", "version": "v2"}}, m)
	if res.Phase != Successful || res.Metrics[0].Last.Value != "0.97" {
		t.Fatalf("got %s, want Successful at 0.97", Describe(res))
	}
}

func TestWebAnswerOutside2xxIsAnError(t *testing.T) {
	srv := sequenceServer(t, answer{http.StatusServiceUnavailable, "overloaded"})
	p, err := newWebProvider(&config.WebProvider{URL: srv.URL}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.measure(t.Context())
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "overloaded") {
		t.Fatalf("err = %v, want the status and the body", err)
	}
	if _, ok := asVerdict(err); ok {
		t.Fatalf("a 503 is a provider error, not a verdict")
	}
}

func TestWebAnswerThatIsNotJSONIsAnError(t *testing.T) {
	srv := sequenceServer(t, values("<html>")...)
	p, err := newWebProvider(&config.WebProvider{URL: srv.URL}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.measure(t.Context()); err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Fatalf("err = %v, want not JSON", err)
	}
}
