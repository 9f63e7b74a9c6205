// Command fakeswarm serves a synthetic Docker Engine API of any size from
// memory, for benchmarking the exporter as a separate process:
//
//	go run ./tools/fakeswarm -size m
//	go run ./tools/fakeswarm -workers 995 -services 10000 -unix /tmp/fake.sock
//
// It generates the swarm with fakedocker.Synth from a captured scenario,
// listens on loopback TCP or a unix socket, prints one line
// "fakeswarm ready host=<DOCKER_HOST> ..." once it serves, and counts
// requests and response bytes per endpoint: GET /_fake/stats returns them
// as JSON and POST /_fake/reset clears them. It runs until interrupted.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/bench"
	"github.com/swarm-exporter/swarm_exporter/internal/fakedocker"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fakeswarm:", err)
		os.Exit(1)
	}
}

// sizeFlags are the flags that override a field of the preset size.
var sizeFlags = []struct {
	name, usage string
	field       func(*bench.Size) *int
}{
	{"managers", "manager nodes", func(s *bench.Size) *int { return &s.Managers }},
	{"workers", "worker nodes", func(s *bench.Size) *int { return &s.Workers }},
	{"services", "replicated services", func(s *bench.Size) *int { return &s.Services }},
	{"replicas", "replicas per replicated service", func(s *bench.Size) *int { return &s.Replicas }},
	{"global", "global services (one task per node)", func(s *bench.Size) *int { return &s.Global }},
	{"history", "old tasks per task slot (desired state shutdown)", func(s *bench.Size) *int { return &s.History }},
}

func run() error {
	var (
		preset   = flag.String("size", bench.Target.Name, "preset size: xs, s, m, l, wide or tall; the flags below override its fields")
		listen   = flag.String("listen", "127.0.0.1:0", "loopback TCP address to listen on")
		unix     = flag.String("unix", "", "listen on this unix socket instead of TCP")
		template = flag.String("template", bench.TemplateDir(), "captured scenario the swarm is made from")
	)
	var custom bench.Size
	for _, f := range sizeFlags {
		flag.IntVar(f.field(&custom), f.name, 0, f.usage+" (default: the preset's)")
	}
	flag.Parse()
	size, ok := bench.Lookup(*preset)
	if !ok {
		return fmt.Errorf("unknown size %q", *preset)
	}
	flag.Visit(func(fl *flag.Flag) {
		for _, f := range sizeFlags {
			if f.name == fl.Name {
				*f.field(&size) = *f.field(&custom)
				size.Name = "custom"
			}
		}
	})

	start := time.Now()
	tmpl, err := fakedocker.LoadFixture(*template)
	if err != nil {
		return err
	}
	f, err := fakedocker.Synth(tmpl, size.SynthOptions())
	if err != nil {
		return err
	}
	generated := time.Since(start)

	l, err := listener(*listen, *unix)
	if err != nil {
		return err
	}
	srv := fakedocker.Serve(f, l)
	defer srv.Close()
	if *unix != "" {
		defer os.Remove(*unix)
	}
	fmt.Printf("fakeswarm ready host=%s nodes=%d services=%d tasks=%d history_tasks=%d", srv.Host,
		size.Nodes(), size.Services+size.Global, size.Tasks(), size.Tasks()*size.History)
	for _, ep := range fakedocker.Endpoints {
		fmt.Printf(" %s_bytes=%d", ep, len(f.Responses[ep].Body))
	}
	fmt.Printf(" generated_in=%s\n", generated.Round(time.Millisecond))

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	return nil
}

// listener listens on a unix socket or on a loopback TCP address: the fake
// API is for benchmarks on this machine and must not be reachable from
// elsewhere.
func listener(addr, unix string) (net.Listener, error) {
	if unix != "" {
		return net.Listen("unix", unix)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return nil, err
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return nil, errors.New("-listen must be a loopback address, not " + addr)
		}
	}
	return net.Listen("tcp", addr)
}
