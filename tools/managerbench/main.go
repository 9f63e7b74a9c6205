// Command managerbench measures what the exporter costs a real swarm
// manager. It boots a 3-manager swarm with the harness (internal/swarmtest),
// gives it services whose tasks can never be placed (a constraint no node
// satisfies: they stay pending, so no container runs and tens of thousands
// of tasks fit on one machine), and for each size measures:
//
//   - the floor of a read as curl sees it: /info, /nodes,
//     /services?status=true and the current tasks, one after the other and
//     in parallel, sent to the leader and to a follower;
//   - the exporter's scrape p50/p95 against that floor, and the CPU time
//     (utime+stime in /proc/PID/stat) that one exporter read costs the
//     leader's and a follower's dockerd, sent to each;
//   - the leader's CPU per scrape interval with N exporter instances (one
//     per manager) each scraped by M Prometheus-like scrapers, with the
//     default flags and with --read.services=leader --read.max-age.
//
// It needs root, the harness's prerequisites and curl:
//
//	go run ./tools/managerbench                         # 100, 500 and 1,000 services × 10 tasks, Debian's 20.10
//	go run ./tools/managerbench -engine 29              # the same on Docker 29 (`make engine` builds it once)
//	go run ./tools/managerbench -sizes 1000 -rounds 6   # one size, longer
//
// docs/benchmarks.md explains the method and holds the tables.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

type options struct {
	sizes     []int
	replicas  int
	reads     int
	floorRuns int
	interval  time.Duration
	maxAge    time.Duration
	rounds    int
	scrapers  []int
	idle      time.Duration
	exporter  string
	engine    string
	prefix    string
	subnet    string
	keep      bool
}

func main() {
	var (
		o        options
		sizes    = flag.String("sizes", "100,500,1000", "comma-separated numbers of services, grown in this order on one swarm")
		scrapers = flag.String("scrapers", "1,2", "comma-separated numbers M of Prometheus-like scrapers per instance, with one instance per manager")
	)
	flag.IntVar(&o.replicas, "replicas", 10, "tasks per service (never placed)")
	flag.IntVar(&o.reads, "reads", 10, "sequential exporter reads per target for the per-read CPU and the scrape percentiles")
	flag.IntVar(&o.floorRuns, "floor-runs", 10, "curl runs per target and mode for the floor (the median is kept)")
	flag.DurationVar(&o.interval, "interval", 10*time.Second, "scrape interval of the N×M runs")
	flag.DurationVar(&o.maxAge, "max-age", 0, "--read.max-age of the N×M runs with the deployed flags, --read.services=leader and --read.max-age (default: interval - 1s)")
	flag.IntVar(&o.rounds, "rounds", 5, "intervals measured per N×M configuration")
	flag.DurationVar(&o.idle, "idle", 20*time.Second, "how long the managers' idle CPU is measured at each size")
	flag.StringVar(&o.exporter, "exporter", "", "an exporter binary to measure instead of building this checkout's")
	flag.StringVar(&o.engine, "engine", swarmtest.EngineDebian, "the managers' Docker engine: "+swarmtest.EngineDebian+" (Debian's) or "+swarmtest.EngineCurrent+" (built by `make engine`)")
	flag.StringVar(&o.prefix, "prefix", "swmb", "the harness prefix of the swarm (a run of another prefix may run at once)")
	flag.StringVar(&o.subnet, "subnet", "10.213.60.0/24", "the swarm's private /24")
	flag.BoolVar(&o.keep, "keep", false, "keep the swarm up at the end until interrupted")
	flag.Parse()
	var err error
	if o.sizes, err = ints(*sizes); err != nil {
		fatal(err)
	}
	if o.scrapers, err = ints(*scrapers); err != nil {
		fatal(err)
	}
	if o.maxAge == 0 {
		o.maxAge = o.interval - time.Second
	}
	if _, err := exec.LookPath("curl"); err != nil {
		fatal(errors.New("curl is needed for the floor: apt-get install curl"))
	}
	if os.Geteuid() != 0 {
		fatal(errors.New("the harness needs root"))
	}
	if err := run(o); err != nil {
		fatal(err)
	}
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "managerbench:", err)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "managerbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := o.exporter
	if bin == "" {
		bin = filepath.Join(dir, "swarm_exporter")
		logf("building the exporter")
		cmd := exec.Command(swarmtest.GoTool(), "build", "-o", bin, ".")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building the exporter: %w", err)
		}
	}

	engine, err := swarmtest.LookupEngine(o.engine)
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute) // another run of the prefix may hold its lock
	s, err := swarmtest.Start(ctx, swarmtest.Options{Managers: 3, NoWorkloadImage: true, Engine: engine,
		Prefix: o.prefix, Subnet: o.subnet, Logf: logf})
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		if err := s.Close(); err != nil {
			logf("teardown: %v", err)
		}
	}()
	stopped := make(chan struct{})
	go func() {
		select {
		case <-sig:
			logf("interrupted: tearing the swarm down")
			_ = s.Close()
			os.Exit(1)
		case <-stopped:
		}
	}()
	defer close(stopped)

	b := &bench{o: o, s: s, bin: bin, dir: dir}
	if err := b.identify(); err != nil {
		return err
	}
	printMachine(b)
	var rows []sizeResult
	for _, size := range o.sizes {
		r, err := b.measureSize(size)
		if err != nil {
			return fmt.Errorf("%d services: %w", size, err)
		}
		rows = append(rows, r)
		printTables(o, rows) // after every size: a long run shows its figures as it goes
	}
	fmt.Printf("\nload average at the end: %s\n", loadavg())
	if o.keep {
		logf("-keep: the swarm stays up until interrupted")
		<-sig
	}
	return nil
}

