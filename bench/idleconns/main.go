// Command idleconns opens many keep-alive connections to one 127.0.0.1 URL,
// sends one GET on each, then leaves them all open and idle, so that
// cutover's benchmark script (bench/run.sh) can read how much memory a proxy
// holds per idle client connection.
//
// Usage:
//
//	idleconns -n 10000 -hold 30s http://127.0.0.1:8080/
//
// Once every connection has had its answer (or failed), idleconns prints one
// line "ready <open>" on stdout; it then holds the connections for -hold or
// until SIGINT or SIGTERM, closes them all and prints a JSON summary as its
// last line. It first raises its soft RLIMIT_NOFILE to fit -n connections
// and says on stderr if it cannot; connections it could not open are counted
// as failed with their error.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// Bounds that keep a mistyped flag from turning into an unbounded run.
const (
	maxConns   = 50_000
	maxHold    = 5 * time.Minute
	maxSetup   = 2 * time.Minute
	dialers    = 64               // connections opened at a time
	spareFiles = 64               // descriptors kept for stdio, the runtime, etc.
	perConnIO  = 10 * time.Second // dial, write and read deadline of each connection
)

// summary is the JSON that idleconns prints last.
type summary struct {
	Requested int            `json:"requested"`
	Open      int            `json:"open"`
	Failed    int            `json:"failed"`
	Errors    map[string]int `json:"errors"`
	SetupMs   int64          `json:"setup_ms"`
	HeldMs    int64          `json:"held_ms"`
	NoFile    uint64         `json:"nofile_soft"`
}

func main() {
	n := flag.Int("n", 10_000, "connections to open (at most 50000)")
	hold := flag.Duration("hold", 30*time.Second, "how long to keep them idle after the last answer (at most 5m)")
	setup := flag.Duration("setup-timeout", 60*time.Second, "give up opening connections after this long (at most 2m)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: idleconns [flags] http://127.0.0.1:PORT/PATH\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(*n, *hold, *setup, flag.Args()); err != nil {
		fmt.Fprintf(os.Stderr, "idleconns: %v\n", err)
		os.Exit(1)
	}
}

func run(n int, hold, setup time.Duration, args []string) error {
	if len(args) != 1 {
		return errors.New("want exactly one URL argument, e.g. http://127.0.0.1:8080/")
	}
	switch {
	case n < 1 || n > maxConns:
		return fmt.Errorf("-n %d is out of range; use 1 to %d", n, maxConns)
	case hold < 0 || hold > maxHold:
		return fmt.Errorf("-hold %s is out of range; use 0 to %s", hold, maxHold)
	case setup <= 0 || setup > maxSetup:
		return fmt.Errorf("-setup-timeout %s is out of range; use up to %s", setup, maxSetup)
	}
	u, err := url.Parse(args[0])
	if err != nil {
		return fmt.Errorf("parse URL %q: %w", args[0], err)
	}
	if u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "" {
		return fmt.Errorf("URL %q: only http://127.0.0.1:PORT/... is allowed", args[0])
	}
	nofile := raiseNoFile(uint64(n) + spareFiles)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	setupCtx, cancel := context.WithTimeout(ctx, setup)
	conns, errs := openAll(setupCtx, u, n)
	cancel()
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	sum := summary{Requested: n, Open: len(conns), Failed: n - len(conns), Errors: errs,
		SetupMs: time.Since(start).Milliseconds(), NoFile: nofile}
	fmt.Printf("ready %d\n", len(conns))

	held := time.Now()
	t := time.NewTimer(hold)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	sum.HeldMs = time.Since(held).Milliseconds()
	return json.NewEncoder(os.Stdout).Encode(sum)
}

// raiseNoFile raises the soft limit on open files to want (at most the hard
// limit) and returns the soft limit in force afterwards. It says on stderr
// when that is less than want.
func raiseNoFile(want uint64) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintf(os.Stderr, "idleconns: read RLIMIT_NOFILE: %v; continuing with the current limit\n", err)
		return 0
	}
	if lim.Cur < want {
		next := lim
		next.Cur = min(want, lim.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err != nil {
			fmt.Fprintf(os.Stderr, "idleconns: raise soft RLIMIT_NOFILE to %d: %v\n", next.Cur, err)
		} else {
			lim = next
		}
	}
	if lim.Cur < want {
		fmt.Fprintf(os.Stderr, "idleconns: RLIMIT_NOFILE is %d (hard %d), below the %d needed; raise it (ulimit -Hn) or lower -n\n",
			lim.Cur, lim.Max, want)
	}
	return lim.Cur
}

// openAll opens n connections to u, dialers at a time, and sends one GET on
// each. It returns the connections that got a complete 2xx answer and counts
// the failures by error.
func openAll(ctx context.Context, u *url.URL, n int) ([]net.Conn, map[string]int) {
	var (
		mu    sync.Mutex
		conns = make([]net.Conn, 0, n)
		errs  = map[string]int{}
		wg    sync.WaitGroup
	)
	jobs := make(chan struct{})
	for range dialers {
		wg.Go(func() {
			for range jobs {
				c, err := openOne(ctx, u)
				mu.Lock()
				if err != nil {
					errs[err.Error()]++
				} else {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		})
	}
feed:
	for range n {
		select {
		case jobs <- struct{}{}:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if short := n - len(conns) - sum(errs); short > 0 {
		errs["not attempted: "+context.Cause(ctx).Error()] += short
	}
	return conns, errs
}

// openOne dials u, sends one GET and reads the whole answer, leaving the
// connection open for the next request that never comes.
func openOne(ctx context.Context, u *url.URL) (net.Conn, error) {
	d := net.Dialer{Timeout: perConnIO}
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", bare(err))
	}
	c.SetDeadline(time.Now().Add(perConnIO))
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: idleconns\r\n\r\n", u.RequestURI(), u.Host)
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, fmt.Errorf("write request: %w", bare(err))
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("read response: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		c.Close()
		return nil, fmt.Errorf("read body: %w", err)
	case resp.StatusCode/100 != 2:
		c.Close()
		return nil, fmt.Errorf("status %s", resp.Status)
	case resp.Close:
		c.Close()
		return nil, errors.New("server closed the connection after the answer")
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// bare drops the addresses from a *net.OpError, so that the same failure on
// many connections is counted under one key.
func bare(err error) error {
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Err != nil {
		return op.Err
	}
	return err
}

// sum adds up the counts in m.
func sum(m map[string]int) int {
	t := 0
	for _, v := range m {
		t += v
	}
	return t
}
