package gatewayapi

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/cutover/cutover/internal/traffic"
	"github.com/cutover/cutover/internal/traffic/querytest"
)

// envoyBuckets are the bounds, in milliseconds, of Envoy's default
// histogram buckets, as its Prometheus output labels them (le).
var envoyBuckets = []string{"0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000",
	"2500", "5000", "10000", "30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf"}

// TestEachDocumentedEnvoyGatewayQueryMeasuresTheCanaryAlone runs the queries of the README's
// template envoy-gateway-canary (whose example config.Parse validates),
// with its default arguments (route web, rule 0 in namespace shop) and
// for two other routes, through promtool over recorded series of two
// Envoy pods of the gateway: the canary backendRef's cluster counts;
// stable's, the rule's shared cluster, another rule's, cutover's header
// rule's and those of another route, namespace or route kind do not. The
// healthy canary passes the template's success conditions and the failing
// one meets its failure conditions.
func TestEachDocumentedEnvoyGatewayQueryMeasuresTheCanaryAlone(t *testing.T) {
	tmpl := querytest.Template(t, "Gateway API", "envoy-gateway-canary")
	controllerArgs := map[string]string{"app": "web", "canarySlot": "green"}
	forRoute := func(route string) map[string]string {
		return map[string]string{"app": "web", "canarySlot": "green", "route": route}
	}
	// One sample every 15s for 10 minutes, of counters that grow by a
	// whole number of requests per second (so that the expected values are
	// exact in floating point).
	var series []querytest.Series
	const interval = 15 * time.Second
	counter := func(name string, perSecond int) querytest.Series {
		return querytest.Series{Series: name, Values: fmt.Sprintf("0+%dx40", perSecond*int(interval/time.Second))}
	}
	requests := func(cluster, pod, class string, perSecond int) {
		series = append(series, counter(fmt.Sprintf(`envoy_cluster_upstream_rq_xx{envoy_cluster_name=%q,envoy_response_code_class=%q,namespace="envoy-gateway-system",pod=%q}`,
			cluster, class, pod), perSecond))
	}
	// latencies records the requests per second of each bucket of
	// envoyBuckets (cumulative, as Prometheus' are); the last given
	// holds for the buckets after it.
	latencies := func(cluster, pod string, upToBucket ...int) {
		for i, le := range envoyBuckets {
			n := upToBucket[len(upToBucket)-1]
			if i < len(upToBucket) {
				n = upToBucket[i]
			}
			series = append(series, counter(fmt.Sprintf(`envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=%q,le=%q,namespace="envoy-gateway-system",pod=%q}`,
				cluster, le, pod), n))
		}
	}

	// The canary of route web: 499 of 500 requests without a 5xx (4xx
	// count as served), 99% of them answered within 75 ms (interpolated in
	// the bucket 50-100 ms); the pods differ, so only their sum gives these.
	const canary = "httproute/shop/web/rule/0/backend/1"
	requests(canary, "envoy-a", "2", 300)
	requests(canary, "envoy-a", "4", 99)
	requests(canary, "envoy-b", "2", 100)
	requests(canary, "envoy-b", "5", 1)
	latencies(canary, "envoy-a", 0, 0, 100, 250, 400, 500)
	latencies(canary, "envoy-b", 0, 0, 0, 0, 100, 480, 500)
	// Failing, slow requests that are not the canary's own.
	for _, other := range []string{
		"httproute/shop/web/rule/0/backend/0",       // web-stable
		"httproute/shop/web/rule/0",                 // the rule's cluster, without a filter on the canary ref
		"httproute/shop/web/rule/1/backend/1",       // another rule of the route
		"httproute/shop/web/rule/2/backend/0",       // cutover's header rule
		"httproute/staging/web/rule/0/backend/1",    // another namespace
		"grpcroute/shop/web/rule/0/backend/1",       // a GRPCRoute of the same name
		"httproute/shop/web-admin/rule/0/backend/1", // a route whose name begins the same
	} {
		requests(other, "envoy-a", "5", 700)
		latencies(other, "envoy-a", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1000)
	}
	// The canary of route api: 90 of 100 requests without a 5xx, 99% of
	// them within 3750 ms (in the bucket 2500-5000 ms).
	requests("httproute/shop/api/rule/0/backend/1", "envoy-a", "2", 90)
	requests("httproute/shop/api/rule/0/backend/1", "envoy-a", "5", 10)
	latencies("httproute/shop/api/rule/0/backend/1", "envoy-a", 0, 0, 0, 0, 0, 0, 25, 25, 25, 50, 98, 100)

	const healthyRate, healthyP99, failingRate, failingP99 = 0.998, 75, 0.9, 3750
	sample := func(v float64) []querytest.Sample { return []querytest.Sample{{Labels: "{}", Value: v}} }
	querytest.Promtool(t, interval, series, []querytest.Case{
		{Expr: querytest.Query(t, tmpl, "success-rate", controllerArgs), At: 5 * time.Minute, Want: sample(healthyRate)},
		{Expr: querytest.Query(t, tmpl, "latency-p99", controllerArgs), At: 5 * time.Minute, Want: sample(healthyP99)},
		{Expr: querytest.Query(t, tmpl, "success-rate", forRoute("api")), At: 5 * time.Minute, Want: sample(failingRate)},
		{Expr: querytest.Query(t, tmpl, "latency-p99", forRoute("api")), At: 5 * time.Minute, Want: sample(failingP99)},
		// A canary that had no request: no sample, so NaN.
		{Expr: querytest.Query(t, tmpl, "success-rate", forRoute("idle")), At: 5 * time.Minute},
		{Expr: querytest.Query(t, tmpl, "latency-p99", forRoute("idle")), At: 5 * time.Minute},
	})

	successRate, latency := querytest.Metric(t, tmpl, "success-rate"), querytest.Metric(t, tmpl, "latency-p99")

	for _, tc := range []struct {
		metric    string
		condition string
		result    float64
		want      bool
	}{
		{"success-rate of web", successRate.SuccessCondition, healthyRate, true},
		{"success-rate of web", successRate.FailureCondition, healthyRate, false},
		{"success-rate of api", successRate.FailureCondition, failingRate, true},
		{"latency-p99 of web", latency.SuccessCondition, healthyP99, true},
		{"latency-p99 of web", latency.FailureCondition, healthyP99, false},
		{"latency-p99 of api", latency.FailureCondition, failingP99, true},
	} {
		if got := querytest.Meets(t, tc.condition, tc.result); got != tc.want {
			t.Errorf("%s = %v: %q gives %v, want %v", tc.metric, tc.result, tc.condition, got, tc.want)
		}
	}
}

