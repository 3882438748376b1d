package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newPromote(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "promote APP",
		Short: "Let a rollout that waits for promotion flip the traffic",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ro, err := g.client().Promote(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), ro)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: promoting %s (revision %d) on slot %s\n", a[0], ro.Version, ro.Revision, ro.Slot)
			return nil
		},
	}
}
