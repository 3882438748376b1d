package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/target"
)

func newStatus(g *globals) *cobra.Command {
	var watch bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "status [APP] [--watch]",
		Short: "Show which slot and version serve each app, the slots' replicas and the rollout",
		Args:  args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			show := func(ctx context.Context) error {
				var apps []controller.AppStatus
				if len(a) == 1 {
					st, err := g.client().Status(ctx, a[0])
					if err != nil {
						return err
					}
					apps = []controller.AppStatus{st}
				} else {
					var err error
					if apps, err = g.client().Apps(ctx); err != nil {
						return err
					}
				}
				if g.json() {
					if len(a) == 1 {
						return printJSONLine(cmd.OutOrStdout(), apps[0])
					}
					return printJSONLine(cmd.OutOrStdout(), apps)
				}
				printStatus(cmd.OutOrStdout(), apps)
				return nil
			}
			if !watch {
				return show(cmd.Context())
			}
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				if err := show(cmd.Context()); err != nil {
					return err
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-tick.C:
				}
				if !g.json() {
					fmt.Fprintln(cmd.OutOrStdout())
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print the status again every --interval until interrupted")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "refresh interval for --watch")
	return cmd
}

func printStatus(w io.Writer, apps []controller.AppStatus) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tLISTEN\tACTIVE\tVERSION\tREVISION\tROLLOUT")
	for _, st := range apps {
		rollout := "-"
		if ro := st.Rollout; ro != nil {
			rollout = fmt.Sprintf("#%d %s r%d %s", ro.ID, ro.Phase, ro.Revision, ro.Step)
			if ro.Strategy == "rolling" && ro.StepCount > 0 {
				rollout = fmt.Sprintf("#%d %s r%d rolling %d/%d updated (%s), weight %d%%", ro.ID, ro.Phase, ro.Revision,
					ro.StepIndex, ro.StepCount, ro.Step, ro.Weight)
			}
			if ro.Strategy == "canary" {
				rollout = fmt.Sprintf("#%d %s r%d canary step %d/%d (%s), weight %d%%", ro.ID, ro.Phase, ro.Revision,
					min(ro.StepIndex+1, ro.StepCount), ro.StepCount, ro.Step, ro.Weight)
				if ro.Share != nil {
					rollout += fmt.Sprintf(" asked, %s", ro.Share)
				}
				if st.ObservedWeight != nil {
					rollout += fmt.Sprintf(" (observed %.1f%%)", *st.ObservedWeight)
				}
			}
			rollout += downtime(*ro)
			if ro.PauseReason != "" {
				rollout += " [" + ro.PauseReason + "]"
			}
			if ro.Message != "" && ro.Phase != "Succeeded" {
				rollout += ": " + ro.Message
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", st.App, orDash(st.Listen), orDash(st.ActiveSlot), orDash(st.Version), revLabel(st.Revision), rollout)
		for _, s := range st.Slots {
			ready := 0
			for _, e := range s.Endpoints {
				if e.Ready {
					ready++
				}
			}
			detail := ""
			if len(s.Endpoints) > 0 {
				detail = fmt.Sprintf("%d/%d ready", ready, len(s.Endpoints)) + notReadyDetail(s)
			}
			if !s.WarmUntil.IsZero() && s.Phase == "warm" {
				detail += fmt.Sprintf(", stops in %s", time.Until(s.WarmUntil).Round(time.Second))
			}
			if s.Workload != nil {
				// Its pods are the replicas; the workload says more of them.
				detail += workloadDetail(*s.Workload)
			} else {
				var restarts []string
				for _, r := range s.Replicas {
					if line := replicaDetail(r); line != "" {
						restarts = append(restarts, line)
					}
				}
				if len(restarts) > 0 {
					detail += ", " + strings.Join(restarts, ", ")
				}
			}
			// A slot without endpoints yet (a warm one about to start
			// again after a restart) has no count to follow.
			detail = strings.TrimPrefix(detail, ", ")
			fmt.Fprintf(tw, "  %s\t%s\t\t%s\t%s\t%s\n", s.Name, s.Phase, orDash(s.Version), revLabel(s.Revision), detail)
		}
		if d := st.LastDrain; d != nil {
			fmt.Fprintf(tw, "  drained\t%s\t\t%s\t%s\t%s\n", d.Slot, orDash(d.Version), revLabel(d.Revision), drainDetail(*d, st.Drained))
		}
	}
	tw.Flush()
}

// replicaDetail describes a replica that is not simply running since it
// started: its state, how often it was restarted and how it last exited;
// "" for one that is.
func replicaDetail(r target.Replica) string {
	if r.Restarts == 0 && r.LastExit == "" && (r.State == "" || r.State == target.ReplicaRunning) {
		return ""
	}
	out := fmt.Sprintf("replica %d", r.Index)
	if r.State != "" {
		out += " " + r.State
	}
	out += fmt.Sprintf(" (restarted %d×", r.Restarts)
	if r.LastExit != "" {
		out += ", last exit: " + r.LastExit
		if !r.LastExitAt.IsZero() {
			out += fmt.Sprintf(" %s ago", time.Since(r.LastExitAt).Round(time.Second))
		}
	}
	if r.State == target.ReplicaCrashLoopBackOff && !r.NextRestartAt.IsZero() {
		out += fmt.Sprintf(", next start in %s", max(time.Until(r.NextRestartAt), 0).Round(time.Second))
	}
	return out + ")"
}

// workloadDetail describes a slot's workload in the cluster: its name,
// its pods ready of desired and why each unready pod is not ready.
func workloadDetail(w target.Workload) string {
	if !w.Exists {
		return "deployment " + w.Name + " is not there"
	}
	out := fmt.Sprintf("deployment %s %d/%d ready", w.Name, w.Ready, w.Desired)
	for _, p := range w.Unready {
		out += "; pod " + p.Name + " " + cmp.Or(p.Reason, "starting")
		if msg := firstLine(p.Message, 100); msg != "" {
			out += ": " + msg
		}
	}
	return out
}

// firstLine is s's first line, cut to at most n runes.
func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// drainDetail says how the last drain's requests ended, then the app's
// totals.
func drainDetail(d store.Drain, total store.DrainTotals) string {
	out := fmt.Sprintf("ended %s ago: %d in flight at the flip (%d long-lived), %d finished, %d closed at drainTimeout",
		time.Since(d.EndedAt).Round(time.Second), d.InFlight, d.LongLived, d.Finished, d.Closed)
	if d.Unfinished > 0 {
		out += fmt.Sprintf(", %d still running", d.Unfinished)
	}
	out += fmt.Sprintf("; since created: %d finished, %d closed", total.Finished, total.Closed)
	if total.Unfinished > 0 {
		out += fmt.Sprintf(", %d still running", total.Unfinished)
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func revLabel(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%d", n)
}
