// Package storetest is the behaviour every cutover store has, as one
// suite that each store's tests run on their own store: bolt's on a file,
// kube's on a real API server.
package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
)

// Store is what the suite tests: the controller's store, and Apps.
type Store interface {
	controller.Store
	Apps() ([]store.AppState, error)
}

// Backend opens the stores the suite tests.
type Backend struct {
	// Open returns a new, empty store, which it closes in t.Cleanup, and
	// reopen, which closes that store and opens the same one again.
	Open func(t *testing.T) (s Store, reopen func() Store)
	// MaxRevisions is how many revisions of an app the store keeps; 0
	// means all of them.
	MaxRevisions int
}

// Run runs the suite, one subtest per behaviour.
func Run(t *testing.T, b Backend) {
	for _, tc := range []struct {
		name string
		test func(t *testing.T, b Backend)
	}{
		{"AppRoundTrips", appRoundTrips},
		{"PutAppReplacesAndAppsListsByName", putAppReplacesAndAppsListsByName},
		{"EmptyAppNameIsRejected", emptyAppNameIsRejected},
		{"RevisionsAreNumberedPerApp", revisionsAreNumberedPerApp},
		{"RevisionsOrderNumerically", revisionsOrderNumerically},
		{"EventsReturnsTheLastLimitInOrder", eventsReturnsTheLastLimitInOrder},
		{"AppendEventKeepsAGivenTime", appendEventKeepsAGivenTime},
		{"NextRolloutIDIsUniqueAcrossReopen", nextRolloutIDIsUniqueAcrossReopen},
		{"ReopenKeepsEverything", reopenKeepsEverything},
		{"DrainRecordAndTotalsRoundTrip", drainRecordAndTotalsRoundTrip},
		{"BarriersRoundTrip", barriersRoundTrip},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, b) })
	}
}

