package config

import (
	"fmt"
	"slices"
	"strings"
)

// NotificationEvents are the rollout events a notification may name.
var NotificationEvents = []string{"started", "step", "paused", "promoted", "aborted", "analysisFailed"}

func (n *Notification) validate(d *document, path string) {
	checkHTTPURL(d, path+".webhook", n.Webhook, "https://hooks.slack.com/services/...")
	all := strings.Join(NotificationEvents, ", ")
	for i, e := range n.Events {
		if slices.Contains(NotificationEvents, e) {
			continue
		}
		hint := "use some of " + all + ", or leave events out for all of them"
		if best := closest(e, NotificationEvents); best != "" {
			hint = fmt.Sprintf("did you mean `%s`? (events: %s)", best, all)
		}
		d.add(fmt.Sprintf("%s.events[%d]", path, i), hint, "%q is not a rollout event", e)
	}
}
