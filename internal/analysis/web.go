package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/config"
)

// maxWebAnswer bounds how much of an answer is read; a metric endpoint
// that sends more is misconfigured.
const maxWebAnswer = 1 << 20

// webProvider calls a URL and reads a value out of its JSON answer.
type webProvider struct {
	client  *http.Client
	method  string
	url     string
	headers map[string]string
	body    string
	path    jsonPath
	timeout time.Duration
}

func newWebProvider(p *config.WebProvider, args map[string]string, client *http.Client) (*webProvider, error) {
	w := &webProvider{client: client, method: p.Method, headers: make(map[string]string, len(p.Headers)), timeout: orDefault(p.Timeout, defaultWebTimeout)}
	if w.method == "" {
		w.method = http.MethodGet
	}
	if w.client == nil {
		w.client = &http.Client{Timeout: w.timeout}
	}
	var err error
	if w.url, err = expandArgs(p.URL, args); err != nil {
		return nil, fmt.Errorf("web url: %w", err)
	}
	if w.body, err = expandArgs(p.Body, args); err != nil {
		return nil, fmt.Errorf("web body: %w", err)
	}
	for name, v := range p.Headers {
		if w.headers[name], err = expandArgs(v, args); err != nil {
			return nil, fmt.Errorf("web header %s: %w", name, err)
		}
	}
	if w.path, err = parseJSONPath(p.JSONPath); err != nil {
		return nil, err
	}
	// Build one request now so a malformed URL or method is a
	// configuration error rather than an error at every measurement.
	if _, err := http.NewRequest(w.method, w.url, nil); err != nil {
		return nil, fmt.Errorf("web request: %w", err)
	}
	return w, nil
}

// measure calls the URL; a transport error or an answer other than 2xx is
// an error, and the value at the JSON path is the result.
func (w *webProvider) measure(ctx context.Context) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	var body io.Reader
	if w.body != "" {
		body = strings.NewReader(w.body)
	}
	req, err := http.NewRequestWithContext(ctx, w.method, w.url, body)
	if err != nil {
		return nil, fmt.Errorf("web request %s %s: %w", w.method, w.url, err)
	}
	for name, v := range w.headers {
		req.Header.Set(name, v)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("web request: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxWebAnswer))
	if err != nil {
		return nil, fmt.Errorf("read answer of %s %s: %w", w.method, w.url, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("%s %s answered %s: %s", w.method, w.url, resp.Status, excerpt(data))
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("answer of %s %s is not JSON (%v): %s", w.method, w.url, err, excerpt(data))
	}
	return w.path.find(doc)
}

// excerpt is the start of an answer or output, on one line, for messages.
func excerpt(b []byte) string {
	const limit = 200
	s := strings.Join(strings.Fields(string(b)), " ")
	if r := []rune(s); len(r) > limit {
		s = string(r[:limit]) + "…"
	}
	if s == "" {
		return "(empty)"
	}
	return s
}
