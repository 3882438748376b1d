package api_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
)

func TestRollbackPastABarrierIsAConflictUnlessForced(t *testing.T) {
	a := startAdmin(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waitVersion(ctx, t, a.client, "v1")
	follow := func(store.Event) {}
	ro, err := a.client.Deploy(ctx, "web", controller.DeployRequest{Version: "v2", Upstreams: []string{a.Upstream}, Barrier: "schema v42"}, follow)
	if err != nil || ro.Phase != store.RolloutSucceeded {
		t.Fatalf("deploy --barrier: %+v, %v", ro, err)
	}
	_, err = a.client.Rollback(ctx, "web", api.RollbackRequest{}, follow)
	var e *api.Error
	const want = "revision 2 (v2) is a rollback barrier: schema v42; rolling back past it may break on the new schema; use --force if you are sure"
	if !errors.As(err, &e) || e.Status != 409 || e.Message != want {
		t.Fatalf("rollback past the barrier: %v; want 409 %q", err, want)
	}
	ro, err = a.client.Rollback(ctx, "web", api.RollbackRequest{Force: true}, follow)
	if err != nil || ro.Phase != store.RolloutSucceeded || ro.Version != "v1" {
		t.Fatalf("rollback --force: %+v, %v; want v1 back", ro, err)
	}
	h, err := a.client.History(ctx, "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Revisions) != 2 || h.Revisions[1].Barrier != "schema v42" {
		t.Errorf("history revisions = %+v; want revision 2 marked as the barrier", h.Revisions)
	}
}
