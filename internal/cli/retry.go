package cli

import (
	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/store"
)

func newRetry(g *globals) *cobra.Command {
	var noWait bool
	cmd := &cobra.Command{
		Use:   "retry APP",
		Short: "Run an aborted or failed rollout again from its first step",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var progress func(store.Event)
			if !noWait {
				progress = printEvent(cmd.ErrOrStderr(), g)
			}
			ro, err := g.client().Retry(cmd.Context(), a[0], progress)
			if err != nil {
				return err
			}
			return reportRollout(cmd.OutOrStdout(), g, a[0], ro, noWait)
		},
	}
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the rollout has started")
	return cmd
}
