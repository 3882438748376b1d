package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/target"
	"github.com/cutover/cutover/internal/target/static"
	"github.com/cutover/cutover/internal/traffic"
)

func nginxApp(file string) config.App {
	return config.App{Name: "web", Traffic: config.Traffic{Nginx: &config.NginxTraffic{UpstreamFile: file, Upstream: "web_backend",
		Test: []string{"nginx", "-t"}, Reload: []string{"nginx", "-s", "reload"},
		Verify: config.NginxVerify{URL: "http://127.0.0.1:1/healthz", Timeout: config.Duration(time.Second)}}}}
}

// trafficOf is what the controller asks a target for.
func trafficOf(t *testing.T, tgt controller.Target) traffic.Provider {
	t.Helper()
	tt, ok := tgt.(interface{ Traffic() traffic.Provider })
	if !ok {
		t.Fatalf("%T has no traffic provider", tgt)
	}
	return tt.Traffic()
}

func TestProxiedTargetTellsTheProviderEachSlotsReplicasAcrossReloads(t *testing.T) {
	apps := newProxiedApps()
	app := nginxApp(t.TempDir() + "/web-upstream.conf")
	tgt, err := apps.wrap(app, static.New())
	if err != nil {
		t.Fatal(err)
	}
	provider := trafficOf(t, tgt)
	ctx := context.Background()
	inst, err := tgt.Start(ctx, target.Spec{App: "web", Slot: "blue", Upstreams: []string{"http://127.0.0.1:9001", "http://127.0.0.1:9002"}})
	if err != nil {
		t.Fatal(err)
	}
	eps := apps.apps["web"].slots.endpoints
	if got := eps("blue"); len(got) != 2 || got[1].Host != "127.0.0.1:9002" {
		t.Fatalf("blue's endpoints = %v", got)
	}
	if got := eps("green"); len(got) != 0 {
		t.Fatalf("green runs nothing, yet has %v", got)
	}

	// A reload builds the target anew; the replicas started before stay
	// known, and so does the provider while its options do not change.
	again, err := apps.wrap(app, static.New())
	if err != nil {
		t.Fatal(err)
	}
	if trafficOf(t, again) != provider {
		t.Fatal("a reload with the same options made a second provider for the same file")
	}
	if got := eps("blue"); len(got) != 2 {
		t.Fatalf("after the reload blue's endpoints = %v", got)
	}
	if err := inst.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := eps("blue"); len(got) != 0 {
		t.Fatalf("blue was stopped, yet has %v", got)
	}

	changed := app
	nginx := *app.Traffic.Nginx
	nginx.Upstream = "web_other"
	changed.Traffic.Nginx = &nginx
	if other, err := apps.wrap(changed, static.New()); err != nil || trafficOf(t, other) == provider {
		t.Fatalf("new options kept the old provider (%v)", err)
	}
}

func TestRouterTrafficLeavesTheTargetAsItIs(t *testing.T) {
	tgt := static.New()
	got, err := newProxiedApps().wrap(config.App{Name: "web"}, tgt)
	if err != nil || got != controller.Target(tgt) {
		t.Fatalf("wrap = %T, %v; want the static target itself", got, err)
	}
}
