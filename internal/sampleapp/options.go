package sampleapp

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"
)

// options is the sample app's configuration, taken from its flags.
type options struct {
	addr          string
	version       string
	latency       time.Duration
	failRate      float64
	neverReady    bool
	readyAfter    time.Duration
	crashAfter    time.Duration
	shutdownDelay time.Duration
}

// parseOptions parses args (without the program name). port is the value of
// $PORT, used for the default address. On -h it prints the usage to usage and
// returns flag.ErrHelp.
func parseOptions(args []string, port string, usage io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("sample-app", flag.ContinueOnError)
	// Parse errors are reported by the caller, once, with the usage after them.
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.addr, "addr", "", "listen address (default 127.0.0.1:$PORT)")
	fs.StringVar(&o.version, "version", "v1", "version label reported by every route")
	fs.DurationVar(&o.latency, "latency", 0, "delay added to each / request")
	fs.Float64Var(&o.failRate, "fail-rate", 0, "fraction (0..1) of / requests answered with 500")
	fs.BoolVar(&o.neverReady, "never-ready", false, "answer /health with 503 forever")
	fs.DurationVar(&o.readyAfter, "ready-after", 0, "answer /health with 503 until this long after start")
	fs.DurationVar(&o.crashAfter, "crash-after", 0, "exit with status 1 after this long (0: never)")
	fs.DurationVar(&o.shutdownDelay, "shutdown-delay", 0,
		"on SIGTERM, how long in-flight requests may run before the app exits anyway (0: 10s)")
	printUsage := func() {
		fmt.Fprintln(usage, "Usage: sample-app [flags]")
		fs.SetOutput(usage)
		fs.PrintDefaults()
	}

	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		printUsage()
		return o, err
	}
	if err == nil {
		err = o.complete(port, fs.Args())
	}
	if err != nil {
		fmt.Fprintf(usage, "sample-app: %v\n", err)
		printUsage()
		return o, err
	}
	return o, nil
}

// complete fills the default address and checks the values.
func (o *options) complete(port string, rest []string) error {
	if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q: sample-app takes flags only", rest)
	}
	if o.addr == "" {
		if port == "" {
			return errors.New("no listen address: pass --addr or set PORT")
		}
		o.addr = "127.0.0.1:" + port
	}
	if o.version == "" {
		return errors.New("--version must not be empty")
	}
	if !(o.failRate >= 0 && o.failRate <= 1) {
		return fmt.Errorf("--fail-rate %v is outside 0..1", o.failRate)
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"latency", o.latency},
		{"ready-after", o.readyAfter},
		{"crash-after", o.crashAfter},
		{"shutdown-delay", o.shutdownDelay},
	} {
		if d.value < 0 {
			return fmt.Errorf("--%s %v is negative", d.name, d.value)
		}
	}
	return nil
}
