package e2e

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/kubetest"
)

// A standby in router mode serves the app's traffic as the leader routes
// it (the active revision, then a canary at its exact weight and with its
// header route), and when the leader is killed it takes over the paused
// canary with the load through it going on without a failed request.
func TestKubernetesStandbyServesRouterModeTrafficAndTakesOverWithoutAFailedRequest(t *testing.T) {
	k := newRouterSetup(t, `
        canary:
          scaleDownDelay: 5m
          steps:
            - setWeight: 20
            - setHeaderRoute: {name: x-canary, value: "true"}
            - pause: {}`)
	f, err := os.OpenFile(k.configPath(), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "store: {kubernetes: {kubeconfig: %s, namespace: %s, standby: true}}\n", k.cluster.Kubeconfig, k.ns)
	f.Close()
	leader := k.serve(t)
	k.waitVersion(t, "v1")
	k.waitRollout(t, "the first rollout's end", time.Minute, phase("Succeeded"))

	sb := &routerSetup{setup: replicaOf(t, k.setup), cluster: k.cluster, ns: k.ns}
	sb.start(t)
	waitAdmin(t, sb.adminURL(), time.Minute)
	sb.waitVersion(t, "v1")
	if code, body := get(t, sb.adminURL()+"/readyz"); code != http.StatusOK {
		t.Fatalf("the serving standby's /readyz answered %d %s, want 200: a Service may send it traffic", code, body)
	}
	if r := sb.cli(t, "status", "web"); r.code == 0 || !strings.Contains(r.stderr, "standby: ") {
		t.Fatalf("the standby answered status while the leader runs (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
	}

	k.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait")
	k.waitRollout(t, "the pause", 2*time.Minute, paused("AwaitingPromotion"))
	kubetest.WaitFor(t, 30*time.Second, func() (bool, error) {
		code, v := sb.answer(t, "X-Canary", "true")
		return code == http.StatusOK && versionOf(v) == "v2", nil
	})
	got := map[string]int{}
	for range 500 {
		code, v := sb.answer(t)
		got[fmt.Sprint(code, " ", versionOf(v))]++
	}
	if got["200 v2"] != 100 || got["200 v1"] != 400 {
		t.Fatalf("through the standby at weight 20 over 500 requests: %v, want exactly 100 to v2 as through the leader", got)
	}

	load := startLoad(sb.appURL(), 2, 2*time.Minute)
	leader.kill9(t)
	killed := time.Now()
	kubetest.WaitFor(t, time.Minute, func() (bool, error) { return sb.cli(t, "status", "web").code == 0, nil })
	t.Logf("failover: the standby answered status %s after the leader's kill -9", time.Since(killed).Round(100*time.Millisecond))
	sb.waitRollout(t, "the resumed pause", 2*time.Minute, paused("AwaitingPromotion"))
	sb.mustCLI(t, "promote", "web", "--full")
	sb.waitRollout(t, "success", time.Minute, phase("Succeeded"))
	sb.waitVersion(t, "v2")
	time.Sleep(time.Second) // load on the promoted revision
	finishClean(t, load, "through the standby, across the leader's kill -9, the takeover and the promotion")
	for range 20 {
		sb.wantVersion(t, "v2", "after the promotion by the new leader")
	}
}
