package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
)

// Client talks to a running cutover's admin API.
type Client struct {
	// Base is the admin URL, such as http://127.0.0.1:9901.
	Base string
	// Token is sent as a bearer token when set.
	Token string
	// HTTP nil means a client without timeout (streams can be long).
	HTTP *http.Client
}

// Error is an error answer of the admin API.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Apps returns every app's status.
func (c *Client) Apps(ctx context.Context) ([]controller.AppStatus, error) {
	var out []controller.AppStatus
	return out, c.do(ctx, http.MethodGet, "/v1/apps", nil, &out)
}

// Status returns one app's status.
func (c *Client) Status(ctx context.Context, app string) (controller.AppStatus, error) {
	var out controller.AppStatus
	return out, c.do(ctx, http.MethodGet, "/v1/apps/"+url.PathEscape(app), nil, &out)
}

// History returns app's revisions and last events.
func (c *Client) History(ctx context.Context, app string, limit int) (controller.History, error) {
	var out controller.History
	return out, c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/apps/%s/history?limit=%d", url.PathEscape(app), limit), nil, &out)
}

// Promote moves the rollout in progress on (full: skip a canary's
// remaining steps).
func (c *Client) Promote(ctx context.Context, app string, full bool) (store.Rollout, error) {
	var out store.Rollout
	return out, c.do(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(app)+"/promote", PromoteRequest{Full: full}, &out)
}

// Pause holds a canary rollout where it is.
func (c *Client) Pause(ctx context.Context, app string) (store.Rollout, error) {
	var out store.Rollout
	return out, c.do(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(app)+"/pause", struct{}{}, &out)
}

// Resume continues a paused rollout.
func (c *Client) Resume(ctx context.Context, app string) (store.Rollout, error) {
	var out store.Rollout
	return out, c.do(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(app)+"/resume", struct{}{}, &out)
}

// SetWeight sets a canary's share of the traffic.
func (c *Client) SetWeight(ctx context.Context, app string, weight int) (store.Rollout, error) {
	var out store.Rollout
	return out, c.do(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(app)+"/weight", WeightRequest{Weight: &weight}, &out)
}

// Retry runs an aborted or failed rollout again, followed like Deploy.
func (c *Client) Retry(ctx context.Context, app string, progress func(store.Event)) (store.Rollout, error) {
	return c.follow(ctx, "/v1/apps/"+url.PathEscape(app)+"/retry", struct{}{}, progress)
}

// Abort stops the rollout in progress and returns its final record.
func (c *Client) Abort(ctx context.Context, app string) (store.Rollout, error) {
	var out store.Rollout
	return out, c.do(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(app)+"/abort", struct{}{}, &out)
}

// Reload asks cutover to re-read its config file.
func (c *Client) Reload(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/reload", struct{}{}, nil)
}

// Upgrade asks cutover to hand its listeners to a new process of its
// binary; it returns once the new process serves (or the upgrade failed).
func (c *Client) Upgrade(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/upgrade", struct{}{}, nil)
}

// Version returns the server's version.
func (c *Client) Version(ctx context.Context) (string, error) {
	var out map[string]string
	err := c.do(ctx, http.MethodGet, "/v1/version", nil, &out)
	return out["version"], err
}

// Deploy starts a deploy. With progress nil it returns the rollout as
// started; otherwise it calls progress for each event and returns the
// rollout's final record.
func (c *Client) Deploy(ctx context.Context, app string, req controller.DeployRequest, progress func(store.Event)) (store.Rollout, error) {
	return c.follow(ctx, "/v1/apps/"+url.PathEscape(app)+"/deploy", req, progress)
}

// Rollback starts a rollback, followed like Deploy.
func (c *Client) Rollback(ctx context.Context, app string, req RollbackRequest, progress func(store.Event)) (store.Rollout, error) {
	return c.follow(ctx, "/v1/apps/"+url.PathEscape(app)+"/rollback", req, progress)
}

func (c *Client) follow(ctx context.Context, path string, body any, progress func(store.Event)) (store.Rollout, error) {
	var ro store.Rollout
	if progress == nil {
		return ro, c.do(ctx, http.MethodPost, path, body, &ro)
	}
	resp, err := c.send(ctx, http.MethodPost, path+"?watch=true", body)
	if err != nil {
		return ro, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line RolloutLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return ro, fmt.Errorf("read progress from %s: %w", c.Base, err)
		}
		switch {
		case line.Error != "":
			return ro, &Error{Status: http.StatusInternalServerError, Message: line.Error}
		case line.Event != nil:
			progress(*line.Event)
		case line.Rollout != nil:
			return *line.Rollout, nil
		}
	}
	if err := sc.Err(); err != nil {
		return ro, fmt.Errorf("progress stream from %s: %w", c.Base, err)
	}
	return ro, fmt.Errorf("progress stream from %s ended before the rollout did; `cutover status` shows where it is", c.Base)
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("read answer of %s %s: %w", method, path, err)
	}
	return nil
}

// send makes the request and turns error answers into *Error.
func (c *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.Base, "/")+path, rd)
	if err != nil {
		return nil, fmt.Errorf("admin URL %q: %w", c.Base, err)
	}
	if method != http.MethodGet && method != http.MethodHead {
		// The server refuses changes in any other type (see guard), even
		// with an empty body.
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach cutover at %s (is `cutover serve` running? set --admin or CUTOVER_ADMIN): %w", c.Base, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("%s %s: %s", method, path, resp.Status)
		}
		return nil, &Error{Status: resp.StatusCode, Message: e.Error}
	}
	return resp, nil
}
