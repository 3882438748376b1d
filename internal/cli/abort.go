package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newAbort(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "abort APP",
		Short: "Stop the rollout in progress: before the flip traffic stays on the stable revision, during the bake it flips back",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ro, err := g.client().Abort(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), ro)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: rollout %d of %s (revision %d) %s: %s\n", a[0], ro.ID, ro.Version, ro.Revision, ro.Phase, ro.Message)
			return nil
		},
	}
}
