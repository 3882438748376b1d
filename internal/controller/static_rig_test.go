package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/store/bolt"
	"github.com/cutover/cutover/internal/target/static"
)

// startStaticApp starts a controller for one app, web, on a real router
// and bolt store; yaml is the app's entry, indented under apps:, with
// %[1]s where its upstream's URL goes. It returns the controller once the
// first rollout has ended, with that rollout.
func startStaticApp(t *testing.T, upstreamURL, yaml string) (*controller.Controller, store.Rollout) {
	t.Helper()
	return startStaticAppOn(t, openStore(t), upstreamURL, yaml)
}

// openStore opens a bolt store in a temporary dir, closed at cleanup.
func openStore(t *testing.T) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// startController starts a controller of cfg on db and rt whose apps run
// on tgt; it is stopped at cleanup.
func startController(t *testing.T, db controller.Store, rt controller.Router, tgt controller.Target, cfg *config.Config) *controller.Controller {
	t.Helper()
	c := controller.New(controller.Options{Store: db, Router: rt, Logger: testLogger(t),
		NewTarget: func(config.App) (controller.Target, error) { return tgt, nil }})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Stop(ctx)
	})
	if err := c.Start(cfg); err != nil {
		t.Fatal(err)
	}
	return c
}

// startStaticAppOn is startStaticApp on the store db.
func startStaticAppOn(t *testing.T, db controller.Store, upstreamURL, yaml string) (*controller.Controller, store.Rollout) {
	t.Helper()
	cfg, err := config.Parse("cutover.yaml", fmt.Appendf(nil, "apps:\n"+yaml, upstreamURL))
	if err != nil {
		t.Fatal(err)
	}
	c := startController(t, db, newTestRouter(t), static.New(), cfg)
	st, err := c.Status("web")
	if err != nil || st.Rollout == nil {
		t.Fatalf("no first rollout: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ro, err := c.WaitRollout(ctx, "web", st.Rollout.ID)
	if err != nil {
		t.Fatal(err)
	}
	return c, ro
}
