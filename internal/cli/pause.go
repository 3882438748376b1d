package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newPause(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pause APP",
		Short: "Hold a canary rollout at its current weight, a rolling one after its current step, until `cutover resume`",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ro, err := g.client().Pause(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), ro)
			}
			if ro.Strategy == "rolling" {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: rolling update %d pauses after its current step (%d/%d updated), weight %d%%\n", a[0], ro.ID, ro.StepIndex, ro.StepCount, ro.Weight)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: rollout %d pauses at step %d/%d, weight %d%%\n", a[0], ro.ID, ro.StepIndex+1, ro.StepCount, ro.Weight)
			return nil
		},
	}
}

func newResume(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "resume APP",
		Short: "Continue a paused rollout",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ro, err := g.client().Resume(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), ro)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: rollout %d resumes\n", a[0], ro.ID)
			return nil
		},
	}
}
