package haproxy

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/traffic/haproxy/haproxytest"
)

// answer is one request of the load: when it started and ended, and
// what answered.
type answer struct {
	start, end time.Time
	body       string
	err        error
}

// load sends requests to url from clients keep-alive clients until ctx
// ends, and returns every answer.
func load(ctx context.Context, url string, clients int) func() []answer {
	var (
		mu      sync.Mutex
		answers []answer
		wg      sync.WaitGroup
	)
	for range clients {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
		wg.Go(func() {
			defer client.CloseIdleConnections()
			for ctx.Err() == nil {
				start := time.Now()
				body, err := get(context.WithoutCancel(ctx), client, url)
				mu.Lock()
				answers = append(answers, answer{start: start, end: time.Now(), body: body, err: err})
				mu.Unlock()
			}
		})
	}
	return func() []answer {
		wg.Wait()
		return answers
	}
}

// TestFlipsUnderLoadFailNoRequest flips 20 times between the slots, each
// time to a new revision on new replicas (new ports), while keep-alive
// clients send requests through HAProxy, which retries nothing (retries
// 0, no option redispatch): no request may fail, and every request sent
// once a Flip has returned (and answered before the next one) must reach
// the revision it flipped to. A poller reading "show servers state"
// meanwhile must never find the backend without a server UP. It runs with
// servers health checked, whose flips wait for a check to pass, and
// without.
func TestFlipsUnderLoadFailNoRequest(t *testing.T) {
	for _, tt := range []struct{ name, serverOpts string }{{"checked", "check inter 100ms"}, {"unchecked", ""}} {
		t.Run(tt.name, func(t *testing.T) { testFlipsUnderLoad(t, tt.serverOpts) })
	}
}

func testFlipsUnderLoad(t *testing.T, serverOpts string) {
	h := haproxytest.Start(t, 4, serverOpts)
	f := newFleet(t)
	p := newProvider(t, h, f)
	f.deploy("blue", "blue-0", 2)
	if err := p.Flip(t.Context(), "blue"); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	polled := pollUp(ctx, t, h)
	answers := load(ctx, h.URL, 4)

	type flip struct {
		called, returned time.Time
		name             string
	}
	var flips []flip
	var total time.Duration
	const n = 20
	for i := 1; i <= n; i++ {
		slot := slots[i%2]
		name := fmt.Sprintf("%s-%d", slot, i)
		f.deploy(slot, name, 2)
		called := time.Now()
		if err := p.Flip(ctx, slot); err != nil {
			t.Fatalf("flip %d to %s: %v", i, slot, err)
		}
		returned := time.Now()
		total += returned.Sub(called)
		flips = append(flips, flip{called: called, returned: returned, name: name})
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	got := answers()
	polls, emptyPolls := polled()

	var failed, misrouted int
	for _, a := range got {
		if a.err != nil {
			failed++
			t.Errorf("request at %s failed: %v", a.start.Format(time.StampMicro), a.err)
			continue
		}
		for i, fl := range flips {
			next := time.Now()
			if i+1 < len(flips) {
				next = flips[i+1].called
			}
			if !a.start.Before(fl.returned) && a.end.Before(next) && !strings.HasPrefix(a.body, fl.name) {
				misrouted++
				t.Errorf("request sent %s after flip to %s returned reached %s", a.start.Sub(fl.returned), fl.name, a.body)
			}
		}
	}
	t.Logf("%d flips, mean flip time %s; %d requests, %d failed, %d misrouted; %d polls of show servers state, %d without a server UP",
		n, total/n, len(got), failed, misrouted, polls, emptyPolls)
	if len(got) < 100 || polls < 100 {
		t.Fatalf("only %d requests and %d polls: the load did not run", len(got), polls)
	}
}

// pollUp reads h's backend web until ctx ends, failing t each time no
// server is UP. Its result waits for the end and says how many reads
// there were, and how many without a server UP.
func pollUp(ctx context.Context, t *testing.T, h *haproxytest.Server) func() (polls, empty int64) {
	var n, none int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		api := runtimeAPI{socket: h.Socket}
		for ctx.Err() == nil {
			list, err := api.servers(ctx, "web")
			if err != nil {
				continue
			}
			n++
			if !slices.ContainsFunc(list, server.up) {
				none++
				t.Errorf("no server UP: %v", list)
			}
		}
	}()
	return func() (int64, int64) {
		<-done
		return n, none
	}
}

