package api_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/controller"
)

// TestDeployRefusesLabelsAndWordsThatBreakTerminals pins that a deploy
// whose version, command, upstreams or rollback barrier would forge lines in history and
// status, reach a terminal as escape codes or break the X-Version header
// is refused with 400 before anything is recorded.
func TestDeployRefusesLabelsAndWordsThatBreakTerminals(t *testing.T) {
	a := startAdmin(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waitVersion(ctx, t, a.client, "v1")
	up := []string{a.Upstream}
	cases := []struct {
		name   string
		req    controller.DeployRequest
		phrase string
	}{
		{"newline forging a history line", controller.DeployRequest{Version: "v2\n2026-11-30 12:00:00.000  Normal  Promoted  1  v9 serves", Upstreams: up}, "is not a version label"},
		{"escape codes", controller.DeployRequest{Version: "v2\x1b[2J\x1b[31m", Upstreams: up}, "is not a version label"},
		{"C1 control (CSI)", controller.DeployRequest{Version: "v2\u009b2J", Upstreams: up}, "is not a version label"},
		{"500 KB version", controller.DeployRequest{Version: strings.Repeat("v", 500<<10), Upstreams: up}, "(512000 bytes)"},
		{"space", controller.DeployRequest{Version: "v 2", Upstreams: up}, "such as v2"},
		{"upstream with a newline", controller.DeployRequest{Version: "v2", Upstreams: []string{a.Upstream + "/\nx"}}, "upstream"},
		{"upstream that is not http", controller.DeployRequest{Version: "v2", Upstreams: []string{"file:///etc/passwd"}}, "upstream"},
		{"command word with an escape code", controller.DeployRequest{Version: "v2", Command: []string{"./app", "\x1b]0;pwned\x07"}}, "command"},
		{"barrier with a newline", controller.DeployRequest{Version: "v2", Upstreams: up, Barrier: "schema v42\n2026-11-30 12:00:00.000  Normal  Promoted"}, "barrier"},
		{"barrier with escape codes", controller.DeployRequest{Version: "v2", Upstreams: up, Barrier: "\x1b[31mschema\u009b2J"}, "barrier"},
		{"barrier with a tab", controller.DeployRequest{Version: "v2", Upstreams: up, Barrier: "schema\tv42"}, "barrier"},
		{"barrier of 201 characters", controller.DeployRequest{Version: "v2", Upstreams: up, Barrier: strings.Repeat("é", 201)}, "barrier"},
		{"blank barrier", controller.DeployRequest{Version: "v2", Upstreams: up, Barrier: "   "}, "barrier"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.client.Deploy(ctx, "web", tc.req, nil)
			var e *api.Error
			if !errors.As(err, &e) || e.Status != 400 || !strings.Contains(e.Message, tc.phrase) {
				t.Fatalf("got %v; want 400 containing %q", err, tc.phrase)
			}
			if len(e.Message) > 500 || strings.ContainsAny(e.Message, "\n\x1b\u009b") {
				t.Fatalf("the error itself carries the bad text: %q", e.Message)
			}
		})
	}
	h, err := a.client.History(ctx, "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Revisions) != 1 {
		t.Fatalf("refused deploys recorded %d revisions", len(h.Revisions)-1)
	}
}
