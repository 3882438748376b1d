package bolt

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/cutover/cutover/internal/store"
)

// Opening a store that is already set up writes nothing to it, so that
// cutover restarts and serves on a full disk.
func TestOpenOfAnExistingStoreWritesNothing(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutApp(store.AppState{App: "web", ActiveSlot: store.Blue}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileName)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st, ok, err := db.App("web"); err != nil || !ok || st.ActiveSlot != store.Blue {
		t.Fatalf("App(web) = %+v, %v, %v after reopening", st, ok, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("opening the store changed its file")
	}
}
