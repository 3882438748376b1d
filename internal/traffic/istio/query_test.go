package istio

import (
	"fmt"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/traffic/querytest"
)

// TestTheDocumentedSuccessRateQuery runs the query of the README's
// template istio-success-rate, its arguments filled in as the controller
// does for a canary of web on slot green, through promtool over recorded
// istio_requests_total series: the canary's own requests count, those of
// the stable slot, of another namespace and as reported by the clients'
// sidecars do not.
func TestTheDocumentedSuccessRateQuery(t *testing.T) {
	tmpl := querytest.Template(t, "Istio", "istio-success-rate")
	query := func(app string) string {
		return querytest.Query(t, tmpl, "success-rate", map[string]string{"app": app, "canarySlot": "green"})
	}
	series := func(reporter, ns, workload, code, values string) querytest.Series {
		return querytest.Series{
			Series: fmt.Sprintf("istio_requests_total{reporter=%q,destination_workload_namespace=%q,destination_workload=%q,response_code=%q}", reporter, ns, workload, code),
			Values: values,
		}
	}
	// One sample every 15s: the canary serves 0.9 requests/s with a 200
	// and 0.1 with a 503, for 10 minutes.
	querytest.Promtool(t, 15*time.Second, []querytest.Series{
		series("destination", "shop", "web-green", "200", "0+13.5x40"),
		series("destination", "shop", "web-green", "503", "0+1.5x40"),
		series("destination", "shop", "web-blue", "500", "0+20x40"),
		series("source", "shop", "web-green", "500", "0+50x40"),
		series("destination", "staging", "web-green", "500", "0+30x40"),
	}, []querytest.Case{
		{Expr: query("web"), At: 5 * time.Minute, Want: []querytest.Sample{{Labels: "{}", Value: 0.9}}},
		// An app whose canary had no request: no sample, so NaN.
		{Expr: query("api"), At: 5 * time.Minute},
	})
}
