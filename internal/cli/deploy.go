package cli

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/shlex"
	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/imageref"
	"github.com/cutover/cutover/internal/store"
)

func newDeploy(g *globals) *cobra.Command {
	var req controller.DeployRequest
	var command, image string
	var noWait bool
	cmd := &cobra.Command{
		Use:   "deploy APP --version V [--command \"...\" | --upstream URL ... | --image [CONTAINER=]IMAGE]",
		Short: "Deploy a version to the idle slot and flip to it once it is ready",
		Long: `Deploy V to APP's idle slot, wait until every replica is ready, run the smoke
checks, flip (automatically, or after "cutover promote"), drain the old slot
while V bakes (bakeTime). --command is split as a shell splits words; ${PORT}
and ${VERSION} are replaced. --image (Kubernetes) runs IMAGE in the pod
template's container CONTAINER (default: its first); --version then defaults
to the image's tag. Exit 0 when V serves all traffic and has baked, 1
when the deploy failed (traffic never moved) or V failed while baking and the
traffic went back to the previous version. With strategy recreate the
previous version stops before V starts; the gap is reported. With strategy
rolling V's replicas replace the previous version's a few at a time.

--barrier REASON marks the new revision as a rollback barrier (a schema
migration that older versions cannot run on): "cutover rollback" to an older
revision is refused unless --force, and if V fails after it got the traffic
the rollout pauses for a human instead of flipping back.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if image != "" {
				img, err := imageref.Parse(image)
				if err != nil {
					return usageErrorf("--image: %v", err)
				}
				if req.Version == "" && img.Tag() == "" {
					return usageErrorf("--image %s has no tag to take the version from; give --version too", img.Ref)
				}
				req.Image, req.Version = image, cmp.Or(req.Version, img.Tag())
			}
			if req.Version == "" {
				return usageErrorf("--version is required, such as --version v2")
			}
			if command != "" {
				words, err := shlex.Split(command)
				if err != nil || len(words) == 0 {
					return usageErrorf("--command %q cannot be split into words: %v", command, err)
				}
				req.Command = words
			}
			var progress func(store.Event)
			if !noWait {
				progress = printEvent(cmd.ErrOrStderr(), g)
			}
			ro, err := g.client().Deploy(cmd.Context(), a[0], req, progress)
			if err != nil {
				return err
			}
			return reportRollout(cmd.OutOrStdout(), g, a[0], ro, noWait)
		},
	}
	cmd.Flags().StringVar(&req.Version, "version", "", "version label of the new revision (required)")
	cmd.Flags().StringVar(&command, "command", "", "replica command for a process target (default: the config's)")
	cmd.Flags().StringArrayVar(&req.Upstreams, "upstream", nil, "endpoint URL for a static target (repeat for several)")
	cmd.Flags().StringVar(&image, "image", "", "container image for a kubernetes target, as IMAGE or CONTAINER=IMAGE (default: the template's); --version defaults to its tag")
	cmd.Flags().StringVar(&req.Barrier, "barrier", "", "mark the new revision as a rollback barrier, and say why (\"schema v42\"): rolling back past it needs `rollback --force`")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the rollout has started")
	return cmd
}

// printEvent returns a progress printer: one line per event in text mode,
// one JSON object per line with --output json.
func printEvent(w io.Writer, g *globals) func(store.Event) {
	return func(ev store.Event) {
		if g.json() {
			_ = printJSONLine(w, ev)
			return
		}
		fmt.Fprintf(w, "%s  %-18s %s\n", ev.Time.Local().Format("15:04:05.000"), ev.Reason, ev.Message)
	}
}

// downtime says how long a recreate rollout left the app without a serving
// replica; "" when it left none.
func downtime(ro store.Rollout) string {
	if ro.DowntimeMs <= 0 {
		return ""
	}
	return fmt.Sprintf(" (recreate: %s without a serving replica)", time.Duration(ro.DowntimeMs)*time.Millisecond)
}

// reportRollout prints a rollout's outcome and turns a failed one into exit 1.
func reportRollout(w io.Writer, g *globals, app string, ro store.Rollout, started bool) error {
	if g.json() {
		if err := printJSON(w, ro); err != nil {
			return err
		}
	} else if started {
		fmt.Fprintf(w, "rollout %d of %s started: %s (revision %d) to slot %s; follow it with `cutover status %s --watch`\n",
			ro.ID, app, ro.Version, ro.Revision, ro.Slot, app)
	} else {
		fmt.Fprintf(w, "%s: %s (revision %d) %s%s\n", app, ro.Version, ro.Revision, strings.ToLower(ro.Phase), downtime(ro))
	}
	if started || ro.Phase == store.RolloutSucceeded {
		return nil
	}
	msg := ro.Message
	if msg == "" {
		msg = "rollout " + strings.ToLower(ro.Phase)
	}
	return &exitError{code: exitFailure, err: fmt.Errorf("%s: %s", app, msg)}
}
