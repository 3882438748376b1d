package cli

import (
	"fmt"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/imageref"
	"github.com/cutover/cutover/internal/store"
)

func newHistory(g *globals) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "history APP",
		Short: "List an app's revisions and its recent events",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			h, err := g.client().History(cmd.Context(), a[0], limit)
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), h)
			}
			// The BARRIER column only when a revision is one, as kubectl
			// leaves out what no row has.
			barriers := slices.ContainsFunc(h.Revisions, func(r store.Revision) bool { return r.Barrier != "" })
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			header := "REVISION\tVERSION\tCREATED\tCAUSE"
			if barriers {
				header += "\tBARRIER"
			}
			fmt.Fprintln(tw, header)
			for _, r := range h.Revisions {
				cause := r.Cause
				if r.Image != "" {
					cause += ", image " + imageref.Image{Container: r.ImageContainer, Ref: r.Image}.String()
				}
				row := fmt.Sprintf("%d\t%s\t%s\t%s", r.Number, r.Version, r.CreatedAt.Local().Format("2006-01-02 15:04:05"), cause)
				if barriers {
					row += "\t" + r.Barrier
				}
				fmt.Fprintln(tw, row)
			}
			tw.Flush()
			fmt.Fprintln(cmd.OutOrStdout())
			tw = tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tTYPE\tREASON\tREV\tMESSAGE")
			for _, e := range h.Events {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format("2006-01-02 15:04:05.000"), e.Type, e.Reason, revLabel(e.Revision), e.Message)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "number of recent events to show (0: all)")
	return cmd
}
