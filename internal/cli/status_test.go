package cli

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
)

func TestStatusTableShowsTheLastDrainAndTheTotals(t *testing.T) {
	ended := time.Now().Add(-12 * time.Second)
	apps := []controller.AppStatus{{
		App: "web", Listen: "127.0.0.1:8080", ActiveSlot: store.Green, Revision: 2, Version: "v2",
		Slots: []controller.SlotStatus{
			{Name: store.Blue, Phase: store.SlotWarm, Revision: 1, Version: "v1"},
			{Name: store.Green, Phase: store.SlotActive, Revision: 2, Version: "v2"},
		},
		LastDrain: &store.Drain{Slot: store.Blue, Revision: 1, Version: "v1", StartedAt: ended.Add(-30 * time.Second), EndedAt: ended,
			InFlight: 5, LongLived: 2, Finished: 3, Closed: 1, Unfinished: 1},
		Drained: store.DrainTotals{Finished: 40, Closed: 3, Unfinished: 1},
	}, {
		App: "api", Listen: "127.0.0.1:8081", ActiveSlot: store.Blue, Revision: 1, Version: "v1",
		Slots: []controller.SlotStatus{{Name: store.Blue, Phase: store.SlotActive, Revision: 1, Version: "v1"}},
	}}
	var out strings.Builder
	printStatus(&out, apps)
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	var drained []string
	for _, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "drained") {
			drained = append(drained, l)
		}
	}
	if len(drained) != 1 {
		t.Fatalf("want one drained line (web drained, api never did), got %d:\n%s", len(drained), out.String())
	}
	want := regexp.MustCompile(`^  drained +blue +v1 +1 +ended \d+s ago: 5 in flight at the flip \(2 long-lived\), 3 finished, 1 closed at drainTimeout, 1 still running; since created: 40 finished, 3 closed, 1 still running$`)
	if !want.MatchString(drained[0]) {
		t.Errorf("drained line = %q\nwant it to match %s", drained[0], want)
	}
	// The line sits in the slots' columns: the version starts where theirs do.
	if i, j := strings.Index(drained[0], "v1"), strings.Index(lines[2], "v1"); i != j {
		t.Errorf("drained line's version at column %d, blue slot's at %d:\n%s", i, j, out.String())
	}
}
