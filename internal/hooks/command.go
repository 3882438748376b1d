package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/config"
)

const (
	// defaultCommandTimeout applies when Hook.Timeout is zero.
	defaultCommandTimeout = 60 * time.Second
	// outputLines is how many lines of a failed command's output its
	// error shows.
	outputLines = 5
	// outputKeep bounds the output kept in memory; only its end is shown.
	outputKeep = 8 << 10
	// pipeGrace is how long Wait waits for the output pipe to close after
	// the command ends, in case something it started outside its process
	// group still holds it.
	pipeGrace = 2 * time.Second
)

// runCommand runs a command hook with body on stdin.
func runCommand(ctx context.Context, h config.Hook, info Info, body []byte) error {
	timeout := h.Timeout.D()
	if timeout <= 0 {
		timeout = defaultCommandTimeout
	}
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	out := &tail{max: outputKeep}
	declared := &barrierLines{}
	cmd := exec.CommandContext(runCtx, h.Command[0], h.Command[1:]...)
	cmd.Dir = info.Dir
	cmd.Env = append(os.Environ(),
		"CUTOVER_HOOK="+info.Point,
		"CUTOVER_APP="+info.App,
		"CUTOVER_VERSION="+info.Version,
		"CUTOVER_REVISION="+strconv.Itoa(info.Revision),
	)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Stdout = out
	cmd.Stderr = out
	if info.OnBarrier != nil {
		// Two writers: exec copies stdout and stderr in goroutines of
		// their own, which tail's lock serializes.
		cmd.Stdout = io.MultiWriter(out, declared)
	}
	// A group of its own lets a timeout kill everything the hook started,
	// such as the children of `sh -c`, not just the shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = pipeGrace

	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %q: %w; check that the program exists and is executable, and that it is on PATH or given by its path (a relative path starts from the hook's directory %q)", h.Command[0], err, info.Dir)
	}
	err := cmd.Wait()
	if info.OnBarrier != nil {
		for _, reason := range declared.reasons() {
			info.OnBarrier(reason)
		}
	}
	// Members of the group that outlive a successful command would run
	// unsupervised; end them too. ESRCH (nothing left) is the usual case.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if err == nil || errors.Is(err, exec.ErrWaitDelay) {
		// ErrWaitDelay: the command itself succeeded, but something it
		// started elsewhere held its output open.
		return nil
	}

	var msg string
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("command %q stopped: %w", shortCommand(h.Command), context.Cause(ctx))
	case runCtx.Err() != nil:
		msg = fmt.Sprintf("command %q timed out after %s and was killed; make it finish sooner or raise the hook's timeout", shortCommand(h.Command), timeout)
	case errors.As(err, &exitErr):
		msg = fmt.Sprintf("command %q failed with %s; fix the cause it reports, then deploy again", shortCommand(h.Command), exitErr)
	default:
		msg = fmt.Sprintf("command %q: %v", shortCommand(h.Command), err)
	}
	if lines := out.lastLines(outputLines); lines != "" {
		msg += "; last output:\n" + lines
	}
	return errors.New(msg)
}

// tail is an io.Writer that keeps only the last max bytes written to it.
// It is safe for concurrent use.
type tail struct {
	max int
	mu  sync.Mutex
	buf []byte
}

// Write keeps the end of p.
func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

// lastLines returns the last n lines kept, each indented, without
// trailing blank lines.
func (t *tail) lastLines(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimRight(string(t.buf), "\r\n\t ")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		lines[i] = "  " + strings.TrimRight(l, "\r")
	}
	return strings.Join(lines, "\n")
}

// maxLine bounds what barrierLines keeps of one line; the rest of a
// longer line is dropped.
const maxLine = 4 << 10

// barrierLines is an io.Writer that picks the BarrierPrefix lines out of a
// command's standard output.
type barrierLines struct {
	line     []byte // the line being written, at most maxLine bytes of it
	declared []string
}

// Write looks at p line by line. exec calls it from one goroutine.
func (b *barrierLines) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		b.line = append(b.line, chunk[:min(len(chunk), maxLine-len(b.line))]...)
		if i < 0 {
			break
		}
		b.endLine()
		p = p[i+1:]
	}
	return n, nil
}

func (b *barrierLines) endLine() {
	line := strings.TrimSpace(string(b.line))
	b.line = b.line[:0]
	if reason, ok := strings.CutPrefix(line, BarrierPrefix); ok {
		b.declared = append(b.declared, strings.TrimSpace(reason))
	}
}

// reasons returns the reasons declared, the last line's too when the
// output did not end with a newline.
func (b *barrierLines) reasons() []string {
	if len(b.line) > 0 {
		b.endLine()
	}
	return b.declared
}

// shortCommand is argv as one line for messages, cut at 60 characters.
func shortCommand(argv []string) string {
	s := strings.Join(argv, " ")
	if r := []rune(s); len(r) > 60 {
		s = string(r[:60]) + "…"
	}
	return s
}
