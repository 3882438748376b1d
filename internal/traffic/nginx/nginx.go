// Package nginx moves an app's traffic with an nginx the team already
// runs at its edge: cutover writes an upstream block with the replicas
// of the active slot (of both slots, weighted, during a canary) in a
// file of its own that the team's nginx.conf includes, then runs the
// config test, reloads nginx and checks, through nginx, that the app
// still answers. When any of the three fails, the previous file comes
// back and nginx is reloaded again: traffic never ends up on nothing.
//
// The file is cutover's alone. Its first lines say so and record the
// active slot, the canary's weight and a checksum of the rest, which is
// how a restarted cutover reads the state back and how it sees an edit:
// a file cutover did not write, or one changed since, is refused and
// left as it is.
package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/traffic"
)

var (
	_ traffic.Splitter = (*Provider)(nil)
	_ traffic.Restorer = (*Provider)(nil)
)

// Options name the file cutover writes and how to reload nginx.
type Options struct {
	// File is the upstream file, included by nginx.conf in http{}.
	File string
	// Upstream names the block production traffic goes to.
	Upstream string
	// PreviewUpstream, when set, names a second block: the slot last
	// previewed while it runs, else the active one.
	PreviewUpstream string
	// Test checks nginx's config, such as [nginx -t].
	Test []string
	// Reload makes nginx read it again, such as [nginx -s reload].
	Reload []string
	// PIDFile is nginx's pid file. When it names a running master (on
	// Linux), each reload waits until the master has replaced its
	// workers, so that no request reaches the previous upstreams after a
	// change returns; empty, or without one, the verify requests alone
	// say the reload took.
	PIDFile string
	// VerifyURL is fetched through nginx after each reload; it must
	// answer below 500 verifyInARow times in a row within VerifyTimeout.
	VerifyURL     string
	VerifyTimeout time.Duration
}

// verifyInARow is how many answers in a row show nginx serves again;
// verifyGap spaces them, so that when no pid file told that the new
// workers took over, they span nginx's workers replacing their elders;
// replacedGap when one did.
const (
	verifyInARow = 3
	verifyGap    = 50 * time.Millisecond
	replacedGap  = 5 * time.Millisecond
	// commandTimeout bounds a test or reload command.
	commandTimeout = 30 * time.Second
)

// Provider writes an app's upstream file. It is safe for concurrent use.
type Provider struct {
	opts      Options
	endpoints traffic.SlotEndpoints
	verify    *http.Client

	mu sync.Mutex // one write, test and reload at a time
}

// New returns a provider that points opts.Upstream at the replicas
// endpoints gives for each slot.
func New(opts Options, endpoints traffic.SlotEndpoints) (*Provider, error) {
	switch {
	case opts.File == "" || opts.Upstream == "":
		return nil, errors.New("nginx traffic needs an upstream file and an upstream name")
	case len(opts.Test) == 0 || len(opts.Reload) == 0:
		return nil, errors.New("nginx traffic needs a test and a reload command")
	case opts.VerifyURL == "" || opts.VerifyTimeout <= 0:
		return nil, errors.New("nginx traffic needs a URL to verify through nginx, and a timeout")
	}
	// Each verify request on a connection of its own: one kept alive
	// would stay with a worker that the reload retires.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: opts.VerifyTimeout}
	return &Provider{opts: opts, endpoints: endpoints, verify: client}, nil
}

// Flip points the upstream block at slot's replicas only, and the
// preview block too. It refuses, changing nothing, when slot has none.
func (p *Provider) Flip(ctx context.Context, slot string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.change(ctx, func(*state) state { return state{Active: slot, Preview: slot} })
}

// Restore is Flip: the file is written anew with slot's replicas as they
// are now, after a restart of cutover started them on new addresses.
func (p *Provider) Restore(ctx context.Context, slot string) error {
	return p.Flip(ctx, slot)
}

