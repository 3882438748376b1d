package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// writePIDFile writes this process's PID to path, atomically (a temporary
// file renamed over it), so a reader never sees half of it. The daemon
// writes it itself rather than through tableflip, whose Ready fails on a
// full disk: a PID file that cannot be written is worth a logged error,
// not a restart that refuses to serve.
func writePIDFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write PID file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(strconv.Itoa(os.Getpid()))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write PID file %s: %w", path, err)
	}
	return nil
}
