package controller_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/store"
)

// slowSmokeUpstream answers /healthz at once and /smoke after delay (or
// when the client gives up).
func slowSmokeUpstream(t *testing.T, delay time.Duration) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /smoke", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
			io.WriteString(w, "ok")
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

const smokeApp = `  - name: web
    listen: 127.0.0.1:8080
    version: v1
    deployTimeout: %[2]s
    target:
      static: {upstreams: ["%[1]s"]}
    health: {path: /healthz, interval: 50ms, healthyThreshold: 1}
    strategy:
      blueGreen: {smoke: [{path: /smoke, expectStatus: 200}]}
`

// A smoke check may take as long as deployTimeout leaves it: one that
// answers after 11 s passes when deployTimeout is 40 s.
func TestSmokeCheckMayTakeWhatDeployTimeoutLeaves(t *testing.T) {
	up := slowSmokeUpstream(t, 11*time.Second)
	_, ro := startStaticApp(t, up, strings.ReplaceAll(smokeApp, "%[2]s", "40s"))
	if ro.Phase != store.RolloutSucceeded {
		t.Fatalf("rollout ended %s: %s", ro.Phase, ro.Message)
	}
}

// A smoke check that does not answer fails the deploy when deployTimeout
// runs out, and says so.
func TestSmokeCheckEndsWithDeployTimeout(t *testing.T) {
	up := slowSmokeUpstream(t, time.Hour)
	_, ro := startStaticApp(t, up, strings.ReplaceAll(smokeApp, "%[2]s", "3s"))
	if ro.Phase != store.RolloutFailed || !strings.Contains(ro.Message, "no answer within deployTimeout 3s") {
		t.Fatalf("rollout ended %s: %q; want failed, naming deployTimeout 3s", ro.Phase, ro.Message)
	}
}
