package cli

import (
	"fmt"
	"io"

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
			if ro.Phase == store.RolloutRolledBack {
				return reportRolledBack(cmd.OutOrStdout(), g, a[0], ro)
			}
			return reportRollout(cmd.OutOrStdout(), g, a[0], ro, noWait)
		},
	}
	cmd.Flags().IntVar(&to, "to-revision", 0, "revision number to return to (default: the one before the last flip)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the rollback has started")
	return cmd
}

// reportRolledBack reports a rollback asked for while a rollout baked: it
// flipped back and ended that rollout RolledBack, which is what was asked.
func reportRolledBack(w io.Writer, g *globals, app string, ro store.Rollout) error {
	if g.json() {
		return printJSON(w, ro)
	}
	_, err := fmt.Fprintf(w, "%s: %s\n", app, ro.Message)
	return err
}
