package cli

import (
	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/sampleapp"
)

func newSampleApp() *cobra.Command {
	return &cobra.Command{
		Use:   "sample-app [--version V] [--addr HOST:PORT] [--fail-rate F] [--latency D] ...",
		Short: "Run the bundled sample HTTP app (used by the demo, the tests and the benchmarks)",
		Long: `Run the bundled sample app. It listens on --addr (default 127.0.0.1:$PORT),
answers "version=V" on /, "ok" on /health, sleeps on /sleep?d=3s, and its failure
rate, latency and readiness can be switched at runtime with
POST /admin/fail-rate?value=0.5, /admin/latency?value=200ms, /admin/ready?value=false.
Run "cutover sample-app -h" for its flags.`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, a []string) error {
			if code := sampleapp.Main(cmd.Context(), a, cmd.OutOrStdout(), cmd.ErrOrStderr()); code != 0 {
				return &exitError{code: code, err: errSilent}
			}
			return nil
		},
	}
}
