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
	"github.com/cutover/cutover/internal/store/storetest"
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

func TestStoreBehaviour(t *testing.T) {
	storetest.Run(t, storetest.Backend{Open: func(t *testing.T) (storetest.Store, func() storetest.Store) {
		db, dir := openTemp(t)
		return db, func() storetest.Store {
			t.Helper()
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db2, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db2.Close() })
			return db2
		}
	}})
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
	if err := storetest.WriteRecords(db); err != nil {
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
	storetest.CheckRecords(t, db)
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
