package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/config"
)

// warmup sends the app's warmup requests (config.Warmup) to every replica
// of sr, before it gets any traffic, and reports how long they took. It
// fails at the first request that gets no answer or a 5xx, naming the
// replica; the deploy then fails with traffic where it was. It is bounded
// by the slot's deployTimeout, counted from its start as for smoke checks.
func (c *Controller) warmup(ctx context.Context, a *app, rollout int64, sr *slotRun) error {
	a.mu.Lock()
	w, timeout := a.cfg.Warmup, a.cfg.DeployTimeout.D()
	a.mu.Unlock()
	endpoints := sr.inst.Endpoints()
	if w == nil || len(endpoints) == 0 {
		return nil // validation keeps warmup to targets cutover's router reaches
	}
	parent := ctx
	ctx, cancel := context.WithDeadline(ctx, sr.deployDeadline)
	defer cancel()
	client := &http.Client{Transport: c.opts.Transport}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		first     error
	)
	failed := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = err
			cancel()
		}
	}
	var wg sync.WaitGroup
	for _, u := range endpoints {
		url := strings.TrimSuffix(u.String(), "/") + w.Path
		next := make(chan struct{})
		wg.Go(func() {
			defer close(next)
			for range w.Requests {
				select {
				case next <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		})
		for range w.Concurrency {
			wg.Go(func() {
				for range next {
					d, err := warmOnce(ctx, client, url)
					if err != nil {
						failed(err)
						return
					}
					mu.Lock()
					latencies = append(latencies, d)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	switch {
	case parent.Err() != nil:
		return context.Cause(parent) // aborted or stopping
	case first != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded):
		return fmt.Errorf("warmup: %d requests to each replica not done within deployTimeout %s (counted from the slot's start, readiness included): %w; send fewer or raise deployTimeout",
			w.Requests, timeout, first)
	case first != nil:
		return fmt.Errorf("warmup: %w; the deploy fails before any traffic moves", first)
	}
	c.event(a, rollout, sr.rev.Number, normal, "WarmedUp", warmupSummary(w, len(endpoints), latencies))
	return nil
}

// warmOnce sends one warmup request and returns how long its answer took.
// No answer, or a 5xx, is an error naming the URL.
func warmOnce(ctx context.Context, client *http.Client, url string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode >= 500 {
		return 0, fmt.Errorf("GET %s answered %s", url, resp.Status)
	}
	if err != nil {
		return 0, fmt.Errorf("GET %s: reading the answer: %w", url, err)
	}
	return took, nil
}

// warmupSummary says what a warmup did: its requests, and how long the
// first tenth of them took against the last tenth, which shows what
// warming changed.
func warmupSummary(w *config.Warmup, replicas int, latencies []time.Duration) string {
	n := len(latencies)
	tenth := max(n/10, 1)
	median := func(ds []time.Duration) time.Duration {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	return fmt.Sprintf("%d warmup request(s) to each of %d replica(s) on %s, %d at a time: median %s in the first tenth, %s in the last, slowest %s",
		w.Requests, replicas, w.Path, w.Concurrency,
		median(latencies[:tenth]).Round(time.Microsecond), median(latencies[n-tenth:]).Round(time.Microsecond),
		slices.Max(latencies).Round(time.Microsecond))
}
