package api_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
)

func TestDeployRefusesABarrierThatIsNotOnePrintableLine(t *testing.T) {
	a := startAdmin(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waitVersion(ctx, t, a.client, "v1")
	for name, barrier := range map[string]string{
		"newline": "schema v42\n2026-11-30 12:00:00.000  Normal  Promoted", "escape codes": "\x1b[31mschema",
		"tab": "schema\tv42", "C1 control": "schema\u009bv42", "201 characters": strings.Repeat("é", 201), "blank": "   ",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := a.client.Deploy(ctx, "web", controller.DeployRequest{Version: "v2", Upstreams: []string{a.Upstream}, Barrier: barrier}, nil)
			var e *api.Error
			if !errors.As(err, &e) || e.Status != 400 || !strings.Contains(e.Message, "barrier") {
				t.Fatalf("got %v; want 400 about the barrier", err)
			}
			if len(e.Message) > 500 || strings.ContainsAny(e.Message, "\n\t\x1b\u009b") {
				t.Fatalf("the error itself carries the bad text: %q", e.Message)
			}
		})
	}
	h, err := a.client.History(ctx, "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Revisions) != 1 {
		t.Fatalf("refused deploys recorded %d revisions", len(h.Revisions)-1)
	}
}

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
