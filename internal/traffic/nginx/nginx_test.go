package nginx

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/freeport"
	"github.com/cutover/cutover/internal/gaptest"
	"github.com/cutover/cutover/internal/traffic/nginx/nginxtest"
)

// slots are the replicas of each slot: real HTTP servers on 127.0.0.1
// answering their slot's name.
type slots struct {
	mu  sync.Mutex
	eps map[string][]*url.URL
}

func (s *slots) endpoints(slot string) []*url.URL {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eps[slot]
}

func (s *slots) set(slot string, eps ...*url.URL) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eps[slot] = eps
}

// serve starts n servers that answer name and makes them slot's replicas.
func (s *slots) serve(t *testing.T, slot string, n int) {
	t.Helper()
	var eps []*url.URL
	for range n {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, slot) }))
		t.Cleanup(srv.Close)
		u, _ := url.Parse(srv.URL)
		eps = append(eps, u)
	}
	s.set(slot, eps...)
}

// rig is an nginx and a provider writing its upstream file.
type rig struct {
	nginx *nginxtest.Server
	slots *slots
	p     *Provider
}

func newRig(t *testing.T, change func(*Options)) *rig {
	t.Helper()
	n := nginxtest.Start(t)
	r := &rig{nginx: n, slots: &slots{eps: map[string][]*url.URL{}}}
	opts := Options{File: n.UpstreamFile, Upstream: "web_backend", PreviewUpstream: "web_preview",
		Test: n.Test, Reload: n.Reload, PIDFile: n.PIDFile, VerifyURL: n.URL + "/healthz", VerifyTimeout: 5 * time.Second}
	if change != nil {
		change(&opts)
	}
	p, err := New(opts, r.slots.endpoints)
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	return r
}

// get fetches url on a new connection and returns the body.
func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	return string(b)
}

// wantServes checks that a few requests on new connections all reach slot.
func (r *rig) wantServes(t *testing.T, url, slot string) {
	t.Helper()
	for range 5 {
		if got := get(t, url); got != slot {
			t.Fatalf("%s answers %q, want %q", url, got, slot)
		}
	}
}

func TestFlipsUnderLoadLoseNoRequest(t *testing.T) {
	r := newRig(t, nil)
	r.slots.serve(t, "blue", 2)
	r.slots.serve(t, "green", 2)
	ctx := context.Background()
	if err := r.p.Flip(ctx, "blue"); err != nil {
		t.Fatal(err)
	}
	r.wantServes(t, r.nginx.URL, "blue")

	// A few clients on kept-alive connections, as a load balancer's are.
	load := gaptest.Start(r.nginx.URL+"/", 4, 2*time.Minute)
	t.Cleanup(func() { load.Finish() })
	const flips = 20
	var total, longest time.Duration
	slot := "blue"
	for range flips {
		slot = map[string]string{"blue": "green", "green": "blue"}[slot]
		start := time.Now()
		if err := r.p.Flip(ctx, slot); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		total, longest = total+took, max(longest, took)
		r.wantServes(t, r.nginx.URL, slot)
		time.Sleep(100 * time.Millisecond) // load on the new workers before the next flip
	}
	answers := load.Finish()
	var failed []gaptest.Answer
	for _, a := range answers {
		if a.Status != http.StatusOK {
			failed = append(failed, a)
		}
	}
	t.Logf("nginx: %d flips (test+reload+workers replaced+verify): mean %s, longest %s; %d requests through nginx, %d failed",
		flips, (total / flips).Round(time.Millisecond), longest.Round(time.Millisecond), len(answers), len(failed))
	if len(failed) > 0 {
		t.Fatalf("%d of %d requests failed across %d flips; the first: %+v", len(failed), len(answers), flips, failed[0])
	}
	if len(answers) < 100 {
		t.Fatalf("only %d requests ran during the flips", len(answers))
	}
}

// The canary has fewer replicas than stable: the per-server weights must
// still give the slots the weight set.
func TestSplitWeightsThroughNginxAreTheWeightsSet(t *testing.T) {
	r := newRig(t, nil)
	r.slots.serve(t, "blue", 2)
	r.slots.serve(t, "green", 1)
	ctx := context.Background()
	if err := r.p.Flip(ctx, "blue"); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	for _, weight := range []int{5, 25, 50} {
		share, err := r.p.Split(ctx, "blue", "green", weight)
		if err != nil {
			t.Fatal(err)
		}
		if !share.Exact || share.Canary != weight || share.Total != 100 {
			t.Fatalf("Split(%d) = %+v, want exact %d of 100", weight, share, weight)
		}
		const n = 2000
		green := 0
		for range n {
			resp, err := c.Get(r.nginx.URL + "/")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) == "green" {
				green++
			}
		}
		got := float64(green) * 100 / n
		t.Logf("nginx: weight %d%%: %d of %d requests reached the canary (%.2f%%)", weight, green, n, got)
		if got < float64(weight)-2 || got > float64(weight)+2 {
			t.Fatalf("weight %d: the canary got %.2f%% of %d requests, want within 2 points", weight, got, n)
		}
		// What a restarted cutover reads back.
		again, err := New(r.p.opts, r.slots.endpoints)
		if err != nil {
			t.Fatal(err)
		}
		if active, err := again.Active(ctx); err != nil || active != "blue" {
			t.Fatalf("Active during the split = %q, %v; want the stable slot blue", active, err)
		}
	}
	if _, err := r.p.Split(ctx, "blue", "green", 0); err != nil {
		t.Fatal(err)
	}
	r.wantServes(t, r.nginx.URL, "blue")
	if _, err := r.p.Split(ctx, "blue", "green", 100); err != nil {
		t.Fatal(err)
	}
	r.wantServes(t, r.nginx.URL, "green")
	if active, err := r.p.Active(ctx); err != nil || active != "green" {
		t.Fatalf("Active after weight 100 = %q, %v; want green", active, err)
	}
}

