package hooks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/config"
)

// Rollout events a Notice can carry, as named in config.Notification.Events.
const (
	EventStarted        = "started"
	EventStep           = "step"
	EventPaused         = "paused"
	EventPromoted       = "promoted"
	EventAborted        = "aborted"
	EventAnalysisFailed = "analysisFailed"
)

const (
	// queueLen bounds the notices waiting to be sent; more are dropped.
	queueLen = 256
	// noticeTimeout bounds one attempt to deliver a notice.
	noticeTimeout = 10 * time.Second
	// noticeRetryDelay is the wait before the one retry of a failed delivery.
	noticeRetryDelay = 500 * time.Millisecond
	// dropLogEvery: after the first dropped notice, every this many drops
	// are logged, so a stuck receiver does not flood the log.
	dropLogEvery = 100
)

// Notice is one rollout event to send.
type Notice struct {
	// Event is one of the Event constants.
	Event string
	// App, Version and Revision name the rollout's app and what it rolls out.
	App     string
	Version string
	// Revision is the revision being rolled out.
	Revision int
	// Rollout is the rollout's number.
	Rollout int64
	// Message says what happened, such as why a rollout was aborted.
	Message string
	// Time is when it happened; zero means when Notify is called.
	Time time.Time
}

// Notifier sends notices to the configured webhooks without ever holding
// up the caller: Notify queues, and one goroutine, started by NewNotifier
// and stopped by Close, sends. A nil *Notifier is valid and sends nothing.
type Notifier struct {
	targets []config.Notification
	client  *http.Client
	log     *slog.Logger

	// ctx bounds deliveries; Close cancels it when its own ctx ends first.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	// mu guards closed and the send on queue against Close closing it.
	mu      sync.Mutex
	closed  bool
	queue   chan Notice
	dropped int
}

// NewNotifier returns a Notifier for ns and starts its goroutine; the
// caller must call Close. A nil client means one with a 10s timeout; a nil
// log discards what would be logged.
func NewNotifier(ns []config.Notification, client *http.Client, log *slog.Logger) *Notifier {
	if client == nil {
		client = &http.Client{Timeout: noticeTimeout}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{
		targets: slices.Clone(ns),
		client:  client,
		log:     log,
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		queue:   make(chan Notice, queueLen),
	}
	go n.loop()
	return n
}

// Notify queues ev for sending and returns at once. When the queue is full
// or the Notifier is closed, ev is dropped and that is logged.
func (n *Notifier) Notify(ev Notice) {
	if n == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	n.mu.Lock()
	closed, queued, dropped := n.closed, false, 0
	if !closed {
		select {
		case n.queue <- ev:
			queued = true
		default:
			n.dropped++
			dropped = n.dropped
		}
	}
	n.mu.Unlock()
	switch {
	case closed:
		n.log.Warn("notification dropped: notifier is closed", "event", ev.Event, "app", ev.App, "rollout", ev.Rollout)
	case !queued && (dropped == 1 || dropped%dropLogEvery == 0):
		n.log.Warn("notification dropped: queue is full because receivers are slow or down", "event", ev.Event, "app", ev.App, "rollout", ev.Rollout, "droppedSoFar", dropped)
	}
}

// Close stops taking notices, sends those already queued and stops the
// goroutine. When ctx ends first, it abandons the deliveries under way and
// the rest of the queue, and returns once the goroutine has stopped,
// which it does promptly. Calling Close again waits the same way.
func (n *Notifier) Close(ctx context.Context) {
	if n == nil {
		return
	}
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.queue)
	}
	n.mu.Unlock()
	select {
	case <-n.done:
	case <-ctx.Done():
		n.cancel()
		<-n.done
	}
	n.cancel()
}

// loop sends queued notices until the queue is closed and empty.
func (n *Notifier) loop() {
	defer close(n.done)
	abandoned := 0
	for ev := range n.queue {
		if n.ctx.Err() != nil {
			abandoned++
			continue
		}
		n.deliver(ev)
	}
	if abandoned > 0 {
		n.log.Warn("notifications not sent: shutdown ran out of time", "count", abandoned)
	}
}

// deliver sends ev to every target that wants it, retrying a failure once.
func (n *Notifier) deliver(ev Notice) {
	body, err := json.Marshal(noticeBody{
		Text:     ev.text(),
		Event:    ev.Event,
		App:      ev.App,
		Version:  ev.Version,
		Revision: ev.Revision,
		Rollout:  ev.Rollout,
		Message:  ev.Message,
		Time:     ev.Time.UTC().Format(time.RFC3339),
	})
	if err != nil {
		// Only strings and numbers go in; this cannot happen, but it must
		// not be silent if it does.
		n.log.Error("notification not sent: encode JSON", "event", ev.Event, "err", err)
		return
	}
	for _, t := range n.targets {
		if len(t.Events) > 0 && !slices.Contains(t.Events, ev.Event) {
			continue
		}
		err := post(n.ctx, n.client, noticeTimeout, t.Webhook, nil, body)
		if err != nil && n.ctx.Err() == nil {
			n.log.Warn("notification failed; retrying once", "receiver", redactPath(t.Webhook), "event", ev.Event, "err", err)
			if sleep(n.ctx, noticeRetryDelay) == nil {
				err = post(n.ctx, n.client, noticeTimeout, t.Webhook, nil, body)
			}
		}
		if err != nil {
			n.log.Warn("notification not sent; check the receiver and its URL in the config", "receiver", redactPath(t.Webhook), "event", ev.Event, "err", err)
		}
	}
}

// noticeBody is the JSON a receiver gets. Slack incoming webhooks show
// Text and ignore the other fields.
type noticeBody struct {
	Text     string `json:"text"`
	Event    string `json:"event"`
	App      string `json:"app"`
	Version  string `json:"version"`
	Revision int    `json:"revision"`
	Rollout  int64  `json:"rollout"`
	Message  string `json:"message"`
	Time     string `json:"time"`
}

// text is the human line, such as
// "cutover: web v2 (revision 3) aborted: analysis success-rate failed".
func (ev Notice) text() string {
	s := "cutover: " + ev.App
	if ev.Version != "" {
		s += " " + ev.Version
	}
	if ev.Revision != 0 {
		s += fmt.Sprintf(" (revision %d)", ev.Revision)
	}
	s += " " + eventWords(ev.Event)
	if ev.Message != "" {
		s += ": " + ev.Message
	}
	return s
}

// eventWords is how an event reads in a sentence.
func eventWords(event string) string {
	switch event {
	case EventStarted:
		return "rollout started"
	case EventStep:
		return "moved to a new step"
	case EventAnalysisFailed:
		return "analysis failed"
	default:
		return event
	}
}
