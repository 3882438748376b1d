package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
)

// promoteWait bounds the wait for a promotion to take effect. A gate
// (confirmPromotion) or hooks may hold it longer; promote then shows the
// state at that moment.
const promoteWait = 30 * time.Second

func newPromote(g *globals) *cobra.Command {
	var full bool
	cmd := &cobra.Command{
		Use:   "promote APP [--full]",
		Short: "Move the rollout on: flip a waiting blue-green rollout, or end a canary's current step",
		Long: `Move the rollout on: a blue-green rollout waiting for promotion flips, and one
paused after the flip by an inconclusive post-promotion analysis accepts it; a
canary ends its current step (--full: skips to 100%). Promote returns once that took
effect (at most 30s) and shows the rollout as it is then.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c := g.client()
			before, err := c.Promote(cmd.Context(), a[0], full)
			if err != nil {
				return err
			}
			ro, err := awaitPromotion(cmd.Context(), c, a[0], before, full)
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), ro)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: promoted %s (revision %d) on slot %s: %s\n", a[0], ro.Version, ro.Revision, ro.Slot, describeRollout(ro))
			return nil
		},
	}
	cmd.Flags().BoolVar(&full, "full", false, "skip a canary's remaining steps and send it all traffic")
	return cmd
}

// awaitPromotion polls app's status until the promotion of before took
// effect (or promoteWait passed) and returns the rollout as it is then.
func awaitPromotion(ctx context.Context, c *api.Client, app string, before store.Rollout, full bool) (store.Rollout, error) {
	ctx, cancel := context.WithTimeout(ctx, promoteWait)
	defer cancel()
	for {
		st, err := c.Status(ctx, app)
		switch {
		case err != nil && ctx.Err() != nil:
			return before, nil
		case err != nil:
			return before, err
		case st.Rollout == nil:
			return before, nil
		case promoted(before, st, full) || ctx.Err() != nil:
			return *st.Rollout, nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// promoted reports whether st shows the promotion of before done: the
// rollout ended or was replaced, a canary moved past its step, or the new
// revision serves (a blue-green flip, a canary's full promotion) and the
// rollout no longer waits for a human (an inconclusive post-promotion
// analysis accepted).
func promoted(before store.Rollout, st controller.AppStatus, full bool) bool {
	ro := st.Rollout
	switch {
	case ro.ID != before.ID || ro.Done():
		return true
	case before.Strategy == "canary" && !full:
		return ro.StepIndex > before.StepIndex
	default:
		return st.Revision == before.Revision && ro.Phase != store.RolloutPaused
	}
}

// describeRollout says where a rollout is, in a few words.
func describeRollout(ro store.Rollout) string {
	if ro.Strategy == "canary" && !ro.Done() {
		return fmt.Sprintf("%s, step %d/%d, weight %d%%", ro.Phase, ro.StepIndex+1, ro.StepCount, ro.Weight)
	}
	if ro.Step != "" && !ro.Done() {
		return fmt.Sprintf("%s, %s", ro.Phase, ro.Step)
	}
	return ro.Phase
}
