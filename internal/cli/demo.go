package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/demo"
)

func newDemo(g *globals) *cobra.Command {
	var opts demo.Options
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a sample app, deploy v2 under load, roll back, and report what the clients saw",
		Long: `Start cutover with the bundled sample app (2 replicas of v1), run a bounded
keep-alive load against it, deploy v2 (a flip to the green slot), roll back (a
flip back), and print how many requests were sent, how many failed and which
versions answered. Everything runs on 127.0.0.1 and stops by itself.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the cutover binary for the sample app: %w", err)
			}
			opts.Exe, opts.Out = exe, cmd.OutOrStdout()
			rep, err := demo.Run(cmd.Context(), opts)
			if g.json() {
				if perr := printJSON(cmd.OutOrStdout(), rep); perr != nil {
					return perr
				}
			}
			return err
		},
	}
	cmd.Flags().IntVar(&opts.Workers, "clients", 8, "concurrent keep-alive clients")
	cmd.Flags().BoolVar(&opts.KeepDir, "keep", false, "keep the demo's config, state and logs")
	return cmd
}
