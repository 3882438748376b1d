package cli

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/target"
)

func TestStatusTableShowsACrashLoopingReplicaWithItsRestartsAndLastExit(t *testing.T) {
	now := time.Now()
	apps := []controller.AppStatus{{
		App: "web", Listen: "127.0.0.1:8080", ActiveSlot: store.Blue, Revision: 1, Version: "v1",
		Slots: []controller.SlotStatus{{Name: store.Blue, Phase: store.SlotActive, Revision: 1, Version: "v1",
			Replicas: []target.Replica{
				{Index: 0, State: target.ReplicaRunning, Running: true},
				{Index: 1, State: target.ReplicaCrashLoopBackOff, Restarts: 5, LastExit: "exit status 3",
					LastExitAt: now.Add(-2 * time.Second), NextRestartAt: now.Add(30 * time.Second)},
			}}},
	}}
	var out strings.Builder
	printStatus(&out, apps)
	want := regexp.MustCompile(`replica 1 CrashLoopBackOff \(restarted 5×, last exit: exit status 3 \ds ago, next start in \d+s\)`)
	if !want.MatchString(out.String()) {
		t.Errorf("status table:\n%s\nwant a line matching %s", out.String(), want)
	}
	if strings.Contains(out.String(), "replica 0") {
		t.Errorf("a replica running since it started is listed:\n%s", out.String())
	}
}
