package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// upgradeTimeout bounds the wait for the new process: it starts the
// replicas again and waits until they are ready.
const upgradeTimeout = 3 * time.Minute

func newUpgrade(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "upgrade",
		Short: "Hand the running cutover's listeners to a new process of its binary, dropping no request",
		Long: `Start a new cutover process from the executable at the running one's path
(replace the binary first to upgrade it) and hand it the listening sockets.
The new process restarts the replicas of every app's active revision; once they
are ready it takes over and the old process drains its requests and exits.
If the new process fails, the old one goes on serving. SIGUSR2 to the process
in <data-dir>/cutover.pid does the same.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), upgradeTimeout)
			defer cancel()
			if err := postUpgrade(ctx, g); err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), map[string]bool{"upgraded": true})
			}
			fmt.Fprintln(cmd.OutOrStdout(), "upgraded: a new cutover process serves")
			return nil
		},
	}
}

// postUpgrade calls POST /v1/upgrade.
func postUpgrade(ctx context.Context, g *globals) error {
	if err := g.client().Upgrade(ctx); err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	return nil
}
