// Package store defines the records cutover persists: apps and their slots,
// revisions, rollouts and the event history. Implementations live in
// sub-packages (bolt for the embedded default).
package store

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Slot names. Each app has exactly these two slots.
const (
	Blue  = "blue"
	Green = "green"
)

// Other returns the slot that is not s.
func Other(s string) string {
	if s == Blue {
		return Green
	}
	return Blue
}

// Revision is an immutable record of what was deployed. Numbers start at 1
// and are assigned per app by the store.
type Revision struct {
	App        string    `json:"app"`
	Number     int       `json:"number"`
	Version    string    `json:"version"`
	Command    []string  `json:"command,omitempty"`
	Upstreams  []string  `json:"upstreams,omitempty"`
	ConfigHash string    `json:"configHash,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	// Cause says who or what asked for it: "initial", "deploy", "rollback".
	Cause string `json:"cause,omitempty"`
	// Image is the container image the revision runs (Kubernetes) in the
	// pod template's container ImageContainer (its first when empty); ""
	// runs the template's own image.
	Image          string `json:"image,omitempty"`
	ImageContainer string `json:"imageContainer,omitempty"`
	// Barrier, when set, marks the revision as a rollback barrier and says
	// why (`deploy --barrier "schema v42"`): rolling back to a revision
	// older than it is refused unless forced, and a failure after it took
	// the traffic pauses for a human instead of flipping back. See
	// CheckBarrier for what it may hold.
	Barrier string `json:"barrier,omitempty"`
}

// MaxBarrierLen bounds a rollback barrier's reason, in characters.
const MaxBarrierLen = 200

// CheckBarrier reports why reason cannot be a rollback barrier's reason,
// or nil: it is free text, but one line of at most MaxBarrierLen printable
// characters, so that it shows as it is in history and in messages.
func CheckBarrier(reason string) error {
	switch {
	case strings.TrimSpace(reason) == "":
		return fmt.Errorf("a barrier needs a reason, such as --barrier \"schema v42\"")
	case !utf8.ValidString(reason):
		return fmt.Errorf("barrier %.64q is not UTF-8 text", reason)
	case utf8.RuneCountInString(reason) > MaxBarrierLen:
		return fmt.Errorf("barrier %.64q... is %d characters long; say it in at most %d", reason, utf8.RuneCountInString(reason), MaxBarrierLen)
	case strings.ContainsFunc(reason, func(r rune) bool { return !unicode.IsPrint(r) }):
		return fmt.Errorf("barrier %.64q has a control or unprintable character; write it on one line, without tabs or escape codes", reason)
	}
	return nil
}

// Slot phases.
const (
	SlotEmpty    = "empty"    // nothing runs
	SlotStarting = "starting" // replicas are starting, not yet ready
	SlotPreview  = "preview"  // ready, reachable on the preview listener only
	SlotCanary   = "canary"   // gets a share of production traffic
	SlotActive   = "active"   // gets production traffic
	SlotWarm     = "warm"     // previous revision kept running for instant rollback
	// SlotStopped: recreate stopped the active revision to make room for
	// the new one; a restarted cutover starts it again from here.
	SlotStopped = "stopped"
)

// SlotState is what one slot holds.
type SlotState struct {
	Revision int    `json:"revision,omitempty"`
	Phase    string `json:"phase"`
	// WarmUntil is when a warm slot is stopped.
	WarmUntil time.Time `json:"warmUntil,omitzero"`
}

// Rollout phases. Terminal: Succeeded, Failed, Aborted, RolledBack.
const (
	RolloutProgressing = "Progressing"
	RolloutPaused      = "Paused" // waiting for `cutover promote`
	RolloutSucceeded   = "Succeeded"
	RolloutFailed      = "Failed"
	RolloutAborted     = "Aborted"
	// RolloutRolledBack: the new revision had the traffic and failed while
	// baking (or its post-promotion analysis failed), so the traffic went
	// back to the previous revision; Message says why.
	RolloutRolledBack = "RolledBack"
)

// Rollout is one attempt to move an app to a new revision.
type Rollout struct {
	ID       int64  `json:"id"`
	Revision int    `json:"revision"`
	Version  string `json:"version"`
	Slot     string `json:"slot"`
	Phase    string `json:"phase"`
	Step     string `json:"step,omitempty"`
	Message  string `json:"message,omitempty"`
	// Strategy is blueGreen, canary, recreate or rolling.
	Strategy string `json:"strategy,omitempty"`
	// DowntimeMs is how long a recreate rollout left the app without a
	// serving replica: from the moment the router stopped sending requests
	// to the stable revision to the flip to the revision that serves next
	// (the new one, or the stable one again after a failure). 0 when
	// nothing was taken away (a first deploy, another strategy).
	DowntimeMs int64 `json:"downtimeMs,omitempty"`
	// StableRevision had the traffic when the rollout started.
	StableRevision int `json:"stableRevision,omitempty"`
	// StepIndex is the canary step being run (0-based); StepCount the
	// number of steps. For a rolling update: how many of its StepCount
	// replicas the new revision runs ready.
	StepIndex int `json:"stepIndex"`
	StepCount int `json:"stepCount,omitempty"`
	// Weight is the canary's set share of the traffic, in percent.
	Weight int `json:"weight"`
	// Share is the share the canary really got at Weight when a traffic
	// provider splits the traffic (by pods for a Kubernetes Service, by
	// exact weight for a Gateway API HTTPRoute); nil when cutover's
	// router splits it.
	Share *Share `json:"share,omitempty"`
	// PauseReason says why a Paused rollout waits: AwaitingPromotion,
	// PausedByUser, Inconclusive, ProgressDeadlineExceeded or BarrierHold
	// (a rollback barrier failed after it took the traffic).
	PauseReason string `json:"pauseReason,omitempty"`
	// Analysis is the last analysis verdict, in one line.
	Analysis  string    `json:"analysis,omitempty"`
	StartedAt time.Time `json:"startedAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Share is a canary's real share of the traffic. Counted in the ready
// pods it is sent to (a Service's), Canary of them run the canary, out
// of Total. Exact says the provider splits the requests themselves at
// the weight (a gateway's HTTPRoute): Canary is then the canary's percent
// of the requests, out of Total 100. Weights says Canary and Total are
// server weights instead (an HAProxy backend's that cannot give the
// percent exactly): the canary servers' sum out of all servers'.
type Share struct {
	Canary  int  `json:"canary"`
	Total   int  `json:"total"`
	Exact   bool `json:"exact,omitempty"`
	Weights bool `json:"weights,omitempty"`
}

// String says the share as events and status show it.
func (s Share) String() string {
	if s.Exact {
		return fmt.Sprintf("%d%% of the requests go to the canary (exact weights)", s.Canary)
	}
	pct := 0.0
	if s.Total > 0 {
		pct = 100 * float64(s.Canary) / float64(s.Total)
	}
	if s.Weights {
		return fmt.Sprintf("the canary's servers weigh %d of %d (%.1f%% of the requests)", s.Canary, s.Total, pct)
	}
	return fmt.Sprintf("%d of %d ready pods (%.0f%%) are canary", s.Canary, s.Total, pct)
}

// Done reports whether the rollout has ended.
func (r *Rollout) Done() bool {
	switch r.Phase {
	case RolloutSucceeded, RolloutFailed, RolloutAborted, RolloutRolledBack:
		return true
	}
	return false
}

// AppState is the persisted state of one app: which slot is active and what
// each slot holds.
type AppState struct {
	App        string               `json:"app"`
	ActiveSlot string               `json:"activeSlot,omitempty"`
	Slots      map[string]SlotState `json:"slots"`
	Rollout    *Rollout             `json:"rollout,omitempty"`
	// PreviousRevision was active before the last flip; rollback returns to it.
	PreviousRevision int `json:"previousRevision,omitempty"`
	// LastDrain is the last drain of a slot that lost the traffic, recorded
	// when it ended; nil until the app's first flip away from a running slot.
	LastDrain *Drain `json:"lastDrain,omitempty"`
	// Drained adds up every drain of the app since it was created.
	Drained DrainTotals `json:"drained,omitzero"`
	// Barriers are the rollback barriers that beforeInstall hooks declared,
	// by revision number: a revision is recorded before its hooks run, and
	// its record never changes. Revision.Barrier holds those given to
	// deploy.
	Barriers map[int]string `json:"barriers,omitempty"`
}

// Drain is how the requests in flight on a slot that lost the traffic
// ended. Every request counted in InFlight either finished, was closed or
// was still running when the drain gave up (Unfinished).
type Drain struct {
	Slot     string `json:"slot"`
	Revision int    `json:"revision"`
	Version  string `json:"version,omitempty"`
	// Rollout is the rollout whose flip started the drain.
	Rollout int64 `json:"rollout,omitempty"`
	// StartedAt is the flip; EndedAt is when the slot was idle or
	// drainTimeout had passed and the long-lived connections were closed.
	StartedAt time.Time `json:"startedAt"`
	EndedAt   time.Time `json:"endedAt"`
	// InFlight counts the requests in flight on the slot at the flip,
	// long-lived ones included; LongLived counts the WebSocket and
	// streamed (server-sent events) connections among them.
	InFlight  int `json:"inFlight"`
	LongLived int `json:"longLived"`
	// Finished counts the requests that ended on their own before
	// drainTimeout, long-lived or not.
	Finished int `json:"finished"`
	// Closed counts the long-lived connections cut at drainTimeout: a
	// WebSocket got close status 1001 "going away", a stream was ended.
	Closed int `json:"closed"`
	// Unfinished counts the plain requests still running at drainTimeout;
	// they go on until the slot is stopped.
	Unfinished int `json:"unfinished,omitempty"`
}

// DrainTotals add up an app's drains.
type DrainTotals struct {
	// Finished counts requests that ended on their own during a drain.
	Finished int64 `json:"finished"`
	// Closed counts long-lived connections closed at drainTimeout.
	Closed int64 `json:"closed"`
	// Unfinished counts plain requests still running at drainTimeout.
	Unfinished int64 `json:"unfinished,omitempty"`
}

// Event is one entry of an app's history.
type Event struct {
	Seq      uint64    `json:"seq"`
	App      string    `json:"app"`
	Time     time.Time `json:"time"`
	Type     string    `json:"type"`   // Normal or Warning
	Reason   string    `json:"reason"` // DeployStarted, ReplicasReady, Promoted, ...
	Message  string    `json:"message"`
	Revision int       `json:"revision,omitempty"`
	// Rollout is the id of the rollout the event belongs to, if any.
	Rollout int64 `json:"rollout,omitempty"`
}
