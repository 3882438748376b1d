package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newReload(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Re-read the config file of the running cutover (an invalid one is refused)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.client().Reload(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "config reloaded")
			return nil
		},
	}
}
