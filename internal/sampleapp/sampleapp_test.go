package sampleapp

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// childArgsEnv makes the test binary run Main with these (space-separated)
// args instead of the tests, so a test can signal a real process.
const childArgsEnv = "CUTOVER_SAMPLEAPP_TEST_ARGS"

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(childArgsEnv); ok {
		os.Exit(Main(context.Background(), strings.Fields(args), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// syncBuffer collects a stream written from another goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runningApp is a sample app running in-process.
type runningApp struct {
	url    string
	stderr *syncBuffer
	cancel context.CancelFunc
	code   chan int
	once   sync.Once
	exit   int
}

// wait returns Main's exit code, failing the test if it does not come within 15s.
func (a *runningApp) wait(t *testing.T) int {
	t.Helper()
	a.once.Do(func() {
		select {
		case a.exit = <-a.code:
		case <-time.After(15 * time.Second):
			t.Fatalf("sample app did not exit within 15s; stderr:\n%s", a.stderr)
		}
	})
	return a.exit
}

// stop cancels Main's context and returns its exit code.
func (a *runningApp) stop(t *testing.T) int {
	t.Helper()
	a.cancel()
	return a.wait(t)
}

// startApp runs Main on a free loopback port with args and waits until it
// says it is listening.
func startApp(t *testing.T, args ...string) *runningApp {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	a := &runningApp{stderr: &syncBuffer{}, cancel: cancel, code: make(chan int, 1)}
	go func() {
		a.code <- Main(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), pw, a.stderr)
		pw.Close()
	}()
	t.Cleanup(func() { a.stop(t) })

	first := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(pr)
		for s.Scan() {
			select {
			case first <- s.Text():
			default:
			}
		}
	}()
	select {
	case line := <-first:
		addr, version, ok := parseListening(line)
		if !ok {
			t.Fatalf("first stdout line %q, want \"listening on ADDR version V\"", line)
		}
		if want := flagValue(args, "--version", "v1"); version != want {
			t.Fatalf("listening line names version %q, want %q", version, want)
		}
		a.url = "http://" + addr
	case code := <-a.code:
		a.code <- code
		t.Fatalf("sample app exited with %d before listening; stderr:\n%s", code, a.stderr)
	case <-time.After(10 * time.Second):
		t.Fatalf("sample app did not report listening within 10s; stderr:\n%s", a.stderr)
	}
	return a
}

func parseListening(line string) (addr, version string, ok bool) {
	rest, ok := strings.CutPrefix(line, "listening on ")
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, " version ")
}

func flagValue(args []string, name, def string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return def
}

// get does a request and returns status, X-Version and body.
func do(t *testing.T, method, url string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header.Get("X-Version"), string(body)
}

func TestRoutesAnswerWithTheVersion(t *testing.T) {
	a := startApp(t, "--version", "v7")
	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/", 200, "version=v7\n"},
		{"/any/other/path", 200, "version=v7\n"},
		{"/health", 200, "ok"},
		{"/version", 200, "v7"},
		{"/sleep?d=10ms", 200, "version=v7 slept=10ms"},
		{"/sleep?d=0s", 200, "version=v7 slept=0s"},
	} {
		status, version, body := do(t, "GET", a.url+tc.path)
		if status != tc.status || body != tc.body || version != "v7" {
			t.Errorf("GET %s = %d %q (X-Version %q), want %d %q (X-Version v7)",
				tc.path, status, body, version, tc.status, tc.body)
		}
	}
}

func TestSleepRejectsMissingOrUnboundedDurations(t *testing.T) {
	a := startApp(t)
	for _, q := range []string{"", "?d=abc", "?d=-1s", "?d=61s"} {
		if status, _, body := do(t, "GET", a.url+"/sleep"+q); status != http.StatusBadRequest {
			t.Errorf("GET /sleep%s = %d %q, want 400", q, status, body)
		}
	}
}

