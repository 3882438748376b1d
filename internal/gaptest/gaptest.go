// Package gaptest records what clients of an app see while the app goes
// from one version to the next with a gap in between (a recreate rollout),
// and checks it: one version, then nothing but 503s, then the next, never
// both at once. Tests of the controller and end-to-end tests use it.
package gaptest

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// Answer is what one request got, when it was sent and when the answer
// arrived.
type Answer struct {
	Sent, At   time.Time
	Status     int
	Version    string // the X-Version header
	RetryAfter string
	Err        string // the request failed: no status
}

// Load is clients asking an app in a loop, keep-alive, recording each
// answer.
type Load struct {
	mu      sync.Mutex
	answers []Answer
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// Start runs workers clients against url until Finish, for at most max.
func Start(url string, workers int, max time.Duration) *Load {
	ctx, cancel := context.WithTimeout(context.Background(), max)
	l := &Load{stop: cancel}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
			defer client.CloseIdleConnections()
			for ctx.Err() == nil {
				sent := time.Now()
				resp, err := client.Get(url)
				if err != nil && ctx.Err() != nil {
					return
				}
				a := Answer{Sent: sent}
				if err != nil {
					a.Err = err.Error()
				} else {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					a.Status, a.Version, a.RetryAfter = resp.StatusCode, resp.Header.Get("X-Version"), resp.Header.Get("Retry-After")
				}
				a.At = time.Now()
				l.mu.Lock()
				l.answers = append(l.answers, a)
				l.mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	return l
}

// Finish stops the clients and returns the answers in the order the app
// gave them: a 503 at the time its request was sent (the router answers it
// at once, and a request sent later may have reached the next version
// first), any other answer at the time it arrived.
func (l *Load) Finish() []Answer {
	l.stop()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	given := func(a Answer) time.Time {
		if a.Status == http.StatusServiceUnavailable {
			return a.Sent
		}
		return a.At
	}
	slices.SortStableFunc(l.answers, func(a, b Answer) int { return given(a).Compare(given(b)) })
	return l.answers
}

// Gap checks that answers show from, then a gap of 503s that all carry
// Retry-After, then only to (to may be from: the same version back), and
// no error: before the last 503 only from answered (requests in flight
// when the gap began may finish in it), after it only to. It returns the
// gap the clients saw, from the last answer of from to the first of to,
// and how many requests got 503.
func Gap(t testing.TB, answers []Answer, from, to string) (gap time.Duration, unavailable int) {
	t.Helper()
	last503 := -1
	for i, a := range answers {
		if a.Status == http.StatusServiceUnavailable {
			last503 = i
		}
	}
	if last503 < 0 || last503 == len(answers)-1 {
		t.Fatalf("of %d answers, none was a 503 followed by %s: no gap seen", len(answers), to)
	}
	var lastFrom time.Time
	for i, a := range answers {
		at := a.At.Format("15:04:05.000")
		switch {
		case a.Err != "":
			t.Errorf("request failed at %s: %s", at, a.Err)
		case a.Status == http.StatusServiceUnavailable:
			unavailable++
			if a.RetryAfter == "" {
				t.Errorf("503 at %s without Retry-After", at)
			}
		case a.Status != http.StatusOK:
			t.Errorf("answer at %s: status %d from %q", at, a.Status, a.Version)
		case i < last503 && a.Version != from:
			t.Errorf("%s answered at %s, before the gap ended: want only %s then", a.Version, at, from)
		case i < last503:
			lastFrom = a.At
		case a.Version != to:
			t.Errorf("%s answered at %s, after the gap: want only %s", a.Version, at, to)
		}
	}
	if lastFrom.IsZero() {
		t.Fatalf("%s never answered before the gap", from)
	}
	return answers[last503+1].At.Sub(lastFrom), unavailable
}
