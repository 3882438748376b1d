package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
)

// answerLog records every answer of a bounded load with when it arrived.
type answerLog struct {
	mu      sync.Mutex
	answers []timedAnswer
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

type timedAnswer struct {
	at                          time.Time // when the answer (or the error) arrived
	status                      int
	version, retryAfter, failed string
}

// recordAnswers runs workers keep-alive clients against url for at most
// max, recording each answer.
func recordAnswers(url string, workers int, max time.Duration) *answerLog {
	ctx, cancel := context.WithTimeout(context.Background(), max)
	l := &answerLog{stop: cancel}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
			defer client.CloseIdleConnections()
			for ctx.Err() == nil {
				resp, err := client.Get(url)
				if err != nil && ctx.Err() != nil {
					return
				}
				a := timedAnswer{}
				if err != nil {
					a.failed = err.Error()
				} else {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					a.status, a.version, a.retryAfter = resp.StatusCode, resp.Header.Get("X-Version"), resp.Header.Get("Retry-After")
				}
				a.at = time.Now()
				l.mu.Lock()
				l.answers = append(l.answers, a)
				l.mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	return l
}

// finish stops the load and returns its answers in the order they arrived.
func (l *answerLog) finish() []timedAnswer {
	l.stop()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answers
}

// gapOf checks that from answered, then nothing but 503s with Retry-After,
// then to (never both at once, no error), and returns the gap the load
// saw: from the last answer of from to the first of to, and the 503s.
func gapOf(t *testing.T, answers []timedAnswer, from, to string) (gap time.Duration, unavailable int) {
	t.Helper()
	var lastFrom, firstTo time.Time
	for _, a := range answers {
		switch {
		case a.failed != "":
			t.Errorf("request failed at %s: %s", a.at.Format("15:04:05.000"), a.failed)
		case a.status == http.StatusServiceUnavailable:
			unavailable++
			if a.retryAfter == "" {
				t.Errorf("503 at %s without Retry-After", a.at.Format("15:04:05.000"))
			}
		case a.status == http.StatusOK && a.version == from:
			if !firstTo.IsZero() {
				t.Errorf("%s answered at %s, after %s first answered at %s: both versions served", from, a.at.Format("15:04:05.000"), to, firstTo.Format("15:04:05.000"))
			}
			lastFrom = a.at
		case a.status == http.StatusOK && a.version == to:
			if firstTo.IsZero() {
				firstTo = a.at
			}
		default:
			t.Errorf("answer at %s: status %d from %q", a.at.Format("15:04:05.000"), a.status, a.version)
		}
	}
	if lastFrom.IsZero() || firstTo.IsZero() {
		t.Fatalf("the load saw %s last at %v and %s first at %v; want both", from, lastFrom, to, firstTo)
	}
	return firstTo.Sub(lastFrom), unavailable
}

// recreateSetup is an app of 2 sample-app replicas with the recreate
// strategy, serving v1.
func recreateSetup(t *testing.T) *setup {
	t.Helper()
	s := newSetup(t)
	s.DeployTimeout = "5s"
	s.Strategy = "      recreate: {drainTimeout: 10s}"
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	return s
}

// reportedDowntime reads the last rollout's downtime from `cutover status`
// (JSON and text) and checks that `cutover history` shows it too.
func reportedDowntime(t *testing.T, s *setup) (time.Duration, controller.AppStatus) {
	t.Helper()
	var st controller.AppStatus
	if err := json.Unmarshal([]byte(s.mustCLI(t, "status", "web", "-o", "json").stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.Rollout == nil || st.Rollout.DowntimeMs <= 0 {
		t.Fatalf("status reports no downtime: %+v", st.Rollout)
	}
	d := time.Duration(st.Rollout.DowntimeMs) * time.Millisecond
	text := s.mustCLI(t, "status", "web").stdout
	if want := fmt.Sprintf("recreate: %s without a serving replica", d); !strings.Contains(text, want) {
		t.Errorf("status does not say %q:\n%s", want, text)
	}
	hist := s.mustCLI(t, "history", "web").stdout
	if !strings.Contains(hist, "Downtime") || !strings.Contains(hist, "without a serving replica") {
		t.Errorf("history does not show the downtime:\n%s", hist)
	}
	return d, st
}

func TestRecreateUnderLoadNeverServesBothVersionsAndReportsTheGapItCaused(t *testing.T) {
	s := recreateSetup(t)
	load := recordAnswers(s.appURL(), 4, 2*time.Minute)
	time.Sleep(300 * time.Millisecond)
	r := s.mustCLI(t, "deploy", "web", "--version", "v2")
	time.Sleep(300 * time.Millisecond)
	answers := load.finish()
	if !strings.Contains(r.stderr, "Downtime") || !strings.Contains(r.stdout, "without a serving replica") {
		t.Errorf("deploy does not show the downtime:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	t.Logf("deploy's events:\n%s", r.stderr)
	seen, unavailable := gapOf(t, answers, "v1", "v2")
	reported, st := reportedDowntime(t, s)
	t.Logf("recreate v1 → v2 under 4 clients: %d requests, %d answered 503 during the gap; gap seen by the load %s, reported downtime %s",
		len(answers), unavailable, seen.Round(time.Millisecond), reported)
	if unavailable == 0 {
		t.Errorf("no request got a 503 during a gap of %s", seen)
	}
	if seen > reported+time.Second || reported > seen+time.Second {
		t.Errorf("the load saw a gap of %s, status reports %s: want them within 1s of each other", seen, reported)
	}
	if st.Version != "v2" {
		t.Errorf("status: version %s serves, want v2", st.Version)
	}
	for _, sl := range st.Slots {
		if sl.Name != st.ActiveSlot && (sl.Phase != "empty" || len(sl.Replicas) > 0) {
			t.Errorf("slot %s is %s with %d replica(s) after a recreate; want it empty", sl.Name, sl.Phase, len(sl.Replicas))
		}
	}
}

func TestRecreateOfAVersionThatNeverGetsReadyBringsThePreviousOneBack(t *testing.T) {
	s := recreateSetup(t)
	load := recordAnswers(s.appURL(), 4, 2*time.Minute)
	time.Sleep(300 * time.Millisecond)
	r := s.cli(t, "deploy", "web", "--version", "v2", "--command", cutoverBin+" sample-app --version v2 --never-ready")
	time.Sleep(300 * time.Millisecond)
	answers := load.finish()
	if r.code != 1 {
		t.Fatalf("deploy of a never-ready version: exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// v2 never answered: v1, the gap, v1 again.
	var before, after []timedAnswer
	for i, a := range answers {
		if a.status == http.StatusServiceUnavailable {
			before = answers[:i]
			break
		}
	}
	for i := len(answers) - 1; i >= 0; i-- {
		if answers[i].status == http.StatusServiceUnavailable {
			after = answers[i+1:]
			break
		}
	}
	if len(before) == 0 || len(after) == 0 {
		t.Fatalf("the load saw no v1 before and after a gap (%d answers)", len(answers))
	}
	for _, a := range answers {
		if a.failed != "" || (a.status != http.StatusOK && a.status != http.StatusServiceUnavailable) || (a.status == http.StatusOK && a.version != "v1") {
			t.Errorf("answer at %s: status %d from %q, error %q", a.at.Format("15:04:05.000"), a.status, a.version, a.failed)
		}
	}
	seen := after[0].at.Sub(before[len(before)-1].at)
	reported, st := reportedDowntime(t, s)
	t.Logf("recreate of a never-ready v2 (deployTimeout 5s), v1 back: gap seen by the load %s, reported downtime %s", seen.Round(time.Millisecond), reported)
	if seen > reported+time.Second || reported > seen+time.Second {
		t.Errorf("the load saw a gap of %s, status reports %s: want them within 1s of each other", seen, reported)
	}
	if st.Version != "v1" || st.Rollout.Phase != "RolledBack" {
		t.Errorf("status: %s serves, rollout %s; want v1 back and the rollout RolledBack", st.Version, st.Rollout.Phase)
	}
}
