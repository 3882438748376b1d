package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// upgradeTimeout bounds the wait for the new process: it starts the
// replicas again and waits until they are ready.
const upgradeTimeout = 3 * time.Minute

func newUpgrade(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "upgrade",
		Short: "Hand the running cutover's listeners to a new process of its binary, dropping no request",
		Long: `Start a new cutover process from the executable at the running one's path
(replace the binary first to upgrade it) and hand it the listening sockets.
The new process restarts the replicas of every app's active revision; once they
are ready it takes over and the old process drains its requests and exits.
If the new process fails, the old one goes on serving. SIGUSR2 to the process
in <data-dir>/cutover.pid does the same.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), upgradeTimeout)
			defer cancel()
			if err := postUpgrade(ctx, g); err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), map[string]bool{"upgraded": true})
			}
			fmt.Fprintln(cmd.OutOrStdout(), "upgraded: a new cutover process serves")
			return nil
		},
	}
}

// postUpgrade calls POST /v1/upgrade and turns an error answer into an
// error with its message.
func postUpgrade(ctx context.Context, g *globals) error {
	url := strings.TrimSuffix(g.admin, "/") + "/v1/upgrade"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return usageErrorf("admin URL %q: %v", g.admin, err)
	}
	if g.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach cutover at %s (is `cutover serve` running? set --admin or CUTOVER_ADMIN): %w", g.admin, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 400 {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error == "" {
		e.Error = resp.Status
	}
	return fmt.Errorf("upgrade: %s", e.Error)
}
