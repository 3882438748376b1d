// Command loadgen sends HTTP GETs to one 127.0.0.1 URL at a fixed rate and
// prints what came back as one JSON object. cutover's benchmark script
// (bench/run.sh) uses it for latency at a fixed rate and for counting failed
// requests while the router flips between versions.
//
// Usage:
//
//	loadgen -rate 2000 -duration 10s -connections 64 http://127.0.0.1:8080/
//
// Request i is scheduled at start + i/rate. Each of the -connections workers
// keeps one keep-alive connection, takes the next scheduled request, waits
// for its time and sends it. Latency is measured from the scheduled time, not
// from when a worker got round to sending, so a slow server is charged for
// the requests that queued behind a slow one (no coordinated omission).
// Requests still unsent when the run's deadline passes are counted as missed.
// SIGINT or SIGTERM end the schedule early; requests in flight finish and the
// result is printed as usual.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Bounds that keep a mistyped flag from turning into an unbounded run.
const (
	maxDuration    = 120 * time.Second
	maxRate        = 100_000
	maxConnections = 1024
)

// result is the JSON that loadgen prints.
type result struct {
	Sent      int            `json:"sent"`
	OK        int            `json:"ok"`
	Failed    int            `json:"failed"`
	Missed    int            `json:"missed"`
	Errors    map[string]int `json:"errors"`
	RPS       float64        `json:"rps"`
	P50ms     float64        `json:"p50_ms"`
	P90ms     float64        `json:"p90_ms"`
	P99ms     float64        `json:"p99_ms"`
	MaxMs     float64        `json:"max_ms"`
	ByVersion map[string]int `json:"by_version"`
}

// tally is one worker's record; workers merge theirs at the end so the hot
// path takes no lock.
type tally struct {
	ok, failed, missed int
	latencies          []time.Duration // of successful requests
	errors             map[string]int
	versions           map[string]int
}

func main() {
	rate := flag.Int("rate", 1000, "requests per second (1.."+fmt.Sprint(maxRate)+")")
	duration := flag.Duration("duration", 10*time.Second, "how long to send (at most "+maxDuration.String()+")")
	connections := flag.Int("connections", 32, "keep-alive connections, one per worker (1.."+fmt.Sprint(maxConnections)+")")
	timeout := flag.Duration("timeout", 5*time.Second, "per-request timeout")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "Usage: loadgen -rate N -duration D -connections C http://127.0.0.1:PORT/PATH")
		flag.PrintDefaults()
	}
	flag.Parse()

	target, err := checkArgs(*rate, *duration, *connections, *timeout, flag.Args())
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	res := run(ctx, target, *rate, *duration, *connections, *timeout)
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(res); err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: write result: %v\n", err)
		os.Exit(1)
	}
}

// checkArgs validates the flags and the URL; only http://127.0.0.1 is allowed.
func checkArgs(rate int, duration time.Duration, connections int, timeout time.Duration, args []string) (string, error) {
	switch {
	case len(args) != 1:
		return "", fmt.Errorf("want exactly one URL after the flags, got %d arguments", len(args))
	case rate < 1 || rate > maxRate:
		return "", fmt.Errorf("-rate %d is outside 1..%d", rate, maxRate)
	case duration <= 0 || duration > maxDuration:
		return "", fmt.Errorf("-duration %s is outside (0, %s]", duration, maxDuration)
	case connections < 1 || connections > maxConnections:
		return "", fmt.Errorf("-connections %d is outside 1..%d", connections, maxConnections)
	case timeout <= 0 || timeout > maxDuration:
		return "", fmt.Errorf("-timeout %s is outside (0, %s]", timeout, maxDuration)
	}
	u, err := url.Parse(args[0])
	if err != nil {
		return "", fmt.Errorf("parse URL %q: %w", args[0], err)
	}
	if u.Scheme != "http" || u.Hostname() != "127.0.0.1" {
		return "", fmt.Errorf("URL %q: loadgen only loads http://127.0.0.1:PORT/...", args[0])
	}
	return u.String(), nil
}