func TestSleepStopsWhenTheClientGoesAway(t *testing.T) {
	a := startApp(t, "--shutdown-delay", "2s")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.url+"/sleep?d=50s", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("GET /sleep?d=50s answered before the client gave up")
	}
	// Were the handler still sleeping, shutdown would hit its 2s bound and exit 1.
	if code := a.stop(t); code != 0 {
		t.Errorf("exit code %d after the client went away, want 0 (handler still running?); stderr:\n%s", code, a.stderr)
	}
}

func TestEchoReturnsRequestHeadersAsJSON(t *testing.T) {
	a := startApp(t)
	req, _ := http.NewRequest("GET", a.url+"/echo", nil)
	req.Header.Set("X-Forwarded-For", "10.1.2.3")
	req.Header.Add("X-Multi", "a")
	req.Header.Add("X-Multi", "b")
	req.Host = "shop.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var got map[string][]string
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"X-Forwarded-For": "10.1.2.3",
		"X-Multi":         "a,b",
		"Host":            "shop.example",
	} {
		if v := strings.Join(got[name], ","); v != want {
			t.Errorf("echo[%s] = %q, want %q (all: %v)", name, v, want, got)
		}
	}
}

func TestAdminSwitchesBehaviourAtRuntime(t *testing.T) {
	a := startApp(t)
	post := func(path string) {
		t.Helper()
		if status, _, body := do(t, "POST", a.url+path); status != 200 {
			t.Fatalf("POST %s = %d %q, want 200", path, status, body)
		}
	}

	post("/admin/fail-rate?value=1")
	for range 20 {
		if status, _, body := do(t, "GET", a.url+"/"); status != 500 || body != "error version=v1\n" {
			t.Fatalf("with fail-rate 1: GET / = %d %q, want 500 \"error version=v1\\n\"", status, body)
		}
	}
	post("/admin/fail-rate?value=0")
	for range 20 {
		if status, _, _ := do(t, "GET", a.url+"/"); status != 200 {
			t.Fatalf("with fail-rate 0: GET / = %d, want 200", status)
		}
	}

	post("/admin/ready?value=false")
	if status, _, _ := do(t, "GET", a.url+"/health"); status != 503 {
		t.Errorf("after ready=false: /health = %d, want 503", status)
	}
	post("/admin/ready?value=true")
	if status, _, _ := do(t, "GET", a.url+"/health"); status != 200 {
		t.Errorf("after ready=true: /health = %d, want 200", status)
	}

	const latency = 150 * time.Millisecond
	post("/admin/latency?value=150ms")
	start := time.Now()
	if status, _, _ := do(t, "GET", a.url+"/"); status != 200 {
		t.Errorf("with latency: GET / = %d, want 200", status)
	}
	if took := time.Since(start); took < latency {
		t.Errorf("with latency %v: GET / took only %v", latency, took)
	}
}

func TestAdminRejectsBadValues(t *testing.T) {
	a := startApp(t)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"POST", "/admin/fail-rate?value=1.5", 400},
		{"POST", "/admin/fail-rate?value=-0.1", 400},
		{"POST", "/admin/fail-rate?value=NaN", 400},
		{"POST", "/admin/fail-rate", 400},
		{"POST", "/admin/latency?value=fast", 400},
		{"POST", "/admin/latency?value=-1s", 400},
		{"POST", "/admin/ready?value=maybe", 400},
		{"GET", "/admin/ready?value=false", 405},
	} {
		if status, _, body := do(t, tc.method, a.url+tc.path); status != tc.status {
			t.Errorf("%s %s = %d %q, want %d", tc.method, tc.path, status, body, tc.status)
		}
	}
	// None of them changed anything.
	if status, _, _ := do(t, "GET", a.url+"/health"); status != 200 {
		t.Errorf("/health = %d after rejected switches, want 200", status)
	}
	if status, _, _ := do(t, "GET", a.url+"/"); status != 200 {
		t.Errorf("GET / = %d after rejected switches, want 200", status)
	}
}

