package process_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/target"
	"github.com/cutover/cutover/internal/target/process"
)

// helperEnv switches the test binary into a helper program instead of
// running tests, so that tests can start real replicas without building
// anything.
const helperEnv = "CUTOVER_PROCESS_TEST_HELPER"

const (
	// helperServe is a tiny app: it serves HTTP on 127.0.0.1:$PORT (or on
	// the address of an -addr= argument), answers /health with 200 and /info
	// with what it was started with, and exits 0 on SIGTERM.
	helperServe = "serve"
	// helperParent starts one replica with a process target (`sleep 60`,
	// or $HELPER_SCRIPT run by sh -c with the serve helper at hand,
	// recording its group in $HELPER_GROUP_DIR), prints the replica's pid
	// and waits to be killed; it stands in for cutover itself.
	helperParent = "parent"
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case helperServe:
		os.Exit(serve())
	case helperParent:
		os.Exit(parent())
	default:
		os.Exit(m.Run())
	}
}

// helperInfo is what the serve helper reports on /info.
type helperInfo struct {
	Port     string   `json:"port"`
	Greeting string   `json:"greeting"`
	Path     string   `json:"path"`
	Args     []string `json:"args"`
}

func serve() int {
	addr := "127.0.0.1:" + os.Getenv("PORT")
	for _, a := range os.Args[1:] {
		if v, ok := strings.CutPrefix(a, "-addr="); ok {
			addr = v
		}
	}
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper cannot listen:", err)
		return 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("/info", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(helperInfo{
			Port:     os.Getenv("PORT"),
			Greeting: os.Getenv("GREETING"),
			Path:     os.Getenv("PATH"),
			Args:     os.Args[1:],
		})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	fmt.Println("helper listening on", addr)
	fmt.Fprintln(os.Stderr, "helper says hello on stderr")
	select {
	case <-terms:
		fmt.Println("helper got SIGTERM")
		_ = srv.Close()
		return 0
	case err := <-served:
		fmt.Fprintln(os.Stderr, "helper stopped serving:", err)
		return 1
	case <-time.After(time.Minute): // never outlive a test run by much
		return 2
	}
}

func parent() int {
	tgt := process.New(process.Options{
		LogDir:   os.Getenv("HELPER_LOG_DIR"),
		GroupDir: os.Getenv("HELPER_GROUP_DIR"),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	spec := target.Spec{App: "orphan", Slot: "blue", Revision: 1, Command: []string{"sleep", "60"}}
	if script := os.Getenv("HELPER_SCRIPT"); script != "" {
		spec.Command = []string{"/bin/sh", "-c", script}
		spec.Env = map[string]string{helperEnv: helperServe}
	}
	inst, err := tgt.Start(context.Background(), spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(inst.Replicas()[0].PID)
	time.Sleep(time.Minute) // until the test kills us
	return 0
}

// newTarget returns a process target logging nowhere, with its logs in a
// fresh directory unless opts names one.
func newTarget(t *testing.T, opts process.Options) (*process.Target, process.Options) {
	t.Helper()
	if opts.LogDir == "" {
		opts.LogDir = t.TempDir()
	}
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return process.New(opts), opts
}

// start starts spec and stops the instance when the test ends.
func start(t *testing.T, tgt *process.Target, spec target.Spec) target.Instance {
	t.Helper()
	inst, err := tgt.Start(context.Background(), spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := inst.Stop(ctx); err != nil {
			t.Errorf("Stop in cleanup: %v", err)
		}
	})
	return inst
}

// helperSpec runs the serve helper as the replica command.
func helperSpec(t *testing.T, replicas int, args ...string) target.Spec {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("find test binary: %v", err)
	}
	return target.Spec{
		App: "web", Slot: "green", Revision: 2, Version: "v2",
		Command:  append([]string{self}, args...),
		Replicas: replicas,
		Env:      map[string]string{helperEnv: helperServe},
	}
}

// shSpec runs script with /bin/sh -c as the replica command.
func shSpec(script string) target.Spec {
	return target.Spec{
		App: "web", Slot: "blue", Revision: 7, Version: "v7",
		Command: []string{"/bin/sh", "-c", script},
	}
}

// eventually polls cond every 20ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: still waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// get returns the status and body of GET url, or an error.
func get(url string) (int, []byte, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

func healthy(base string) bool {
	code, _, err := get(base + "/health")
	return err == nil && code == http.StatusOK
}

// alive reports whether pid is a live process: it exists and is not a
// zombie waiting to be reaped.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || !strings.HasPrefix(string(stat[i+1:]), " Z")
}

// readPIDs reads the pids that a script wrote to path, one a line.
func readPIDs(path string) []int {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// logContains reports whether the file at path contains s.
func logContains(path, s string) bool {
	data, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(data), s)
}

// killIfAlive cleans up a process a failed test may have left behind.
func killIfAlive(pid int) {
	if alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// startStandIn starts the parent helper (a stand-in for cutover) with env
// added to its environment and returns it and its replica's pid. The
// stand-in is killed when the test ends.
func startStandIn(t *testing.T, env ...string) (*exec.Cmd, int) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(append(os.Environ(), helperEnv+"="+helperParent, "HELPER_LOG_DIR="+t.TempDir()), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start stand-in for cutover: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("read replica pid from stand-in: %v", err)
	}
	replica, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("stand-in printed %q, want a pid", line)
	}
	t.Cleanup(func() { killIfAlive(replica) })
	if !alive(replica) {
		t.Fatalf("replica %d is not running before its parent is killed", replica)
	}
	return cmd, replica
}
