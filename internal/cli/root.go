// Package cli holds cutover's commands, one file per verb. Every verb but
// serve, validate, demo and sample-app talks to a running cutover through
// its admin API.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/config"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // a deploy failed or was rolled back, or cutover could not do what was asked
	exitUsage   = 2 // bad usage or config
)

// exitError carries an exit code up to Execute.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// errSilent marks a failure that was already reported.
var errSilent = errors.New("failed")

func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// globals are the flags every verb shares.
type globals struct {
	admin  string
	token  string
	output string
}

func (g *globals) client() *api.Client {
	return &api.Client{Base: g.admin, Token: g.token}
}

func (g *globals) json() bool { return g.output == "json" }

// Version is cutover's version; the build may set it with -ldflags "-X".
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Execute runs the command line args and returns the process exit code.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	stdout, stderr = terminalWriter{stdout}, terminalWriter{stderr}
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if !errors.Is(err, errSilent) {
		reportError(stderr, err, wantsJSON(root, args))
	}
	return exitCode(err)
}

// reportError prints err on stderr: as {"error": "..."} (one line) with
// --output json, so that scripts parse failures like results, otherwise as
// "error: ...".
func reportError(stderr io.Writer, err error, asJSON bool) {
	if asJSON {
		_ = printJSONLine(stderr, map[string]string{"error": err.Error()})
		return
	}
	fmt.Fprintln(stderr, "error:", err)
}

// wantsJSON reports whether the command line asked for --output json. The
// flag's value is used when cobra parsed it; a usage error can stop the
// parse before it (an unknown verb or an earlier unknown flag), so the
// arguments are read then.
func wantsJSON(root *cobra.Command, args []string) bool {
	if f := root.PersistentFlags().Lookup("output"); f != nil && f.Changed {
		return f.Value.String() == "json"
	}
	for i, a := range args {
		switch {
		case a == "--":
			return false
		case a == "-o" || a == "--output":
			if i+1 < len(args) && args[i+1] == "json" {
				return true
			}
		case a == "-ojson" || a == "-o=json" || a == "--output=json":
			return true
		}
	}
	return false
}

// exitCode maps an error to the process exit code.
func exitCode(err error) int {
	var ee *exitError
	var problems config.Problems
	var apiErr *api.Error
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &problems):
		return exitUsage
	case isFlagError(err), strings.HasPrefix(err.Error(), "unknown command"):
		return exitUsage
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest:
		return exitUsage // the server found the request itself wrong
	}
	return exitFailure
}

// isFlagError reports cobra's usage errors (unknown flag or verb, wrong
// argument count), which it returns as plain errors.
func isFlagError(err error) bool {
	var fe *flagError
	return errors.As(err, &fe)
}

type flagError struct{ error }

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "cutover",
		Short: "Zero-downtime blue-green deployments: the router and the rollout controller in one binary",
		Long: `cutover runs two slots of each app side by side, deploys a new version on the
idle slot, waits until it is ready and smoke-tested, then flips the router to it
in one atomic step. Rollback is the same flip back.

Start with "cutover demo", then "cutover serve -c cutover.yaml".`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &flagError{fmt.Errorf("%w (see `%s --help`)", err, c.CommandPath())}
	})
	admin := os.Getenv("CUTOVER_ADMIN")
	if admin == "" {
		admin = "http://127.0.0.1:9901"
	}
	root.PersistentFlags().StringVar(&g.admin, "admin", admin, "admin API URL of the running cutover (env CUTOVER_ADMIN)")
	root.PersistentFlags().StringVar(&g.token, "token", os.Getenv("CUTOVER_TOKEN"), "admin API bearer token (env CUTOVER_TOKEN)")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if g.output != "text" && g.output != "json" {
			return usageErrorf("--output must be text or json, not %q", g.output)
		}
		return nil
	}
	root.AddCommand(
		newServe(g), newValidate(g), newDeploy(g), newPromote(g), newAbort(g), newRollback(g),
		newStatus(g), newHistory(g), newReload(g), newVersion(g), newDemo(g), newSampleApp(),
		newSetWeight(g), newPause(g), newResume(g), newRetry(g), newUpgrade(g),
	)
	return root
}

// args wraps a cobra argument check so that its error exits 2.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("%w; usage: %s", err, cmd.UseLine())}
		}
		return nil
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
