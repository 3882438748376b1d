package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/store"
)

func newRollback(g *globals) *cobra.Command {
	var req api.RollbackRequest
	var noWait bool
	cmd := &cobra.Command{
		Use:   "rollback APP [--to-revision N] [--force]",
		Short: "Go back to the previous revision: one flip while it is warm, else a redeploy",
		Long: `Go back to the revision before the last flip, or to --to-revision N: one flip
while it is still warm on the idle slot, else a redeploy of it. Going back to
a revision older than a rollback barrier (deploy --barrier, shown in
"cutover history") is refused unless --force: the barrier's revision may
have changed what older revisions rely on, such as the database schema.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if req.ToRevision < 0 {
				return usageErrorf("--to-revision must be a revision number from `cutover history %s`", a[0])
			}
			var progress func(store.Event)
			if !noWait {
				progress = printEvent(cmd.ErrOrStderr(), g)
			}
			ro, err := g.client().Rollback(cmd.Context(), a[0], req, progress)
			if err != nil {
				return err
			}
			if ro.Phase == store.RolloutRolledBack {
				return reportRolledBack(cmd.OutOrStdout(), g, a[0], ro)
			}
			return reportRollout(cmd.OutOrStdout(), g, a[0], ro, noWait)
		},
	}
	cmd.Flags().IntVar(&req.ToRevision, "to-revision", 0, "revision number to return to (default: the one before the last flip)")
	cmd.Flags().BoolVar(&req.Force, "force", false, "roll back past a rollback barrier (see `cutover history`)")
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