func appRoundTrips(t *testing.T, b Backend) {
	db, _ := b.Open(t)
	want := store.AppState{
		App:        "web",
		ActiveSlot: store.Blue,
		Slots: map[string]store.SlotState{
			store.Blue:  {Revision: 1, Phase: store.SlotActive},
			store.Green: {Revision: 2, Phase: store.SlotWarm, WarmUntil: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
		},
		Rollout: &store.Rollout{ID: 7, Revision: 2, Version: "v2", Slot: store.Green, Phase: store.RolloutPaused},
	}
	if err := db.PutApp(want); err != nil {
		t.Fatal(err)
	}
	got, found, err := db.App("web")
	if err != nil || !found {
		t.Fatalf("App(web) = found %v, err %v; want found", found, err)
	}
	if got.ActiveSlot != want.ActiveSlot || got.Slots[store.Green] != want.Slots[store.Green] ||
		got.Rollout == nil || *got.Rollout != *want.Rollout {
		t.Errorf("App(web) = %+v, want %+v", got, want)
	}
	if _, found, err := db.App("missing"); found || err != nil {
		t.Errorf("App(missing) = found %v, err %v; want not found and no error", found, err)
	}
}

func putAppReplacesAndAppsListsByName(t *testing.T, b Backend) {
	db, _ := b.Open(t)
	for _, st := range []store.AppState{
		{App: "b", ActiveSlot: store.Blue},
		{App: "a", ActiveSlot: store.Blue},
		{App: "b", ActiveSlot: store.Green},
	} {
		if err := db.PutApp(st); err != nil {
			t.Fatal(err)
		}
	}
	// An app with a revision but no state yet is not listed.
	if _, err := db.AddRevision(store.Revision{App: "c", Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	apps, err := db.Apps()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range apps {
		got = append(got, a.App+"="+a.ActiveSlot)
	}
	if want := []string{"a=blue", "b=green"}; !slices.Equal(got, want) {
		t.Errorf("Apps() = %v, want %v", got, want)
	}
	if _, found, err := db.App("c"); found || err != nil {
		t.Errorf("App(c) = found %v, err %v; want not found: only a revision was stored", found, err)
	}
}

func emptyAppNameIsRejected(t *testing.T, b Backend) {
	db, _ := b.Open(t)
	if err := db.PutApp(store.AppState{}); err == nil {
		t.Error("PutApp with empty name succeeded")
	}
	if _, err := db.AddRevision(store.Revision{}); err == nil {
		t.Error("AddRevision with empty app succeeded")
	}
	if _, err := db.AppendEvent(store.Event{}); err == nil {
		t.Error("AppendEvent with empty app succeeded")
	}
}

func revisionsAreNumberedPerApp(t *testing.T, b Backend) {
	db, _ := b.Open(t)
	add := func(app, version string) store.Revision {
		t.Helper()
		rev, err := db.AddRevision(store.Revision{App: app, Version: version, Cause: "deploy", Number: 99})
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	if r := add("web", "v1"); r.Number != 1 || r.CreatedAt.IsZero() {
		t.Errorf("first revision of web = %+v, want number 1 with CreatedAt set", r)
	}
	if r := add("api", "a1"); r.Number != 1 {
		t.Errorf("first revision of api has number %d, want 1", r.Number)
	}
	if r := add("web", "v2"); r.Number != 2 {
		t.Errorf("second revision of web has number %d, want 2", r.Number)
	}

	got, found, err := db.Revision("web", 2)
	if err != nil || !found || got.Version != "v2" || got.Number != 2 || got.Cause != "deploy" {
		t.Errorf("Revision(web, 2) = %+v, %v, %v; want v2", got, found, err)
	}
	for _, n := range []int{0, 3, -1} {
		if _, found, err := db.Revision("web", n); found || err != nil {
			t.Errorf("Revision(web, %d) = found %v, err %v; want not found", n, found, err)
		}
	}
	if _, found, err := db.Revision("nope", 1); found || err != nil {
		t.Errorf("Revision(nope, 1) = found %v, err %v; want not found", found, err)
	}

	revs, err := db.Revisions("web")
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	for _, r := range revs {
		versions = append(versions, fmt.Sprintf("%d:%s", r.Number, r.Version))
	}
	if want := []string{"1:v1", "2:v2"}; !slices.Equal(versions, want) {
		t.Errorf("Revisions(web) = %v, want %v", versions, want)
	}
}

// revisionsOrderNumerically adds 300 revisions: past 255 (a key's first
// byte) and past a bound on what the store keeps, if it has one.
func revisionsOrderNumerically(t *testing.T, b Backend) {
	db, _ := b.Open(t)
	const added = 300
	for i := range added {
		if _, err := db.AddRevision(store.Revision{App: "web", Version: fmt.Sprint(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	revs, err := db.Revisions("web")
	if err != nil {
		t.Fatal(err)
	}
	kept := added
	if b.MaxRevisions > 0 {
		kept = min(added, b.MaxRevisions)
	}
	if len(revs) != kept {
		t.Fatalf("got %d revisions, want %d", len(revs), kept)
	}
	first := added - kept + 1
	for i, r := range revs {
		if r.Number != first+i || r.Version != fmt.Sprint(first+i) {
			t.Fatalf("Revisions(web)[%d] = %d:%s, want %d", i, r.Number, r.Version, first+i)
		}
	}
	if rev, err := db.AddRevision(store.Revision{App: "web", Version: "next"}); err != nil || rev.Number != added+1 {
		t.Errorf("AddRevision after %d = %d, %v; want number %d", added, rev.Number, err, added+1)
	}
}

func eventsReturnsTheLastLimitInOrder(t *testing.T, b Backend) {
	db, _ := b.Open(t)
	for i := range 5 {
		ev, err := db.AppendEvent(store.Event{App: "web", Type: "Normal", Reason: fmt.Sprint("R", i)})
		if err != nil {
			t.Fatal(err)
		}
		if ev.Seq != uint64(i+1) || ev.Time.IsZero() {
			t.Errorf("event %d stored as seq %d time %v, want seq %d and a time", i, ev.Seq, ev.Time, i+1)
		}
	}
	if _, err := db.AppendEvent(store.Event{App: "other", Reason: "X"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		limit int
		want  []string
	}{
		{2, []string{"R3", "R4"}},
		{5, []string{"R0", "R1", "R2", "R3", "R4"}},
		{50, []string{"R0", "R1", "R2", "R3", "R4"}},
		{0, []string{"R0", "R1", "R2", "R3", "R4"}},
		{-1, []string{"R0", "R1", "R2", "R3", "R4"}},
	} {
		if got := Reasons(t, db, "web", tc.limit); !slices.Equal(got, tc.want) {
			t.Errorf("Events(web, %d) = %v, want %v", tc.limit, got, tc.want)
		}
	}
	if evs, err := db.Events("nobody", 10); len(evs) != 0 || err != nil {
		t.Errorf("Events(nobody) = %v, %v; want none", evs, err)
	}
}

// Reasons returns the reasons of app's last limit events.
func Reasons(t *testing.T, db Store, app string, limit int) []string {
	t.Helper()
	evs, err := db.Events(app, limit)
	if err != nil {
		t.Fatal(err)
	}
	var rs []string
	for _, e := range evs {
		rs = append(rs, e.Reason)
	}
	return rs
}

func appendEventKeepsAGivenTime(t *testing.T, b Backend) {
	db, _ := b.Open(t)
	at := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	if _, err := db.AppendEvent(store.Event{App: "web", Time: at}); err != nil {
		t.Fatal(err)
	}
	evs, err := db.Events("web", 1)
	if err != nil || len(evs) != 1 || !evs[0].Time.Equal(at) {
		t.Errorf("Events(web, 1) = %v, %v; want one event at %v", evs, err, at)
	}
}

func nextRolloutIDIsUniqueAcrossReopen(t *testing.T, b Backend) {
	db, reopen := b.Open(t)
	seen := map[int64]bool{}
	next := func(db Store) {
		t.Helper()
		id, err := db.NextRolloutID()
		if err != nil {
			t.Fatal(err)
		}
		if id <= 0 || seen[id] {
			t.Fatalf("NextRolloutID() = %d, already seen or not positive (seen %v)", id, seen)
		}
		seen[id] = true
	}
	next(db)
	next(db)
	next(reopen())
}

func reopenKeepsEverything(t *testing.T, b Backend) {
	db, reopen := b.Open(t)
	if err := WriteRecords(db); err != nil {
		t.Fatal(err)
	}
	db = reopen()
	CheckRecords(t, db)
	if rev, err := db.AddRevision(store.Revision{App: "web", Version: "v3"}); err != nil || rev.Number != 3 {
		t.Errorf("AddRevision after reopen = %d, %v; want number 3", rev.Number, err)
	}
	if ev, err := db.AppendEvent(store.Event{App: "web", Reason: "After"}); err != nil || ev.Seq != 3 {
		t.Errorf("AppendEvent after reopen = seq %d, %v; want 3", ev.Seq, err)
	}
}

// WriteRecords writes one record of every kind to an empty store;
// CheckRecords reads them back.
func WriteRecords(db Store) error {
	if err := db.PutApp(store.AppState{App: "web", ActiveSlot: store.Green}); err != nil {
		return err
	}
	for _, v := range []string{"v1", "v2"} {
		if _, err := db.AddRevision(store.Revision{App: "web", Version: v}); err != nil {
			return err
		}
	}
	for _, r := range []string{"DeployStarted", "Promoted"} {
		if _, err := db.AppendEvent(store.Event{App: "web", Reason: r}); err != nil {
			return err
		}
	}
	_, err := db.NextRolloutID()
	return err
}

// CheckRecords checks that db holds what WriteRecords wrote.
func CheckRecords(t *testing.T, db Store) {
	t.Helper()
	st, found, err := db.App("web")
	if err != nil || !found || st.ActiveSlot != store.Green {
		t.Errorf("App(web) = %+v, %v, %v; want active slot green", st, found, err)
	}
	revs, err := db.Revisions("web")
	if err != nil || len(revs) != 2 || revs[1].Version != "v2" {
		t.Errorf("Revisions(web) = %+v, %v; want v1 and v2", revs, err)
	}
	evs, err := db.Events("web", 0)
	if err != nil || len(evs) != 2 || evs[1].Reason != "Promoted" || evs[1].Seq != 2 {
		t.Errorf("Events(web) = %+v, %v; want DeployStarted, Promoted", evs, err)
	}
	if id, err := db.NextRolloutID(); err != nil || id != 2 {
		t.Errorf("NextRolloutID() = %d, %v; want 2 after one id was handed out", id, err)
	}
}

func drainRecordAndTotalsRoundTrip(t *testing.T, b Backend) {
	db, _ := b.Open(t)
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	d := store.Drain{Slot: store.Blue, Revision: 1, Version: "v1", Rollout: 2, StartedAt: at, EndedAt: at.Add(30 * time.Second),
		InFlight: 5, LongLived: 2, Finished: 3, Closed: 1, Unfinished: 1}
	want := store.AppState{App: "web", ActiveSlot: store.Green, Slots: map[string]store.SlotState{},
		LastDrain: &d, Drained: store.DrainTotals{Finished: 40, Closed: 3, Unfinished: 1}}
	if err := db.PutApp(want); err != nil {
		t.Fatal(err)
	}
	got, _, err := db.App("web")
	if err != nil {
		t.Fatal(err)
	}
	if got.LastDrain == nil || *got.LastDrain != d || got.Drained != want.Drained {
		t.Errorf("App(web) drain = %+v, totals %+v; want %+v, %+v", got.LastDrain, got.Drained, d, want.Drained)
	}
}

// barriersRoundTrip: a revision's rollback barrier and the barriers hooks
// declared in the app's state are kept, across a reopen too.
func barriersRoundTrip(t *testing.T, b Backend) {
	db, reopen := b.Open(t)
	for _, rev := range []store.Revision{{App: "web", Version: "v1"}, {App: "web", Version: "v2", Barrier: "schema v42 — drops column «name»"}} {
		if _, err := db.AddRevision(rev); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PutApp(store.AppState{App: "web", Slots: map[string]store.SlotState{}, Barriers: map[int]string{1: "from a hook"}}); err != nil {
		t.Fatal(err)
	}
	check := func(db Store, when string) {
		t.Helper()
		if rev, found, err := db.Revision("web", 2); err != nil || !found || rev.Barrier != "schema v42 — drops column «name»" {
			t.Errorf("%s: Revision(web, 2) = %+v, %v, %v; want its barrier", when, rev, found, err)
		}
		if revs, err := db.Revisions("web"); err != nil || len(revs) != 2 || revs[0].Barrier != "" || revs[1].Barrier == "" {
			t.Errorf("%s: Revisions(web) = %+v, %v; want the barrier on revision 2 only", when, revs, err)
		}
		if st, _, err := db.App("web"); err != nil || st.Barriers[1] != "from a hook" || len(st.Barriers) != 1 {
			t.Errorf("%s: App(web).Barriers = %v, %v; want {1: from a hook}", when, st.Barriers, err)
		}
	}
	check(db, "written")
	check(reopen(), "reopened")
}
