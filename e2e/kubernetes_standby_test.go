package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/daemon/daemontest"
	"github.com/cutover/cutover/internal/kubetest"
)

// Two cutovers share a store (store.kubernetes.standby): the leader runs
// a canary paused at 25%; the standby answers only /healthz until the
// leader is killed, then takes the store over and resumes the same
// rollout, which its promote finishes.
func TestKubernetesStandbyTakesOverARolloutInProgress(t *testing.T) {
	k, leader := newKubeCanarySetupWith(t, standbyStoreInCluster)
	k.waitRollout(t, "the first rollout's end", time.Minute, phase("Succeeded"))
	k.atFirstPause(t)
	before := k.status(t).Rollout

	sb := k.standbyReplica(t)
	sb.start(t)
	waitAdmin(t, sb.adminURL(), time.Minute)
	if code, _ := get(t, sb.adminURL()+"/healthz"); code != http.StatusOK {
		t.Fatalf("the standby's /healthz answered %d, want 200: its process lives", code)
	}
	if code, _ := get(t, sb.adminURL()+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("the standby's /readyz answered %d, want 503: a Service must send it nothing", code)
	}
	if code, body := get(t, k.adminURL()+"/readyz"); code != http.StatusOK {
		t.Fatalf("the leader's /readyz answered %d %s, want 200", code, body)
	}
	// The standby names the leader (host_PID) once it has seen the Lease.
	leaderID := fmt.Sprintf("_%d leads", leader.cmd.Process.Pid)
	kubetest.WaitFor(t, 30*time.Second, func() (bool, error) {
		r := sb.cli(t, "status", "web")
		if r.code == 0 {
			t.Fatalf("the standby answered status while the leader runs:\n%s", r.stdout)
		}
		return strings.Contains(r.stderr, "standby: ") && strings.Contains(r.stderr, leaderID), nil
	})
	if st := k.status(t); st.Rollout == nil || st.Rollout.ID != before.ID || st.Rollout.PauseReason != "AwaitingPromotion" {
		t.Fatalf("with a standby beside it, the leader's rollout is %+v, want rollout %d still paused", st.Rollout, before.ID)
	}

	leader.kill9(t)
	killed := time.Now()
	kubetest.WaitFor(t, time.Minute, func() (bool, error) { return sb.cli(t, "status", "web").code == 0, nil })
	t.Logf("failover: the standby answered status %s after the leader's kill -9", time.Since(killed).Round(100*time.Millisecond))
	if code, body := get(t, sb.adminURL()+"/readyz"); code != http.StatusOK {
		t.Fatalf("the new leader's /readyz answered %d %s, want 200", code, body)
	}

	sb.waitResumedAt25(t)
	after := sb.status(t).Rollout
	if after.ID != before.ID || after.StepIndex != before.StepIndex || after.Weight != 25 || after.Version != "v2" {
		t.Fatalf("the standby resumed rollout %d at step %d weight %d %s, want rollout %d at step %d weight 25 v2",
			after.ID, after.StepIndex, after.Weight, after.Version, before.ID, before.StepIndex)
	}
	sb.wantListed(t, "after the takeover", map[string]int{"blue": 3, "green": 1})
	sb.mustCLI(t, "promote", "web")
	sb.waitRollout(t, "success", 2*time.Minute, phase("Succeeded"))
	sb.wantListed(t, "once promoted", map[string]int{"green": 3})
}

// standbyStoreInCluster is the Kubernetes store in k's namespace, with
// standby replicas.
func standbyStoreInCluster(k *kubeSetup) string {
	return fmt.Sprintf("store: {kubernetes: {kubeconfig: %s, namespace: %s, standby: true}}\n", k.cluster.Kubeconfig, k.ns)
}

// standbyReplica is a second cutover beside k's: the same config but its
// own admin API, app listener and data dir.
func (k *kubeSetup) standbyReplica(t *testing.T) *kubeSetup {
	t.Helper()
	sb := *k
	sb.setup = replicaOf(t, k.setup)
	return &sb
}

// replicaOf is a copy of s with its own admin API, app listener and data
// dir, its config s's with those changed.
func replicaOf(t *testing.T, s *setup) *setup {
	t.Helper()
	r := *s
	r.Dir = t.TempDir()
	r.Admin = fmt.Sprintf("127.0.0.1:%d", daemontest.FreePort(t))
	r.Listen = fmt.Sprintf("127.0.0.1:%d", daemontest.FreePort(t))
	b, err := os.ReadFile(s.configPath())
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(strings.Replace(string(b), s.Admin, r.Admin, 1), s.Listen, r.Listen, 1)
	if err := os.WriteFile(r.configPath(), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return &r
}

// get answers a GET's status code and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The manifests' RBAC (20-role.yaml where the apps are, 25-store-role.yaml
// in the store's namespace cutover, the CRD applied once) is enough for a
// leader and a standby on the Kubernetes store.
func TestKubernetesStandbyWorksWithTheManifestsRBAC(t *testing.T) {
	k := newKubeSetup(t)
	k.kubeconfig = runAsCutover(t, k.cluster, k.ns)
	for _, f := range []string{"crd.yaml", "25-store-role.yaml"} {
		objs, err := kubetest.ReadManifests(filepath.Join(manifestsDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := k.cluster.Create(t, k.ns, false, objs...); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	k.writeKubeConfigWith(t, nil, "", fmt.Sprintf("store: {kubernetes: {kubeconfig: %s, namespace: cutover, standby: true}}\n", k.kubeconfig))
	leader := k.serve(t)
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) { return k.selectorSlot(t, "web") == "blue", nil })
	k.waitRollout(t, "the first rollout's end", time.Minute, phase("Succeeded"))
	sb := k.standbyReplica(t)
	sb.start(t)
	waitAdmin(t, sb.adminURL(), time.Minute)
	kubetest.WaitFor(t, 30*time.Second, func() (bool, error) {
		return strings.Contains(sb.cli(t, "status", "web").stderr, fmt.Sprintf("_%d leads", leader.cmd.Process.Pid)), nil
	})
	k.mustCLI(t, "deploy", "web", "--version", "v2")
	leader.kill9(t)
	kubetest.WaitFor(t, time.Minute, func() (bool, error) { return sb.cli(t, "status", "web").code == 0, nil })
	if st := sb.status(t); st.ActiveSlot != "green" || st.Version != "v2" {
		t.Fatalf("after the takeover: active %s %s, want green v2", st.ActiveSlot, st.Version)
	}
	// The new leader answers while it still restores the active revision;
	// a rollback meanwhile is refused as a conflict.
	kubetest.WaitFor(t, time.Minute, func() (bool, error) {
		r := sb.cli(t, "rollback", "web")
		if r.code != 0 && !strings.Contains(r.stderr, "restarting its active revision") {
			return false, fmt.Errorf("rollback: exit %d: %s", r.code, r.stderr)
		}
		return r.code == 0, nil
	})
	if st := sb.status(t); st.ActiveSlot != "blue" || st.Version != "v1" {
		t.Fatalf("after the standby's rollback: active %s %s, want blue v1", st.ActiveSlot, st.Version)
	}
}
