package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/config"
)

func newValidate(g *globals) *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "validate -c cutover.yaml",
		Short: "Check a config file like nginx -t: every problem with file:line and what to write instead",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), map[string]any{"file": cfgPath, "valid": true, "apps": len(cfg.Apps)})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d app(s))\n", cfgPath, len(cfg.Apps))
			return nil
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "cutover.yaml", "config file")
	return cmd
}
