package controller_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/store/bolt"
)

// fullAfter is a bolt store whose disk fills up at one event: from the
// event with reason onward, appending events fails as a full disk does.
// (The e2e test fills a real disk; where that failure lands in a rollout
// depends on the store file's free pages, so this pins the case where it
// lands after the flip.)
type fullAfter struct {
	*bolt.DB
	reason string
	full   bool
}

func (s *fullAfter) AppendEvent(ev store.Event) (store.Event, error) {
	if s.full = s.full || ev.Reason == s.reason; s.full {
		return store.Event{}, fmt.Errorf("append event %s: write cutover.db: %w", ev.Reason, syscall.ENOSPC)
	}
	return s.DB.AppendEvent(ev)
}

// A rollout whose events are lost after the flip does not report success:
// it ends failed, saying that the new revision serves but its history is
// incomplete.
func TestRolloutWhoseEventsAreLostAfterTheFlipIsNotASuccess(t *testing.T) {
	up := slowSmokeUpstream(t, 0)
	st := &fullAfter{DB: openStore(t), reason: "Drained"}
	c, first := startStaticAppOn(t, st, up, strings.ReplaceAll(smokeApp, "%[2]s", "20s"))
	if first.Phase != store.RolloutFailed && first.Phase != store.RolloutSucceeded {
		t.Fatalf("first rollout: %s", first.Phase)
	}
	ro, err := c.Deploy("web", controller.DeployRequest{Version: "v2", Upstreams: []string{up}})
	for i := 0; errors.Is(err, controller.ErrConflict) && i < 100; i++ {
		time.Sleep(50 * time.Millisecond)
		ro, err = c.Deploy("web", controller.DeployRequest{Version: "v2", Upstreams: []string{up}})
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	end, err := c.WaitRollout(ctx, "web", ro.ID)
	if err != nil {
		t.Fatal(err)
	}
	if end.Phase != store.RolloutFailed || !strings.Contains(end.Message, "serves all traffic") || !strings.Contains(end.Message, "no space left on device") {
		t.Fatalf("rollout ended %s: %q; want failed, saying v2 serves but its history was not recorded", end.Phase, end.Message)
	}
	if status, _ := c.Status("web"); status.Version != "v2" {
		t.Fatalf("after the flip %s serves, want v2", status.Version)
	}
}
