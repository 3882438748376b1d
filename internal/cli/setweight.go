package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

func newSetWeight(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "set-weight APP PERCENT",
		Short: "Send PERCENT (0..100) of the traffic to the canary at once",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			w, err := strconv.Atoi(a[1])
			if err != nil || w < 0 || w > 100 {
				return usageErrorf("PERCENT must be a whole number from 0 to 100, not %q", a[1])
			}
			ro, err := g.client().SetWeight(cmd.Context(), a[0], w)
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), ro)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: canary %s weight set to %d%%\n", a[0], ro.Version, w)
			return nil
		},
	}
}