func TestFailRateFailsThatFractionOfRequests(t *testing.T) {
	a := startApp(t, "--fail-rate", "0.3")
	const n, p = 2000, 0.3
	failed := 0
	for range n {
		switch status, _, _ := do(t, "GET", a.url+"/"); status {
		case 500:
			failed++
		case 200:
		default:
			t.Fatalf("GET / = %d, want 200 or 500", status)
		}
	}
	// n*p = 600 with a standard deviation of about 20.5; 5 sigma keeps this
	// test from ever flaking while still catching a wrong rate.
	if failed < 498 || failed > 702 {
		t.Errorf("%d of %d requests failed with --fail-rate %v, want 600±102", failed, n, p)
	}
}

func TestNeverReadyKeepsHealthDownUntilSwitched(t *testing.T) {
	a := startApp(t, "--never-ready")
	if status, _, body := do(t, "GET", a.url+"/health"); status != 503 {
		t.Errorf("--never-ready: /health = %d %q, want 503", status, body)
	}
	if status, _, _ := do(t, "GET", a.url+"/"); status != 200 {
		t.Errorf("--never-ready: GET / = %d, want 200 (only health is affected)", status)
	}
	if status, _, _ := do(t, "POST", a.url+"/admin/ready?value=true"); status != 200 {
		t.Fatalf("POST /admin/ready?value=true = %d", status)
	}
	if status, _, _ := do(t, "GET", a.url+"/health"); status != 200 {
		t.Errorf("after ready=true: /health = %d, want 200", status)
	}
}

func TestReadyAfterKeepsHealthDownForThatLong(t *testing.T) {
	const readyAfter = 500 * time.Millisecond
	before := time.Now()
	a := startApp(t, "--ready-after", readyAfter.String())
	status, _, _ := do(t, "GET", a.url+"/health")
	// Only a check that surely ran before the deadline may demand 503.
	if time.Since(before) < readyAfter && status != 503 {
		t.Errorf("/health = %d before --ready-after elapsed, want 503", status)
	}
	deadline := time.Now().Add(10 * time.Second)
	for status != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("/health still %d 10s after start with --ready-after %v", status, readyAfter)
		}
		time.Sleep(20 * time.Millisecond)
		status, _, _ = do(t, "GET", a.url+"/health")
	}
	if took := time.Since(before); took < readyAfter {
		t.Errorf("/health became ready after %v, before --ready-after %v", took, readyAfter)
	}
}

func TestCrashAfterExitsWithOne(t *testing.T) {
	a := startApp(t, "--crash-after", "100ms")
	if code := a.wait(t); code != 1 {
		t.Errorf("exit code %d with --crash-after, want 1", code)
	}
	if _, err := http.Get(a.url + "/"); err == nil {
		t.Error("GET / succeeded after the crash, want connection refused")
	}
}

func TestBadFlagsExitWithTwo(t *testing.T) {
	for _, args := range [][]string{
		{"--addr", "127.0.0.1:0", "--fail-rate", "2"},
		{"--addr", "127.0.0.1:0", "--latency", "-1s"},
		{"--addr", "127.0.0.1:0", "--no-such-flag"},
		{"--addr", "127.0.0.1:0", "extra"},
		{"--addr", "127.0.0.1:0", "--version", ""},
	} {
		var stderr syncBuffer
		if code := Main(context.Background(), args, io.Discard, &stderr); code != 2 {
			t.Errorf("Main(%q) = %d, want 2", args, code)
		}
		if !strings.Contains(stderr.String(), "Usage: sample-app") {
			t.Errorf("Main(%q) stderr lacks the usage:\n%s", args, stderr.String())
		}
	}
}