func TestPreviewPointsThePreviewBlockAtTheNewSlot(t *testing.T) {
	r := newRig(t, nil)
	r.slots.serve(t, "blue", 1)
	r.slots.serve(t, "green", 1)
	ctx := context.Background()
	if err := r.p.Preview(ctx, "blue"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.nginx.UpstreamFile); !os.IsNotExist(err) {
		t.Fatalf("a preview before the first flip wrote the file (%v)", err)
	}
	if err := r.p.Flip(ctx, "blue"); err != nil {
		t.Fatal(err)
	}
	if err := r.p.Preview(ctx, "green"); err != nil {
		t.Fatal(err)
	}
	r.wantServes(t, r.nginx.URL, "blue")
	r.wantServes(t, r.nginx.PreviewURL, "green")

	// An abort stops the previewed slot: the preview block goes back to
	// the active one rather than refusing the next change.
	r.slots.set("green")
	if _, err := r.p.Split(ctx, "blue", "green", 0); err != nil {
		t.Fatal(err)
	}
	r.wantServes(t, r.nginx.PreviewURL, "blue")

	r.slots.serve(t, "green", 1)
	if err := r.p.Flip(ctx, "green"); err != nil {
		t.Fatal(err)
	}
	r.wantServes(t, r.nginx.URL, "green")
	r.wantServes(t, r.nginx.PreviewURL, "green")
}

// failedFlip flips r to green, which must fail with an error containing
// why, and checks that the file and the traffic stayed on blue.
func (r *rig) failedFlip(t *testing.T, why string) {
	t.Helper()
	before, err := os.ReadFile(r.nginx.UpstreamFile)
	if err != nil {
		t.Fatal(err)
	}
	err = r.p.Flip(context.Background(), "green")
	if err == nil || !strings.Contains(err.Error(), why) {
		t.Fatalf("Flip(green) = %v, want an error saying %q", err, why)
	}
	t.Logf("the flip's error: %v", err)
	after, err := os.ReadFile(r.nginx.UpstreamFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Fatalf("the upstream file changed:\n%s\nwas:\n%s", after, before)
	}
	r.wantServes(t, r.nginx.URL, "blue")
	if active, err := r.p.Active(context.Background()); err != nil || active != "blue" {
		t.Fatalf("Active = %q, %v; want blue", active, err)
	}
}

func TestFlipThatNginxRefusesRestoresTheFileAndKeepsServing(t *testing.T) {
	r := newRig(t, nil)
	r.slots.serve(t, "blue", 2)
	if err := r.p.Flip(context.Background(), "blue"); err != nil {
		t.Fatal(err)
	}
	// nginx resolves an upstream's host names when it reads its config.
	unknown, _ := url.Parse("http://no-such-host.invalid:8080")
	r.slots.set("green", unknown)
	r.failedFlip(t, "the config test refused it")
	r.failedFlip(t, "no-such-host.invalid")
	r.failedFlip(t, "the previous upstream file is back")
}

func TestFlipToReplicasThatDoNotAnswerComesBack(t *testing.T) {
	r := newRig(t, func(o *Options) { o.VerifyTimeout = 2 * time.Second })
	r.slots.serve(t, "blue", 1)
	if err := r.p.Flip(context.Background(), "blue"); err != nil {
		t.Fatal(err)
	}
	port, err := freeport.Get() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	dead, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", port))
	r.slots.set("green", dead)
	r.failedFlip(t, "nginx did not answer after the reload")
}

func TestFlipRefusesASlotWithoutReplicas(t *testing.T) {
	r := newRig(t, nil)
	r.slots.serve(t, "blue", 1)
	if err := r.p.Flip(context.Background(), "blue"); err != nil {
		t.Fatal(err)
	}
	r.failedFlip(t, "slot green has no replicas")
}

func TestUpstreamFileEditedByHandIsRefusedAndLeftAsIs(t *testing.T) {
	r := newRig(t, nil)
	r.slots.serve(t, "blue", 1)
	r.slots.serve(t, "green", 1)
	ctx := context.Background()
	if err := r.p.Flip(ctx, "blue"); err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(r.nginx.UpstreamFile)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"edited":  strings.Replace(string(written), "server ", "server 127.0.0.1:1 backup;\n    server ", 1),
		"foreign": "upstream web_backend {\n    server 127.0.0.1:9000;\n}\n",
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(r.nginx.UpstreamFile, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"edited": "changed since cutover wrote it", "foreign": "not written by cutover"}[name]
			err := r.p.Flip(ctx, "green")
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), r.nginx.UpstreamFile) {
				t.Fatalf("Flip over a file %s = %v, want an error naming the file and saying %q", name, err, want)
			}
			t.Logf("the refusal: %v", err)
			if _, err := r.p.Split(ctx, "blue", "green", 10); err == nil {
				t.Fatal("Split over it succeeded")
			}
			if _, err := r.p.Active(ctx); err == nil {
				t.Fatal("Active read it as cutover's")
			}
			after, _ := os.ReadFile(r.nginx.UpstreamFile)
			if string(after) != content {
				t.Fatalf("the file was overwritten:\n%s", after)
			}
		})
	}
}
