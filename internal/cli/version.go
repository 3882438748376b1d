package cli

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/spf13/cobra"
)

func newVersion(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print cutover's version (and the running server's, if reachable)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 500*time.Millisecond)
			defer cancel()
			server, err := g.client().Version(ctx)
			if g.json() {
				out := map[string]string{"client": version(), "go": runtime.Version()}
				if err == nil {
					out["server"] = server
				}
				return printJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cutover %s (%s)\n", version(), runtime.Version())
			if err == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "server at %s: %s\n", g.admin, server)
			}
			return nil
		},
	}
}
