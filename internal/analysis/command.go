package analysis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"time"

	"github.com/cutover/cutover/internal/config"
)

// commandWaitDelay bounds the wait for a command's output after it exits
// or is killed, in case a child it started keeps the pipes open.
const commandWaitDelay = time.Second

// commandProvider runs an executable with no stdin.
type commandProvider struct {
	argv      []string
	dir       string
	timeout   time.Duration
	judgeExit bool
}

func newCommandProvider(p *config.CommandProvider, args map[string]string, dir string, judgeExit bool) (*commandProvider, error) {
	if len(p.Command) == 0 {
		return nil, errors.New("command provider has an empty command; give the executable and its arguments")
	}
	c := &commandProvider{argv: make([]string, len(p.Command)), dir: dir, timeout: orDefault(p.Timeout, defaultCommandTimeout), judgeExit: judgeExit}
	for i, a := range p.Command {
		var err error
		if c.argv[i], err = expandArgs(a, args); err != nil {
			return nil, fmt.Errorf("command: %w", err)
		}
	}
	return c, nil
}

// measure runs the command. Its stdout, when it is JSON, is the result;
// otherwise the result is whether it exited 0. Without conditions to judge
// it, a non-zero exit is a Failed measurement. A command that cannot start
// or times out is an error.
func (c *commandProvider) measure(ctx context.Context) (any, error) {
	runCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, c.argv[0], c.argv[1:]...)
	cmd.Dir = c.dir
	cmd.WaitDelay = commandWaitDelay
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() == nil && errors.Is(runCtx.Err(), context.DeadlineExceeded) {
		return nil, fmt.Errorf("command %q timed out after %s; raise the provider's timeout or make the command faster", c.argv[0], c.timeout)
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return nil, fmt.Errorf("run command %q: %w", c.argv[0], err)
	}
	var result any
	if out := bytes.TrimSpace(stdout.Bytes()); len(out) == 0 || json.Unmarshal(out, &result) != nil {
		result = exit == nil
	}
	if exit != nil && c.judgeExit {
		return nil, &verdict{phase: Failed, value: result, reason: fmt.Sprintf("command %q %v: %s", c.argv[0], exit, excerpt(stderr.Bytes()))}
	}
	return result, nil
}
