package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"
)

func TestFlipsUnderLoadLoseNoRequest(t *testing.T) {
	s := newSetup(t)
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)

	load := startLoad(s.appURL(), 8, 3*time.Minute)
	probe := &http.Client{}
	s.mustCLI(t, "deploy", "web", "--version", "v2")
	if got := version(t, probe, s.appURL()); got != "v2" {
		t.Fatalf("after deploy returned, a new request reached %s, want v2", got)
	}
	want := "v2"
	for i := range 19 { // the deploy was flip 1; each rollback while warm is one more
		s.mustCLI(t, "rollback", "web")
		if want == "v2" {
			want = "v1"
		} else {
			want = "v2"
		}
		for range 5 {
			if got := version(t, probe, s.appURL()); got != want {
				t.Fatalf("flip %d: after rollback returned, a new request reached %s, want %s", i+2, got, want)
			}
		}
	}
	load.finish()
	if load.requests.Load() < 100 {
		t.Fatalf("only %d requests were sent; the load did not run", load.requests.Load())
	}
	if n := load.failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed across 20 flips: %v", n, load.requests.Load(), load.errs)
	}
	if load.versions["v1"] == 0 || load.versions["v2"] == 0 {
		t.Fatalf("both versions should have answered: %v", load.versions)
	}
	t.Logf("%d requests across 20 flips, 0 failed, by version %v", load.requests.Load(), load.versions)
}

func TestInFlightRequestFinishesOnOldSlotAfterFlip(t *testing.T) {
	s := newSetup(t)
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)

	type answer struct {
		code    int
		body    string
		version string
		err     error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := http.Get(s.appURL() + "sleep?d=3s")
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- answer{code: resp.StatusCode, body: string(b), version: resp.Header.Get("X-Version"), err: err}
	}()
	time.Sleep(300 * time.Millisecond) // let the slow request reach v1
	s.mustCLI(t, "deploy", "web", "--version", "v2")
	if got := version(t, http.DefaultClient, s.appURL()); got != "v2" {
		t.Fatalf("new request after the flip reached %s, want v2", got)
	}
	select {
	case a := <-done:
		if a.err != nil || a.code != http.StatusOK || a.version != "v1" {
			t.Fatalf("slow request across the flip: code %d version %q body %q err %v; want 200 from v1", a.code, a.version, a.body, a.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("slow request did not finish")
	}
}

func TestKeepAliveClientMovesToNewSlotOnNextRequest(t *testing.T) {
	s := newSetup(t)
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}}
	get := func() (string, bool) {
		reused := false
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, s.appURL(), nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("keep-alive request failed: %v", err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Header.Get("X-Version"), reused
	}
	if v, _ := get(); v != "v1" {
		t.Fatalf("first answer from %s, want v1", v)
	}
	s.mustCLI(t, "deploy", "web", "--version", "v2")
	v, reused := get()
	if v != "v2" || !reused {
		t.Fatalf("next request on the kept-alive connection: version %s reused %v; want v2 on the same connection", v, reused)
	}
}

func TestDeployThatNeverGetsReadyFailsAndLeavesTraffic(t *testing.T) {
	s := newSetup(t)
	s.DeployTimeout = "3s"
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)

	r := s.cli(t, "deploy", "web", "--version", "v2",
		"--command", cutoverBin+" sample-app --version v2 --never-ready")
	if r.code != 1 {
		t.Fatalf("deploy of a never-ready version: exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "deployTimeout") {
		t.Errorf("the failure should say the deploy timed out:\n%s", r.stderr)
	}
	for range 10 {
		if got := version(t, http.DefaultClient, s.appURL()); got != "v1" {
			t.Fatalf("after the failed deploy traffic reached %s, want v1", got)
		}
	}
	var st struct {
		Version string `json:"version"`
		Slots   []struct {
			Name, Phase string
		} `json:"slots"`
		Rollout struct{ Phase string } `json:"rollout"`
	}
	out := s.mustCLI(t, "status", "web", "-o", "json").stdout
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status json: %v\n%s", err, out)
	}
	if st.Version != "v1" || st.Rollout.Phase != "Failed" {
		t.Fatalf("status after failed deploy: %s", out)
	}
	for _, sl := range st.Slots {
		if sl.Name == "green" && sl.Phase != "empty" {
			t.Fatalf("the idle slot should be torn down, is %s", sl.Phase)
		}
	}
}

func TestCrashLoopingDeployFails(t *testing.T) {
	s := newSetup(t)
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	r := s.cli(t, "deploy", "web", "--version", "v2", "--command", "/bin/sh -c 'echo boom >&2; exit 3'")
	if r.code != 1 || !strings.Contains(r.stderr, "boom") {
		t.Fatalf("crash-looping deploy: exit %d, want 1 and the replica's last log line\n%s", r.code, r.stderr)
	}
	if got := version(t, http.DefaultClient, s.appURL()); got != "v1" {
		t.Fatalf("traffic moved to %s", got)
	}
}

func TestManualPromotionWaitsAndAbortKeepsStable(t *testing.T) {
	s := newSetup(t)
	s.AutoPromotion = false
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)

	s.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait")
	waitServing(t, "http://"+s.Preview+"/", "v2", 20*time.Second)
	if got := version(t, http.DefaultClient, s.appURL()); got != "v1" {
		t.Fatalf("before promotion production got %s, want v1", got)
	}
	out := s.mustCLI(t, "status", "web").stdout
	if !strings.Contains(out, "Paused") {
		t.Fatalf("status should show the paused rollout:\n%s", out)
	}
	s.mustCLI(t, "promote", "web")
	waitServing(t, s.appURL(), "v2", 20*time.Second)
	// v2 bakes before its rollout ends and another may start.
	s.waitRollout(t, "v2's rollout to end", 30*time.Second, phase("Succeeded"))

	s.mustCLI(t, "deploy", "web", "--version", "v3", "--no-wait")
	waitServing(t, "http://"+s.Preview+"/", "v3", 20*time.Second)
	r := s.mustCLI(t, "abort", "web")
	if !strings.Contains(r.stdout, "Aborted") {
		t.Fatalf("abort output: %s", r.stdout)
	}
	if got := version(t, http.DefaultClient, s.appURL()); got != "v2" {
		t.Fatalf("after abort production got %s, want v2", got)
	}
	if r := s.cli(t, "promote", "web"); r.code != 1 || !strings.Contains(r.stderr, "no rollout") {
		t.Fatalf("promote with nothing to promote: exit %d %s", r.code, r.stderr)
	}
}

func TestRollbackAfterScaleDownRedeploysPreviousRevision(t *testing.T) {
	s := newSetup(t)
	s.ScaleDownDelay = "1s"
	s.Replicas = 1
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	s.mustCLI(t, "deploy", "web", "--version", "v2")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.mustCLI(t, "history", "web").stdout, "ScaledDown") {
		if time.Now().After(deadline) {
			t.Fatal("old slot was not scaled down after scaleDownDelay")
		}
		time.Sleep(200 * time.Millisecond)
	}
	r := s.mustCLI(t, "rollback", "web")
	if !strings.Contains(r.stderr, "rollback to revision 1") {
		t.Errorf("rollback after scale-down should redeploy revision 1:\n%s", r.stderr)
	}
	if got := version(t, http.DefaultClient, s.appURL()); got != "v1" {
		t.Fatalf("after rollback got %s, want v1", got)
	}
}
