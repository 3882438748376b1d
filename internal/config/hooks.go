package config

import "fmt"

// hookPoint is one lifecycle point's hooks, named as in the file.
type hookPoint struct {
	name  string
	hooks []Hook
}

// points lists h's hooks by lifecycle point, in the order of the type's
// fields. The slices share h's arrays, so defaults set through them stick.
func (h *Hooks) points() []hookPoint {
	return []hookPoint{
		{"beforeInstall", h.BeforeInstall},
		{"afterInstall", h.AfterInstall},
		{"afterAllowTestTraffic", h.AfterAllowTestTraffic},
		{"beforeAllowTraffic", h.BeforeAllowTraffic},
		{"afterAllowTraffic", h.AfterAllowTraffic},
		{"rollback", h.Rollback},
		{"confirmPromotion", h.ConfirmPromotion},
		{"confirmTrafficIncrease", h.ConfirmTrafficIncrease},
	}
}

func (h *Hooks) validate(d *document, path string) {
	for _, point := range h.points() {
		for i := range point.hooks {
			point.hooks[i].validate(d, fmt.Sprintf("%s.%s[%d]", path, point.name, i))
		}
	}
}

// maxWebhookRetries bounds a webhook's extra attempts, so that a dead
// endpoint cannot hold a rollout for long.
const maxWebhookRetries = 10

func (h *Hook) validate(d *document, path string) {
	// "command: []" is a command, and an empty one.
	hasCommand := len(h.Command) > 0 || d.written(path+".command")
	switch {
	case hasCommand && h.Webhook != nil:
		d.add(path, "keep exactly one of command and webhook; add a second hook for the other", "both command and webhook are set")
	case hasCommand:
		checkCommand(d, path+".command", h.Command, `write the program and its arguments as a list, such as command: [./smoke-test.sh, --quick]`)
	case h.Webhook != nil:
		h.Webhook.validate(d, path+".webhook")
	default:
		d.add(path, "write command: [./check.sh] or webhook: {url: https://hooks.example.com/cutover}", "missing; set command or webhook")
	}
	checkPositive(d, path+".timeout", h.Timeout, "60s")
}

func (w *Webhook) validate(d *document, path string) {
	checkHTTPURL(d, path+".url", w.URL, "https://hooks.example.com/cutover")
	for name := range w.Headers {
		if !isToken(name) {
			d.add(path+".headers."+name, "use letters, digits and '-', such as Authorization", "%q is not a header name", name)
		}
	}
	if w.Retries < 0 || w.Retries > maxWebhookRetries {
		d.add(path+".retries", fmt.Sprintf("use 0 to %d extra attempts", maxWebhookRetries), "%d is out of range", w.Retries)
	}
	checkPositive(d, path+".timeout", w.Timeout, "10s")
}
