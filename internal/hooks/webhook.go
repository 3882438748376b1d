package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/config"
)

const (
	// defaultWebhookTimeout applies when Webhook.Timeout is zero.
	defaultWebhookTimeout = 10 * time.Second
	// firstBackoff is the wait after a webhook's first failed attempt; it
	// doubles after each next one, up to maxBackoff.
	firstBackoff = 200 * time.Millisecond
	maxBackoff   = 10 * time.Second
	// snippetLen bounds how much of a failed answer's body an error shows.
	snippetLen = 256
)

// runWebhook POSTs body to w.URL, retrying failures w.Retries times.
func runWebhook(ctx context.Context, w config.Webhook, info Info, body []byte) error {
	timeout := w.Timeout.D()
	if timeout <= 0 {
		timeout = defaultWebhookTimeout
	}
	client := info.HTTP
	if client == nil {
		client = &http.Client{Timeout: timeout}
	}
	header := http.Header{}
	for k, v := range w.Headers {
		header.Set(k, v)
	}
	header.Set("X-Cutover-Hook", info.Point)

	attempts := max(w.Retries, 0) + 1
	backoff := firstBackoff
	var err error
	for i := range attempts {
		if i > 0 {
			if werr := sleep(ctx, backoff); werr != nil {
				return fmt.Errorf("webhook %s: stopped before attempt %d of %d: %w (last failure: %v)", redactQuery(w.URL), i+1, attempts, werr, err)
			}
			backoff = min(2*backoff, maxBackoff)
		}
		if err = post(ctx, client, timeout, w.URL, header, body); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("webhook %s: stopped: %w", redactQuery(w.URL), context.Cause(ctx))
		}
	}
	return fmt.Errorf("webhook %s failed after %d attempt(s): %w; check the receiver (its logs, its URL in the config), or give the hook more retries", redactQuery(w.URL), attempts, err)
}

// post sends body as a JSON POST to rawURL with extra header, bounded by
// timeout, and returns an error unless the answer is 2xx. The error names
// the status and the start of the answer's body, but not the URL: callers
// decide how much of it to show.
func post(ctx context.Context, client *http.Client, timeout time.Duration, rawURL string, header http.Header, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		// A *url.Error repeats the whole URL, query and all.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("send: %w", err)
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, snippetLen))
	// Read a bounded rest so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	msg := fmt.Sprintf("answered %s", resp.Status)
	if s := strings.TrimSpace(string(head)); s != "" {
		msg += fmt.Sprintf(": %q", s)
	}
	return errors.New(msg)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// redactQuery returns rawURL without its user info and query, which often
// hold credentials, for use in errors.
func redactQuery(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	u.Fragment = ""
	return u.String()
}

// redactPath returns only rawURL's scheme and host, for logs about
// receivers such as Slack whose URL path is a secret.
func redactPath(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}