// TestFlipToTheActiveSlotMovesItsServersInPlace flips, under load, to the
// slot that is active already, whose replicas now listen at new ports (as
// after a restart of cutover that restarted its processes): its servers,
// health checked, never leave the backend without a server UP and no
// request fails. With spare servers the new addresses go to those, and
// once the flip returns only the new replicas answer. Without, the
// servers move one at a time through maintenance, and HAProxy (2.6) goes
// on reusing its idle connections to the old replicas, still running
// here, after the address changed: the test only counts those requests.
func TestFlipToTheActiveSlotMovesItsServersInPlace(t *testing.T) {
	for _, tt := range []struct {
		name    string
		servers int
		stale   bool
	}{{"spare servers", 4, false}, {"no spare server", 2, true}} {
		t.Run(tt.name, func(t *testing.T) { testFlipToTheActiveSlot(t, tt.servers, tt.stale) })
	}
}

// testFlipToTheActiveSlot runs TestFlipToTheActiveSlotMovesItsServersInPlace
// with servers per slot; stale says that requests may still reach the old
// replicas once the flip returned.
func testFlipToTheActiveSlot(t *testing.T, servers int, stale bool) {
	h := haproxytest.Start(t, servers, "check inter 100ms")
	before, after := newFleet(t), newFleet(t)
	before.deploy("blue", "blue-before", 2)
	after.deploy("blue", "blue-after", 2)
	var current atomic.Pointer[fleet]
	current.Store(before)
	p, err := New(t.Context(), Options{Socket: h.Socket, Backend: "web"}, func(slot string) []*url.URL { return current.Load().endpoints(slot) })
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Flip(t.Context(), "blue"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	polled := pollUp(ctx, t, h)
	answers := load(ctx, h.URL, 4)
	time.Sleep(200 * time.Millisecond)
	current.Store(after)
	if err := p.Flip(ctx, "blue"); err != nil {
		t.Fatal(err)
	}
	returned := time.Now()
	time.Sleep(200 * time.Millisecond)
	cancel()
	var late int
	got := answers()
	for _, a := range got {
		switch {
		case a.err != nil:
			t.Errorf("request failed: %v", a.err)
		case a.start.After(returned) && a.body != "blue-after":
			late++
		}
	}
	polls, _ := polled()
	t.Logf("%d requests sent after the flip returned reached the old replicas; %d requests, %d polls", late, len(got), polls)
	if (late > 0 && !stale) || polls < 10 || len(got) < 100 {
		t.Errorf("%d requests sent after the flip returned reached the old replicas; %d requests, %d polls", late, len(got), polls)
	}
}

// TestSplitSendsTheCanaryItsWeight measures, through HAProxy, the share of
// 2,000 requests the canary gets at each weight, with 3 stable replicas
// and 1 canary one: within 2 points of the weight. Weight 0 and 100 send
// everything to one slot.
func TestSplitSendsTheCanaryItsWeight(t *testing.T) {
	h, _, p := startOnBlue(t, 4, "check inter 100ms", 3, 1)
	for _, weight := range []int{5, 25, 50, 0, 100} {
		share, err := p.Split(t.Context(), "blue", "green", weight)
		if err != nil {
			t.Fatalf("split %d%%: %v", weight, err)
		}
		if !share.Exact || share.Canary != weight || share.Total != 100 {
			t.Errorf("split %d%% reports %+v, want the exact weight", weight, share)
		}
		canary := canaryShare(t, h.URL, "green", 2000)
		t.Logf("weight %d%%: the canary got %.2f%% of 2000 requests", weight, canary)
		if canary < float64(weight)-2 || canary > float64(weight)+2 {
			t.Errorf("weight %d%%: the canary got %.2f%% of the requests", weight, canary)
		}
	}
}

// canaryShare sends n requests to url from 4 clients and returns the
// percent answered by canary.
func canaryShare(t *testing.T, url, canary string, n int) float64 {
	t.Helper()
	var hits, sent atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		client := &http.Client{Timeout: 10 * time.Second}
		wg.Go(func() {
			for sent.Add(1) <= int64(n) {
				body, err := get(t.Context(), client, url)
				if err != nil {
					t.Errorf("request: %v", err)
					return
				}
				if body == canary {
					hits.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return 100 * float64(hits.Load()) / float64(n)
}

// TestActiveIsReadBackByAFreshProvider reads Active from a provider made
// after each change, as a restarted cutover would: none before any flip,
// the flipped slot, and the stable slot during a split even when the
// canary has more of the weight.
func TestActiveIsReadBackByAFreshProvider(t *testing.T) {
	h := haproxytest.Start(t, 2, "")
	f := newFleet(t)
	f.deploy("blue", "blue", 1)
	f.deploy("green", "green", 2)
	active := func() string {
		t.Helper()
		got, err := newProvider(t, h, f).Active(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := active(); got != "" {
		t.Fatalf("before any flip, Active = %q, want none", got)
	}
	p := newProvider(t, h, f)
	if err := p.Flip(t.Context(), "blue"); err != nil {
		t.Fatal(err)
	}
	if got := active(); got != "blue" {
		t.Fatalf("after the flip to blue, Active = %q", got)
	}
	// The canary's servers readied a second after blue's, in HAProxy's
	// clock, which counts in seconds.
	time.Sleep(1100 * time.Millisecond)
	for _, weight := range []int{75, 25} {
		if _, err := p.Split(t.Context(), "blue", "green", weight); err != nil {
			t.Fatal(err)
		}
		if got := active(); got != "blue" {
			t.Fatalf("split at %d%% to green, Active = %q, want the stable blue", weight, got)
		}
	}
	if err := p.Flip(t.Context(), "green"); err != nil {
		t.Fatal(err)
	}
	if got := active(); got != "green" {
		t.Fatalf("after the flip to green, Active = %q", got)
	}
}

// TestRefusalsChangeNothing checks that a slot with more replicas than
// servers, or with none, is refused with HAProxy's state as it was, and
// that a missing socket, backend or server template is an error that
// says what to configure.
func TestRefusalsChangeNothing(t *testing.T) {
	h, f, p := startOnBlue(t, 2, "", 2, 3)
	before := stateOf(t, h, "web")
	for name, change := range map[string]func() error{
		"flip":  func() error { return p.Flip(t.Context(), "green") },
		"split": func() error { _, err := p.Split(t.Context(), "blue", "green", 10); return err },
	} {
		err := change()
		if err == nil || !strings.Contains(err.Error(), `"server-template green 1-3 ..."`) {
			t.Errorf("%s to 3 replicas with 2 green servers: %v, want an error that says to declare 3", name, err)
		}
		if after := stateOf(t, h, "web"); !reflect.DeepEqual(after, before) {
			t.Errorf("%s refused, but the servers changed:\n%v\nwere\n%v", name, after, before)
		}
	}
	f.deploy("green", "green", 0)
	if err := p.Flip(t.Context(), "green"); err == nil || !strings.Contains(err.Error(), "runs no replica") {
		t.Errorf("flip to a slot without replicas: %v", err)
	}
	if after := stateOf(t, h, "web"); !reflect.DeepEqual(after, before) {
		t.Errorf("flip to no replica refused, but the servers changed:\n%v\nwere\n%v", after, before)
	}

	for _, tt := range []struct {
		name string
		opts Options
		want []string
	}{
		{"unknown backend", Options{Socket: h.Socket, Backend: "nope"}, []string{"HAProxy has no backend nope", "web, web-preview, other"}},
		{"no server templates", Options{Socket: h.Socket, Backend: "other"}, []string{"backend other has no server blue1", "server-template blue 1-8"}},
		{"missing socket", Options{Socket: h.Socket + ".missing", Backend: "web"}, []string{"no such file", "stats socket " + h.Socket + ".missing level admin"}},
		{"TCP socket down", Options{Socket: fmt.Sprintf("127.0.0.1:%d", freePort(t)), Backend: "web"}, []string{"connection refused", "stats socket ipv4@127.0.0.1:"}},
	} {
		_, err := New(t.Context(), tt.opts, f.endpoints)
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want an error containing %q", tt.name, err, w)
			}
		}
	}
}

// TestFlipToServersThatStayDownIsUndone flips to a slot whose replica
// does not listen: its server's health check never passes, so the flip
// fails in time, the other slot keeps the traffic, and the slot's
// servers are back in maintenance.
func TestFlipToServersThatStayDownIsUndone(t *testing.T) {
	h := haproxytest.Start(t, 2, "check inter 100ms")
	f := newFleet(t)
	f.deploy("blue", "blue", 1)
	f.deploy("green", "green", 1)
	p, err := New(t.Context(), Options{Socket: h.Socket, Backend: "web", Timeout: time.Second}, f.endpoints)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Flip(t.Context(), "blue"); err != nil {
		t.Fatal(err)
	}
	before := stateOf(t, h, "web")
	f.mu.Lock()
	f.servers["green"][0].Close()
	f.mu.Unlock()
	err = p.Flip(t.Context(), "green")
	if err == nil || !strings.Contains(err.Error(), "green1") || !strings.Contains(err.Error(), "not UP") || !strings.Contains(err.Error(), "set back") {
		t.Fatalf("flip to a replica that does not listen: %v, want an error naming green1, not UP, set back", err)
	}
	if after := stateOf(t, h, "web"); !reflect.DeepEqual(after, before) {
		t.Errorf("after the failed flip the servers are\n%v\nwere\n%v", after, before)
	}
	if body, err := get(t.Context(), http.DefaultClient, h.URL); err != nil || body != "blue" {
		t.Errorf("after the failed flip: %q, %v; want blue to answer", body, err)
	}
}

// TestPreviewPointsThePreviewBackend checks that Preview sends the
// preview backend's requests to the slot, and none of the production
// ones.
func TestPreviewPointsThePreviewBackend(t *testing.T) {
	h, _, p := startOnBlue(t, 2, "", 1, 2)
	for _, slot := range []string{"green", "blue"} {
		if err := p.Preview(t.Context(), slot); err != nil {
			t.Fatal(err)
		}
		for range 4 {
			if body, err := get(t.Context(), http.DefaultClient, h.PreviewURL); err != nil || body != slot {
				t.Fatalf("preview of %s answers %q, %v", slot, body, err)
			}
			if body, err := get(t.Context(), http.DefaultClient, h.URL); err != nil || body != "blue" {
				t.Fatalf("production during the preview of %s answers %q, %v", slot, body, err)
			}
		}
	}
}

// startOnBlue starts HAProxy with n servers per slot declared with
// serverOpts, and blue and green replicas answering their slot's name,
// and flips to blue.
func startOnBlue(t *testing.T, n int, serverOpts string, blue, green int) (*haproxytest.Server, *fleet, *Provider) {
	t.Helper()
	h := haproxytest.Start(t, n, serverOpts)
	f := newFleet(t)
	p := newProvider(t, h, f)
	f.deploy("blue", "blue", blue)
	f.deploy("green", "green", green)
	if err := p.Flip(t.Context(), "blue"); err != nil {
		t.Fatal(err)
	}
	return h, f, p
}