func TestAddressDefaultsToPortOnLoopback(t *testing.T) {
	t.Setenv("PORT", "")
	var stderr syncBuffer
	if code := Main(context.Background(), nil, io.Discard, &stderr); code != 2 {
		t.Errorf("Main without --addr or PORT = %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "pass --addr or set PORT") {
		t.Errorf("stderr should say how to give an address:\n%s", stderr.String())
	}

	o, err := parseOptions(nil, "8123", io.Discard)
	if err != nil || o.addr != "127.0.0.1:8123" {
		t.Errorf("parseOptions with PORT=8123 = %q, %v; want 127.0.0.1:8123", o.addr, err)
	}
}

// readSignalListener reports when the server has read a request from any
// connection and gone on to serve it: net/http starts its next Read (the
// background read that watches for the client going away) only once it has
// checked for shutdown and is about to call the handler, so from then on the
// request counts as in flight for http.Server.Shutdown. A signal on the read
// of the request's bytes alone comes too early: a Shutdown between that read
// and the check drops the request unanswered.
type readSignalListener struct {
	net.Listener
	read chan struct{}
}

func (l *readSignalListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &readSignalConn{Conn: c, read: l.read}, nil
}

type readSignalConn struct {
	net.Conn
	read     chan struct{}
	gotBytes atomic.Bool
}

func (c *readSignalConn) Read(p []byte) (int, error) {
	if c.gotBytes.Load() {
		select {
		case c.read <- struct{}{}:
		default:
		}
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.gotBytes.Store(true)
	}
	return n, err
}

// serveWithInFlightSleep serves with args, sends GET /sleep?d=sleep, waits
// until the server has read it and then asks for shutdown. It returns the
// exit code and the client's result.
func serveWithInFlightSleep(t *testing.T, sleep string, args ...string) (code int, body string, reqErr error) {
	t.Helper()
	opts, err := parseOptions(append([]string{"--addr", "127.0.0.1:0"}, args...), "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl := &readSignalListener{Listener: ln, read: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	exit := make(chan int, 1)
	go func() { exit <- serve(ctx, rl, opts, io.Discard, &stderr) }()

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	client := &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()
	go func() {
		resp, err := client.Get("http://" + ln.Addr().String() + "/sleep?d=" + sleep)
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	select {
	case <-rl.read:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not read the /sleep request within 10s")
	}
	cancel()
	select {
	case code = <-exit:
	case <-time.After(15 * time.Second):
		t.Fatalf("serve did not return within 15s of shutdown; stderr:\n%s", stderr.String())
	}
	r := <-got
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("the listener still accepts connections after shutdown")
	}
	return code, r.body, r.err
}

func TestGracefulShutdownCompletesInFlightSleep(t *testing.T) {
	code, body, err := serveWithInFlightSleep(t, "300ms")
	if err != nil || body != "version=v1 slept=300ms" {
		t.Errorf("in-flight /sleep got %q, %v; want it completed", body, err)
	}
	if code != 0 {
		t.Errorf("exit code %d after graceful shutdown, want 0", code)
	}
}

func TestShutdownDelayBoundsInFlightRequests(t *testing.T) {
	code, body, err := serveWithInFlightSleep(t, "30s", "--shutdown-delay", "200ms")
	if err == nil {
		t.Errorf("in-flight /sleep?d=30s got %q, want it cut off after --shutdown-delay", body)
	}
	if code != 1 {
		t.Errorf("exit code %d when requests outlived --shutdown-delay, want 1", code)
	}
}

func TestSIGTERMShutsTheProcessDownGracefully(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childArgsEnv+"=--addr 127.0.0.1:0 --version v3")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	lines := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		s.Scan()
		lines <- s.Text()
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()

	var addr string
	select {
	case line := <-lines:
		var ok bool
		if addr, _, ok = parseListening(line); !ok {
			t.Fatalf("child printed %q, want a listening line; stderr:\n%s", line, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("child did not report listening within 10s; stderr:\n%s", stderr.String())
	}
	if status, version, _ := do(t, "GET", "http://"+addr+"/"); status != 200 || version != "v3" {
		t.Fatalf("GET / on the child = %d version %q, want 200 v3", status, version)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("child exited with %v after SIGTERM, want status 0; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("child still running 15s after SIGTERM")
	}
}
