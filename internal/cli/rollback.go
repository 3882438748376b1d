package cli

import (
	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/store"
)

func newRollback(g *globals) *cobra.Command {
	var to int
	var noWait bool
	cmd := &cobra.Command{
		Use:   "rollback APP [--to-revision N]",
		Short: "Go back to the previous revision: one flip while it is warm, else a redeploy",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if to < 0 {
				return usageErrorf("--to-revision must be a revision number from `cutover history %s`", a[0])
			}
			var progress func(store.Event)
			if !noWait {
				progress = printEvent(cmd.ErrOrStderr(), g)
			}
			ro, err := g.client().Rollback(cmd.Context(), a[0], to, progress)
			if err != nil {
				return err
			}
			return reportRollout(cmd.OutOrStdout(), g, a[0], ro, noWait)
		},
	}
	cmd.Flags().IntVar(&to, "to-revision", 0, "revision number to return to (default: the one before the last flip)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the rollback has started")
	return cmd
}
