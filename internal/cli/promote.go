package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newPromote(g *globals) *cobra.Command {
	var full bool
	cmd := &cobra.Command{
		Use:   "promote APP [--full]",
		Short: "Move the rollout on: flip a waiting blue-green rollout, or end a canary's current step",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ro, err := g.client().Promote(cmd.Context(), a[0], full)
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), ro)
			}
			what := "promoting"
			if full {
				what = "promoting to 100%"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s %s (revision %d) on slot %s\n", a[0], what, ro.Version, ro.Revision, ro.Slot)
			return nil
		},
	}
	cmd.Flags().BoolVar(&full, "full", false, "skip a canary's remaining steps and send it all traffic")
	return cmd
}
