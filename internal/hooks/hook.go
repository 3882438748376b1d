// Package hooks runs a rollout's lifecycle hooks and sends its notices.
//
// A hook is a command or a webhook that the controller runs at a lifecycle
// point (the CodeDeploy ones: beforeInstall, afterInstall,
// afterAllowTestTraffic, beforeAllowTraffic, afterAllowTraffic, rollback,
// plus the gates confirmPromotion and confirmTrafficIncrease). Each gets the
// rollout as JSON: a command on stdin, a webhook as the POST body. A failing
// hook is an error, which the controller turns into a failed rollout.
//
// A Notifier sends rollout events (started, promoted, aborted, ...) to
// Slack-compatible webhooks. Unlike a hook, a notice never holds a rollout
// up: it is queued and sent by the Notifier's own goroutine, and dropped
// when the queue is full.
package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/cutover/cutover/internal/config"
)

// Lifecycle points, as named in config.Hooks.
const (
	PointBeforeInstall          = "beforeInstall"
	PointAfterInstall           = "afterInstall"
	PointAfterAllowTestTraffic  = "afterAllowTestTraffic"
	PointBeforeAllowTraffic     = "beforeAllowTraffic"
	PointAfterAllowTraffic      = "afterAllowTraffic"
	PointRollback               = "rollback"
	PointConfirmPromotion       = "confirmPromotion"
	PointConfirmTrafficIncrease = "confirmTrafficIncrease"
)

// Info says where and for what a hook runs.
type Info struct {
	// Point is the lifecycle point, such as PointBeforeInstall. Commands
	// get it as CUTOVER_HOOK, webhooks as the X-Cutover-Hook header.
	Point string
	// App, Version and Revision name the rollout; commands get them as
	// CUTOVER_APP, CUTOVER_VERSION and CUTOVER_REVISION.
	App     string
	Version string
	// Revision is the revision being rolled out.
	Revision int
	// Dir is the working directory of command hooks; empty means cutover's own.
	Dir string
	// HTTP sends webhooks. Nil means a default client whose timeout is the
	// webhook's timeout.
	HTTP *http.Client
	// OnBarrier, when set, is told the reason of each line of the form
	// "cutover-barrier: REASON" (see BarrierPrefix) that a command hook
	// prints on its standard output, in order, once the hook has ended,
	// whether it succeeded or not: a migration that fails halfway may
	// already have changed the schema. The reason is trimmed of spaces and
	// may be empty; nothing else is checked. Webhooks declare no barrier.
	OnBarrier func(reason string)
}

// BarrierPrefix starts a line of a command hook's standard output that
// declares the revision a rollback barrier; the rest of the line says why.
const BarrierPrefix = "cutover-barrier:"

// Run runs hook h at info.Point and returns an error when it fails.
//
// A command hook gets payload as JSON on stdin and CUTOVER_HOOK,
// CUTOVER_APP, CUTOVER_VERSION and CUTOVER_REVISION in its environment; it
// runs in info.Dir and is killed, with everything it started, when its
// timeout (default 60s) passes; whatever it leaves running in its process
// group when it exits is killed too. It fails when it exits non-zero or times
// out; the error holds the exit status and the last lines of its output.
//
// A webhook hook gets payload as a JSON POST with the webhook's headers and
// X-Cutover-Hook set to info.Point, bounded by its timeout (default 10s)
// per attempt; a transport error or a non-2xx answer is retried
// Webhook.Retries more times, 200ms after the first failure and twice as
// long after each next one (at most 10s). Errors name the URL without its
// query, which often holds a token.
func Run(ctx context.Context, h config.Hook, info Info, payload any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("%s: encode payload as JSON: %w", describe(info.Point, h.Name, 0, 0), err)
	}
	return run(ctx, h, info, body, describe(info.Point, h.Name, 0, 0))
}

// RunAll runs hs in order with Run and stops at the first failure; its
// error names the failing hook (by name, and by position in hs) and the point.
func RunAll(ctx context.Context, hs []config.Hook, info Info, payload any) error {
	if len(hs) == 0 {
		return nil
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("%s: encode payload as JSON: %w", describe(info.Point, "", 0, 0), err)
	}
	for i, h := range hs {
		if err := run(ctx, h, info, body, describe(info.Point, h.Name, i+1, len(hs))); err != nil {
			return err
		}
	}
	return nil
}

// run runs one hook with its payload already encoded; label names the
// hook in errors.
func run(ctx context.Context, h config.Hook, info Info, body []byte, label string) error {
	var err error
	switch {
	case len(h.Command) > 0 && h.Webhook != nil:
		err = errors.New("it has both a command and a webhook; keep one of them in the config")
	case len(h.Command) > 0:
		err = runCommand(ctx, h, info, body)
	case h.Webhook != nil:
		err = runWebhook(ctx, *h.Webhook, info, body)
	default:
		err = errors.New("it has neither a command nor a webhook; give it one in the config")
	}
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	return nil
}

// describe names a hook for errors: `beforeInstall hook "migrate" (2 of 3)`.
// Position n of total is left out when total is 0 (a hook run on its own).
func describe(point, name string, n, total int) string {
	s := "hook"
	if point != "" {
		s = point + " hook"
	}
	if name != "" {
		s += fmt.Sprintf(" %q", name)
	}
	if total > 0 {
		if name != "" {
			s += fmt.Sprintf(" (%d of %d)", n, total)
		} else {
			s += fmt.Sprintf(" %d of %d", n, total)
		}
	}
	return s
}