// schedule hands out send times: request i is due at start + i*interval.
// Workers share one schedule; claiming a request is one atomic add.
type schedule struct {
	start    time.Time
	interval time.Duration
	total    int64
	// deadline: a request not sent by then has waited a whole timeout for a
	// free connection; it is counted as missed rather than sent late.
	deadline time.Time
	next     atomic.Int64
}

// claim takes the next request, waits until it is due and returns its due
// time. late reports that the deadline had passed, so it must not be sent.
// ok is false when the schedule is used up or ctx is done.
func (s *schedule) claim(ctx context.Context) (due time.Time, late, ok bool) {
	i := s.next.Add(1) - 1
	if i >= s.total {
		return time.Time{}, false, false
	}
	due = s.start.Add(time.Duration(i) * s.interval)
	if wait := time.Until(due); wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return time.Time{}, false, false
		case <-timer.C:
		}
	}
	if ctx.Err() != nil {
		return time.Time{}, false, false
	}
	return due, time.Now().After(s.deadline), true
}

// run sends the schedule over connections workers and merges their tallies.
func run(ctx context.Context, target string, rate int, duration time.Duration, connections int, timeout time.Duration) result {
	start := time.Now()
	s := &schedule{
		start:    start,
		interval: time.Second / time.Duration(rate),
		total:    int64(rate) * int64(duration) / int64(time.Second),
		deadline: start.Add(duration + timeout),
	}
	tallies := make([]tally, connections)
	var wg sync.WaitGroup
	for w := range tallies {
		wg.Add(1)
		go func(t *tally) {
			defer wg.Done()
			client := &http.Client{
				Timeout:   timeout,
				Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true},
				// A redirect is an answer to count, never a hop to another host.
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}
			defer client.CloseIdleConnections()
			t.errors, t.versions = map[string]int{}, map[string]int{}
			for {
				due, late, ok := s.claim(ctx)
				if !ok {
					return
				}
				if late {
					t.missed++
					continue
				}
				resp, err := client.Get(target)
				if err == nil {
					// Read the whole body so the connection is reused.
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				t.record(resp, err, time.Since(due))
			}
		}(&tallies[w])
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := result{Errors: map[string]int{}, ByVersion: map[string]int{}}
	var latencies []time.Duration
	for _, t := range tallies {
		res.OK += t.ok
		res.Failed += t.failed
		res.Missed += t.missed
		latencies = append(latencies, t.latencies...)
		for k, n := range t.errors {
			res.Errors[k] += n
		}
		for k, n := range t.versions {
			res.ByVersion[k] += n
		}
	}
	res.Sent = res.OK + res.Failed
	res.RPS = round1(float64(res.Sent) / elapsed.Seconds())
	slices.Sort(latencies)
	res.P50ms = ms(percentile(latencies, 50))
	res.P90ms = ms(percentile(latencies, 90))
	res.P99ms = ms(percentile(latencies, 99))
	res.MaxMs = ms(percentile(latencies, 100))
	return res
}

// record counts one response (or error). latency runs from the scheduled time.
func (t *tally) record(resp *http.Response, err error, latency time.Duration) {
	if resp != nil {
		if v := resp.Header.Get("X-Version"); v != "" {
			t.versions[v]++
		}
	}
	switch {
	case err != nil:
		t.failed++
		t.errors[errorKind(err)]++
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		t.failed++
		t.errors[fmt.Sprintf("status %d", resp.StatusCode)]++
	default:
		t.ok++
		t.latencies = append(t.latencies, latency)
	}
}

// errorKind names a transport error briefly, without the URL, so errors of
// one kind add up under one key.
func errorKind(err error) string {
	var netErr net.Error
	switch {
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed early"
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err.Error()
	}
	return err.Error()
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value with at least p% of the values at
// or below it. It returns 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// ms converts d to milliseconds with microsecond precision.
func ms(d time.Duration) float64 { return round3(d.Seconds() * 1000) }

func round1(f float64) float64 { return math.Round(f*10) / 10 }
func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