// TestTheDocumentedRouteGivesTheQueryACanaryClusterOfItsOwn takes the
// README's HTTPRoute through a canary's writes and checks what the
// documented queries rely on: in every split rule, the canary ref is the
// second backendRef and keeps its filter (so Envoy Gateway gives it the
// cluster .../backend/1), and the header rule sends to it alone.
func TestTheDocumentedRouteGivesTheQueryACanaryClusterOfItsOwn(t *testing.T) {
	var hr *gatewayv1.HTTPRoute
	for _, example := range querytest.Examples(t, "Gateway API") {
		for _, doc := range bytes.Split(example, []byte("\n---\n")) {
			if bytes.Contains(doc, []byte("kind: HTTPRoute")) {
				hr = &gatewayv1.HTTPRoute{}
				if err := yaml.UnmarshalStrict(doc, hr); err != nil {
					t.Fatalf("the README's HTTPRoute: %v", err)
				}
			}
		}
	}
	if hr == nil {
		t.Fatal("the README's Gateway API section has no HTTPRoute example")
	}
	r := route{HTTPRoute: hr, stable: "web-stable", canary: "web-canary"}
	for _, w := range []int{10, 50, 100} {
		if err := r.setWeight(w); err != nil {
			t.Fatal(err)
		}
		if err := r.setHeaderRoute(traffic.HeaderMatch{Name: "X-Canary", Value: "always"}); err != nil {
			t.Fatal(err)
		}
		split, err := r.split()
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range split {
			refs := r.Spec.Rules[i].BackendRefs
			if len(refs) != 2 || refs[0].Name != "web-stable" || refs[1].Name != "web-canary" || len(refs[1].Filters) == 0 {
				t.Errorf("weight %d: rule %d sends to %s, want web-stable then web-canary with its filter", w, i, describeRefs(refs))
			}
		}
		header := r.Spec.Rules[len(r.Spec.Rules)-1]
		if !r.owned(header) || len(header.BackendRefs) != 1 || header.BackendRefs[0].Name != "web-canary" {
			t.Errorf("weight %d: the last rule (%v) sends to %s, want cutover's header rule sending to web-canary alone", w, header.Name, describeRefs(header.BackendRefs))
		}
	}
}

func describeRefs(refs []gatewayv1.HTTPBackendRef) string {
	var s []string
	for _, ref := range refs {
		s = append(s, fmt.Sprintf("%s (%d filters)", ref.Name, len(ref.Filters)))
	}
	return "[" + strings.Join(s, ", ") + "]"
}