// bench is one run on one swarm.
type bench struct {
	o        options
	s        *swarmtest.Swarm
	bin, dir string
	leader   *swarmtest.Node
	follower *swarmtest.Node
	engine   string // the daemons' version and API version
	api      string // the daemons' API version
	services int    // created so far
}

// identify finds the leader and a follower and checks that the harness's
// pids are the daemons'.
func (b *bench) identify() error {
	l, err := b.s.Leader()
	if err != nil {
		return err
	}
	b.leader = l
	for _, m := range b.s.Managers() {
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", m.Pid())); strings.TrimSpace(string(comm)) != "dockerd" {
			return fmt.Errorf("%s: pid %d is %q, not dockerd", m.Name, m.Pid(), strings.TrimSpace(string(comm)))
		}
		if m != l && b.follower == nil {
			b.follower = m
		}
	}
	var v struct{ Version, APIVersion string }
	if err := l.GetJSON(context.Background(), "/version", &v); err != nil {
		return err
	}
	b.engine = fmt.Sprintf("%s (API %s)", v.Version, v.APIVersion)
	b.api = v.APIVersion
	logf("engine %s; leader %s (pid %d), follower %s (pid %d)", b.engine, l.Name, l.Pid(), b.follower.Name, b.follower.Pid())
	return nil
}

// checkLeader fails when leadership moved: the figures would mix roles.
func (b *bench) checkLeader() error {
	l, err := b.s.Leader()
	if err != nil {
		return err
	}
	if l != b.leader {
		return fmt.Errorf("leadership moved from %s to %s during the run", b.leader.Name, l.Name)
	}
	return nil
}

// sizeResult holds the figures of one size.
type sizeResult struct {
	services, tasks int
	bytes           map[string]int // response size per endpoint, from the leader
	idle            map[string]float64
	targets         []targetResult // leader, follower
	nm              []nmResult
}

func (b *bench) measureSize(size int) (sizeResult, error) {
	res := sizeResult{services: size}
	if err := b.populate(size); err != nil {
		return res, err
	}
	res.tasks = size * b.o.replicas
	var err error
	if res.bytes, err = b.sizes(); err != nil {
		return res, err
	}
	logf("%d services: measuring the idle managers for %v", size, b.o.idle)
	if res.idle, err = b.idleRates(); err != nil {
		return res, err
	}
	for _, target := range []*swarmtest.Node{b.leader, b.follower} {
		t, err := b.measureTarget(target, res.idle)
		if err != nil {
			return res, err
		}
		res.targets = append(res.targets, t)
	}
	configs := [][2]int{{1, 1}}
	for _, m := range b.o.scrapers {
		configs = append(configs, [2]int{len(b.s.Managers()), m})
	}
	slices.SortFunc(configs, func(a, c [2]int) int { return a[0]*100 + a[1] - c[0]*100 - c[1] })
	configs = slices.Compact(configs)
	for _, c := range configs {
		r, err := b.measureNM(c[0], c[1], res.idle)
		if err != nil {
			return res, err
		}
		res.nm = append(res.nm, r)
	}
	return res, b.checkLeader()
}