// Split sends weight percent of the requests to canary's replicas and the
// rest to stable's, by nginx's weighted round robin; weight 0 sends them
// all to stable and 100 is Flip(canary). The weights are exact.
func (p *Provider) Split(ctx context.Context, stable, canary string, weight int) (traffic.Share, error) {
	weight = min(max(weight, 0), 100)
	if weight == 100 {
		if err := p.Flip(ctx, canary); err != nil {
			return traffic.Share{}, err
		}
		return traffic.Share{Canary: 100, Total: 100, Exact: true}, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.change(ctx, func(old *state) state {
		s := state{Active: stable, Preview: old.Preview}
		if weight > 0 {
			s.Canary, s.Weight = canary, weight
		}
		return s
	})
	if err != nil {
		return traffic.Share{}, err
	}
	return traffic.Share{Canary: weight, Total: 100, Exact: true}, nil
}

// Preview points the preview block at slot. Without a preview block, or
// before the first flip (there is no production block to keep yet), it
// does nothing.
func (p *Provider) Preview(ctx context.Context, slot string) error {
	if p.opts.PreviewUpstream == "" {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, s, err := read(p.opts.File)
	if err != nil || s.Active == "" {
		return err
	}
	return p.change(ctx, func(old *state) state {
		s := *old
		s.Preview = slot
		return s
	})
}

// Active returns the slot the upstream file sends production traffic to
// (the stable one during a canary), or "" before the first flip.
func (p *Provider) Active(ctx context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, s, err := read(p.opts.File)
	return s.Active, err
}

// change writes the file for the state next returns from the current
// one, then tests, reloads and verifies; on any failure it puts the
// previous file back. Callers hold p.mu.
func (p *Provider) change(ctx context.Context, next func(*state) state) error {
	old, s, err := read(p.opts.File)
	if err != nil {
		return err
	}
	s = next(&s)
	if s.Preview != s.Active && len(p.endpoints(s.Preview)) == 0 {
		s.Preview = s.Active // the previewed slot stopped since (an abort)
	}
	body, err := p.render(s)
	if err != nil {
		return err
	}
	data := encode(s, body)
	if bytes.Equal(data, old) {
		return nil
	}
	if err := write(p.opts.File, data); err != nil {
		return err
	}
	if reloaded, err := p.apply(ctx); err != nil {
		return p.restore(old, s, reloaded, err)
	}
	return nil
}

// render writes the upstream blocks for s.
func (p *Provider) render(s state) (string, error) {
	active, err := p.replicas(s.Active)
	if err != nil {
		return "", err
	}
	main := servers(active, 1)
	if s.Canary != "" {
		canary, err := p.replicas(s.Canary)
		if err != nil {
			return "", err
		}
		ws, wc := weights(100-s.Weight, len(active), s.Weight, len(canary))
		main = append(servers(active, ws), servers(canary, wc)...)
	}
	body := block(p.opts.Upstream, main)
	if p.opts.PreviewUpstream != "" {
		preview := active
		if s.Preview != "" && s.Preview != s.Active {
			if preview, err = p.replicas(s.Preview); err != nil {
				return "", err
			}
		}
		body += block(p.opts.PreviewUpstream, servers(preview, 1))
	}
	return body, nil
}

// replicas returns slot's endpoints, refusing a slot that has none.
func (p *Provider) replicas(slot string) ([]*url.URL, error) {
	eps := p.endpoints(slot)
	if len(eps) == 0 {
		return nil, fmt.Errorf("slot %s has no replicas to send traffic to; the upstream file was left as it is", slot)
	}
	return eps, nil
}

// weights returns each stable and each canary server's weight so that
// the stable slot's nStable servers together get stable parts of the
// requests and the canary's nCanary servers canary parts, reduced to the
// smallest such integers.
func weights(stable, nStable, canary, nCanary int) (perStable, perCanary int) {
	perStable, perCanary = stable*nCanary, canary*nStable
	g := gcd(perStable, perCanary)
	return perStable / g, perCanary / g
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// apply tests the config on disk, reloads nginx and verifies through it;
// reloaded says whether nginx may have read the file.
func (p *Provider) apply(ctx context.Context) (reloaded bool, err error) {
	if err := run(ctx, p.opts.Test); err != nil {
		return false, fmt.Errorf("the config test refused it: %w", err)
	}
	replaced, err := p.reload(ctx)
	if err != nil {
		return true, err
	}
	if err := p.verifyThrough(ctx, replaced); err != nil {
		return true, fmt.Errorf("nginx did not answer after the reload: %w", err)
	}
	return true, nil
}

// restore puts the previous file (old; nil for none) back after failed
// said why the state s was not applied and, when nginx was reloaded with
// it, reloads nginx again and verifies through it.
func (p *Provider) restore(old []byte, s state, reloaded bool, failed error) error {
	// The context may be what ended the change: the restore goes on.
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	what := "point nginx at slot " + s.Active
	if s.Canary != "" {
		what = fmt.Sprintf("send %d%% of nginx's traffic to slot %s", s.Weight, s.Canary)
	}
	if err := write(p.opts.File, old); err != nil {
		return fmt.Errorf("%s: %w; and putting the previous upstream file back failed too: %v", what, failed, err)
	}
	if !reloaded {
		return fmt.Errorf("could not %s: %w; the previous upstream file is back, and nginx was not reloaded", what, failed)
	}
	replaced, err := p.reload(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w; the previous upstream file is back, but reloading nginx with it failed: %v", what, failed, err)
	}
	// Back only once nginx's workers of the failed file are gone.
	if err := p.verifyThrough(ctx, replaced); err != nil {
		return fmt.Errorf("%s: %w; the previous upstream file is back and nginx reloaded with it, but does not answer: %v", what, failed, err)
	}
	return fmt.Errorf("could not %s: %w; the previous upstream file is back and nginx reloaded with it", what, failed)
}

// reload runs the reload command and, when PIDFile names nginx's master,
// waits within VerifyTimeout until it has replaced its workers; replaced
// says whether it did.
func (p *Provider) reload(ctx context.Context) (replaced bool, err error) {
	old := workers(p.opts.PIDFile)
	if err := run(ctx, p.opts.Reload); err != nil {
		return false, fmt.Errorf("the reload failed: %w", err)
	}
	if old == nil {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.VerifyTimeout)
	defer cancel()
	if err := awaitNewWorkers(ctx, p.opts.PIDFile, old); err != nil {
		return false, fmt.Errorf("the reload did not take: %w", err)
	}
	return true, nil
}

// run runs command, returning its output in the error when it fails.
func run(ctx context.Context, command []string) error {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, command[0], command[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(command, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// verifyThrough fetches the verify URL until it answers below 500
// verifyInARow times in a row, or fails once VerifyTimeout is up;
// replaced says the reload saw the new workers take over.
func (p *Provider) verifyThrough(ctx context.Context, replaced bool) error {
	gap := verifyGap
	if replaced {
		gap = replacedGap
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.VerifyTimeout)
	defer cancel()
	inARow := 0
	for {
		last := p.get(ctx)
		if last == nil {
			inARow++
		} else {
			inARow = 0
		}
		if inARow == verifyInARow {
			return nil
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return fmt.Errorf("%s within %s: %w", p.opts.VerifyURL, p.opts.VerifyTimeout, last)
		case <-time.After(gap):
		}
	}
}

// get fetches the verify URL once.
func (p *Provider) get(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.opts.VerifyURL, nil)
	if err != nil {
		return err
	}
	resp, err := p.verify.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}
