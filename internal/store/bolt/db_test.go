package bolt

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/cutover/cutover/internal/store"
)

func openTemp(t *testing.T) (*DB, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, dir
}

func TestAppRoundTrips(t *testing.T) {
	db, _ := openTemp(t)
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

func TestPutAppReplacesAndAppsListsByName(t *testing.T) {
	db, _ := openTemp(t)
	for _, st := range []store.AppState{
		{App: "b", ActiveSlot: store.Blue},
		{App: "a", ActiveSlot: store.Blue},
		{App: "b", ActiveSlot: store.Green},
	} {
		if err := db.PutApp(st); err != nil {
			t.Fatal(err)
		}
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
}

func TestEmptyAppNameIsRejected(t *testing.T) {
	db, _ := openTemp(t)
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

func TestRevisionsAreNumberedPerApp(t *testing.T) {
	db, _ := openTemp(t)
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

func TestRevisionsOrderNumericallyPastTheFirstByte(t *testing.T) {
	db, _ := openTemp(t)
	for i := range 300 {
		if _, err := db.AddRevision(store.Revision{App: "web", Version: fmt.Sprint(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	revs, err := db.Revisions("web")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range revs {
		if r.Number != i+1 || r.Version != fmt.Sprint(i+1) {
			t.Fatalf("Revisions(web)[%d] = %d:%s, want %d", i, r.Number, r.Version, i+1)
		}
	}
	if len(revs) != 300 {
		t.Errorf("got %d revisions, want 300", len(revs))
	}
}

func TestEventsReturnsTheLastLimitInOrder(t *testing.T) {
	db, _ := openTemp(t)
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
	reasons := func(limit int) []string {
		t.Helper()
		evs, err := db.Events("web", limit)
		if err != nil {
			t.Fatal(err)
		}
		var rs []string
		for _, e := range evs {
			rs = append(rs, e.Reason)
		}
		return rs
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
		if got := reasons(tc.limit); !slices.Equal(got, tc.want) {
			t.Errorf("Events(web, %d) = %v, want %v", tc.limit, got, tc.want)
		}
	}
	if evs, err := db.Events("nobody", 10); len(evs) != 0 || err != nil {
		t.Errorf("Events(nobody) = %v, %v; want none", evs, err)
	}
}

func TestAppendEventKeepsAGivenTime(t *testing.T) {
	db, _ := openTemp(t)
	at := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	if _, err := db.AppendEvent(store.Event{App: "web", Time: at}); err != nil {
		t.Fatal(err)
	}
	evs, err := db.Events("web", 1)
	if err != nil || len(evs) != 1 || !evs[0].Time.Equal(at) {
		t.Errorf("Events(web, 1) = %v, %v; want one event at %v", evs, err, at)
	}
}

func TestNextRolloutIDIsUniqueAcrossReopen(t *testing.T) {
	db, dir := openTemp(t)
	seen := map[int64]bool{}
	next := func(db *DB) {
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
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	next(db2)
}

func TestReopenAfterCloseKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	writeSample(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkSample(t, db)
	if rev, err := db.AddRevision(store.Revision{App: "web", Version: "v3"}); err != nil || rev.Number != 3 {
		t.Errorf("AddRevision after reopen = %d, %v; want number 3", rev.Number, err)
	}
	if ev, err := db.AppendEvent(store.Event{App: "web", Reason: "After"}); err != nil || ev.Seq != 3 {
		t.Errorf("AppendEvent after reopen = seq %d, %v; want 3", ev.Seq, err)
	}
}

func TestSecondOpenOfSameDirFailsWithErrLocked(t *testing.T) {
	_, dir := openTemp(t)
	db2, err := Open(dir)
	if err == nil {
		db2.Close()
		t.Fatal("second Open of the same dir succeeded, want ErrLocked")
	}
	if !errors.Is(err, ErrLocked) {
		t.Errorf("second Open error = %v, want it to wrap ErrLocked", err)
	}
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "in use by another cutover process") {
		t.Errorf("error %q should name the dir %s and say it is in use", err, dir)
	}
}

// childEnv makes the test binary act as a writer process for
// TestRecordsSurviveSIGKILLOfWriter instead of running tests.
const childEnv = "CUTOVER_BOLT_TEST_WRITER_DIR"

// TestMain runs the writer child when childEnv is set.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(runWriter(dir))
	}
	os.Exit(m.Run())
}

// runWriter writes the sample records, says "written" and then waits to be
// killed while holding the store open. It gives up after a minute so an
// orphan cannot linger.
func runWriter(dir string) int {
	db, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := writeRecords(db); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("written")
	time.Sleep(time.Minute)
	return 1
}

func TestRecordsSurviveSIGKILLOfWriter(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		s.Scan()
		line <- s.Text()
	}()
	select {
	case l := <-line:
		if l != "written" {
			t.Fatalf("writer printed %q, want \"written\"; stderr: %s", l, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("writer did not report within 20s; stderr: %s", stderr.String())
	}

	// While the writer lives, its flock keeps this process out.
	if db, err := Open(dir); !errors.Is(err, ErrLocked) {
		if err == nil {
			db.Close()
		}
		t.Fatalf("Open while another process holds the dir: err = %v, want ErrLocked", err)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("writer exited cleanly, want it killed")
	}

	db, err := Open(dir)
	if err != nil {
		t.Fatalf("Open after the writer was killed: %v", err)
	}
	defer db.Close()
	checkSample(t, db)
}

func writeSample(t *testing.T, db *DB) {
	t.Helper()
	if err := writeRecords(db); err != nil {
		t.Fatal(err)
	}
}

// writeRecords writes one record of every kind; checkSample reads them back.
func writeRecords(db *DB) error {
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

func checkSample(t *testing.T, db *DB) {
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

func TestDrainRecordAndTotalsRoundTrip(t *testing.T) {
	db, _ := openTemp(t)
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

func TestAppRecordedBeforeDrainsWereKeptReadsAsNeverDrained(t *testing.T) {
	db, _ := openTemp(t)
	old := `{"app":"web","activeSlot":"blue","slots":{"blue":{"revision":1,"phase":"active"}},"previousRevision":0}`
	if err := db.bolt.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketApps).Put([]byte("web"), []byte(old)) }); err != nil {
		t.Fatal(err)
	}
	got, found, err := db.App("web")
	if err != nil || !found {
		t.Fatalf("App(web) = found %v, err %v", found, err)
	}
	if got.LastDrain != nil || got.Drained != (store.DrainTotals{}) || got.Slots[store.Blue].Revision != 1 {
		t.Errorf("App(web) = %+v; want the old record with no drain and zero totals", got)
	}
	// Written back without a drain, the record gains no drain fields.
	if err := db.PutApp(got); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	_ = db.bolt.View(func(tx *bbolt.Tx) error { raw = slices.Clone(tx.Bucket(bucketApps).Get([]byte("web"))); return nil })
	if s := string(raw); strings.Contains(s, "drain") || strings.Contains(s, "Drain") {
		t.Errorf("a never-drained app was stored as %s; want no drain fields", s)
	}
}
