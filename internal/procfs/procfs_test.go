package procfs

import (
	"os"
	"runtime"
	"strconv"
	"testing"
)

func TestStatGivesThisProcesssParentAndNothingForAGonePid(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	fields := Stat(os.Getpid())
	if len(fields) < 3 || fields[1] != strconv.Itoa(os.Getppid()) {
		t.Fatalf("Stat(self) = %v, want the parent %d second", fields, os.Getppid())
	}
	if got := Stat(1 << 30); got != nil {
		t.Fatalf("Stat of a pid that cannot exist = %v", got)
	}
}
