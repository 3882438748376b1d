package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// probeAnswers sends requests to url from the moment it is called until
// it has seen 200 for a second or limit passes. Connection errors (nothing
// listens yet) are retried; every answer is counted by status.
func probeAnswers(url string, workers int, limit time.Duration) map[int]int {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var mu sync.Mutex
	codes := map[int]int{}
	var firstOK time.Time
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			for ctx.Err() == nil {
				resp, err := client.Get(url)
				if err != nil {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				if resp.StatusCode == http.StatusOK && firstOK.IsZero() {
					firstOK = time.Now()
				}
				done := !firstOK.IsZero() && time.Since(firstOK) > time.Second
				mu.Unlock()
				if done {
					return
				}
			}
		})
	}
	wg.Wait()
	return codes
}

// After a restart the app's listener takes no request before the restored
// revision is ready again: clients wait a moment, none gets a 503.
func TestRestartAnswersNo503WhileTheActiveRevisionStartsAgain(t *testing.T) {
	s := newSetup(t)
	s.writeConfig(t)
	srv := s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	srv.stop(t)

	s.start(t)
	codes := probeAnswers(s.appURL(), 4, 60*time.Second)
	if codes[http.StatusOK] == 0 || len(codes) != 1 {
		t.Fatalf("answers by status while cutover restarted: %v; want only 200", codes)
	}
	t.Logf("answers by status while cutover restarted: %v", fmt.Sprint(codes))
}
