package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	"github.com/prometheus/common/model"

	"github.com/cutover/cutover/internal/config"
)

// prometheusProvider runs an instant query through Prometheus' HTTP API.
//
// It speaks the API through client_golang's api.Client and decodes with
// prometheus/common/model rather than using api/prometheus/v1, whose JSON
// library (json-iterator) is not among the module's dependencies.
type prometheusProvider struct {
	client  api.Client
	address string
	query   string
	timeout time.Duration
}

func newPrometheusProvider(p *config.PrometheusProvider, args map[string]string, client *http.Client) (*prometheusProvider, error) {
	if p.Address == "" {
		return nil, fmt.Errorf("prometheus provider has no address; set it to the server's URL, such as http://127.0.0.1:9090")
	}
	query, err := expandArgs(p.Query, args)
	if err != nil {
		return nil, fmt.Errorf("prometheus query: %w", err)
	}
	c, err := api.NewClient(api.Config{Address: p.Address, Client: client})
	if err != nil {
		return nil, fmt.Errorf("prometheus address %q: %w", p.Address, err)
	}
	return &prometheusProvider{client: c, address: p.Address, query: query, timeout: orDefault(p.Timeout, defaultPrometheusTimeout)}, nil
}

// promAnswer is the envelope of every Prometheus API answer.
type promAnswer struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType model.ValueType `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// measure gives a scalar or a one-sample vector as a float64, a longer
// vector as []float64 and an empty vector as NaN (for isNaN and default).
// Warnings are ignored.
func (p *prometheusProvider) measure(ctx context.Context) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	form := url.Values{
		"query": {p.query},
		"time":  {strconv.FormatFloat(float64(time.Now().UnixMilli())/1000, 'f', 3, 64)},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.client.URL("/api/v1/query", nil).String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("prometheus query %q at %s: %w", p.query, p.address, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body, err := p.client.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("prometheus query %q at %s: %w", p.query, p.address, err)
	}
	var ans promAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("prometheus query %q at %s answered %s, not the query API's JSON: %s", p.query, p.address, resp.Status, excerpt(body))
	}
	if ans.Status != "success" {
		return nil, fmt.Errorf("prometheus query %q at %s failed (%s): %s", p.query, p.address, ans.ErrorType, ans.Error)
	}
	return p.value(ans.Data.ResultType, ans.Data.Result)
}

// value converts the query's result to what conditions see.
func (p *prometheusProvider) value(kind model.ValueType, raw json.RawMessage) (any, error) {
	switch kind {
	case model.ValScalar:
		var s model.Scalar
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("decode scalar of prometheus query %q: %w", p.query, err)
		}
		return float64(s.Value), nil
	case model.ValVector:
		var v model.Vector
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("decode vector of prometheus query %q: %w", p.query, err)
		}
		switch len(v) {
		case 0:
			return math.NaN(), nil
		case 1:
			return float64(v[0].Value), nil
		}
		out := make([]float64, len(v))
		for i, s := range v {
			out[i] = float64(s.Value)
		}
		return out, nil
	case model.ValString:
		var s model.String
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("decode string of prometheus query %q: %w", p.query, err)
		}
		return s.Value, nil
	}
	return nil, fmt.Errorf("prometheus query %q gave a %s; write an instant query that gives a scalar or a vector", p.query, kind)
}
