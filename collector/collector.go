// Package collector exposes the swarm as Prometheus metrics. Every scrape
// reads the swarm once (concurrent scrapes share the read), evaluates it
// with package report, and emits the cluster-level metrics plus those of the
// enabled sub-collectors.
//
// Sub-collectors are registered by name, node_exporter style, each behind a
// --[no-]collector.<name> flag. Switching one off removes its series only:
// the statuses and aggregate counts never depend on which are on.
package collector

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarm-exporter/swarm_exporter/report"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

// Subcollector emits one family of per-object series from a report.
type Subcollector interface {
	// Update emits the collector's metrics. It returns ErrNoData when the
	// report lacks what the collector needs (the swarm could not be read,
	// or it has no leader).
	Update(r *report.Report, out *emitter) error
}

// ErrNoData says that a collector had nothing to report on.
var ErrNoData = errors.New("no cluster state to report on")

type registration struct {
	name           string
	help           string
	defaultEnabled bool
	factory        func() Subcollector
}

var registry []registration

func register(name, help string, defaultEnabled bool, factory func() Subcollector) {
	registry = append(registry, registration{name, help, defaultEnabled, factory})
}

// Names returns the names of every sub-collector, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for _, r := range registry {
		names = append(names, r.name)
	}
	sort.Strings(names)
	return names
}

// Flags holds the --collector.<name> flags.
type Flags map[string]*bool

// FlagGroup is a kingpin application or command.
type FlagGroup interface {
	Flag(name, help string) *kingpin.FlagClause
}

// RegisterFlags adds a --[no-]collector.<name> flag per sub-collector.
func RegisterFlags(app FlagGroup) Flags {
	flags := Flags{}
	for _, r := range registry {
		def := "false"
		if r.defaultEnabled {
			def = "true"
		}
		flags[r.name] = app.Flag("collector."+r.name,
			fmt.Sprintf("Enable the %s collector: %s (default: %s).", r.name, r.help, enabledWord(r.defaultEnabled))).
			Default(def).Bool()
	}
	return flags
}

func enabledWord(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

// Enabled returns the names of the enabled sub-collectors; nil flags means
// the defaults.
func (f Flags) Enabled() []string {
	var names []string
	for _, r := range registry {
		on := r.defaultEnabled
		if p, ok := f[r.name]; ok && p != nil {
			on = *p
		}
		if on {
			names = append(names, r.name)
		}
	}
	sort.Strings(names)
	return names
}

func lookup(name string) *registration {
	for i := range registry {
		if registry[i].name == name {
			return &registry[i]
		}
	}
	return nil
}

// Reader is what the exporter reads the swarm through (a *swarm.Reader).
type Reader interface {
	Read(ctx context.Context) *swarm.Snapshot
}

// Exporter reads the swarm and evaluates it for each scrape.
type Exporter struct {
	reader       Reader
	options      report.Options
	replacements *report.Replacements
	collectors   []named
	logger       log.Logger
	renderings   chan struct{}    // see render
	texts        chan *textScrape // see keep
}

type named struct {
	name string
	c    Subcollector
}

// New returns an Exporter with the named sub-collectors enabled.
func New(reader Reader, options report.Options, enabled []string, logger log.Logger) (*Exporter, error) {
	e := &Exporter{reader: reader, options: options, replacements: report.NewReplacements(), logger: logger,
		renderings: make(chan struct{}, 1), texts: make(chan *textScrape, 1)}
	for _, name := range enabled {
		reg := lookup(name)
		if reg == nil {
			return nil, fmt.Errorf("unknown collector %q (known: %v)", name, Names())
		}
		e.collectors = append(e.collectors, named{name, reg.factory()})
	}
	return e, nil
}

// Report reads the swarm and evaluates it, by ctx's deadline. This is
// where each read becomes a report, for every scrape that shares it: the
// task replacements are counted here, once per read.
func (e *Exporter) Report(ctx context.Context) *report.Report {
	return e.report(e.reader.Read(ctx))
}

func (e *Exporter) report(snap *swarm.Snapshot) *report.Report {
	r := report.Build(snap, e.options)
	e.replacements.Count(snap, r)
	return r
}

// fullReader is a Reader that can read the services whatever its settings
// say (a *swarm.Reader).
type fullReader interface {
	ReadFull(ctx context.Context) *swarm.Snapshot
}

// FullReport is Report with the services read even where the scrapes leave
// them to the exporter on the leader (--read.services=leader): the status
// API and the status command, which are asked rarely and whose users
// expect the services.
func (e *Exporter) FullReport(ctx context.Context) *report.Report {
	if f, ok := e.reader.(fullReader); ok {
		return e.report(f.ReadFull(ctx))
	}
	return e.Report(ctx)
}

// Scrape returns a prometheus.Collector for one scrape, bounded by ctx.
func (e *Exporter) Scrape(ctx context.Context) prometheus.Collector {
	return &scrape{e: e, ctx: ctx}
}

// scrape is an unchecked collector (it describes nothing): the series it
// emits depend on the swarm. It is registered in a fresh registry per
// scrape, so nothing is shared between scrapes but the in-flight read.
type scrape struct {
	e   *Exporter
	ctx context.Context
}

func (s *scrape) Describe(chan<- *prometheus.Desc) {}

func (s *scrape) Collect(ch chan<- prometheus.Metric) {
	s.e.emit(s.e.Report(s.ctx), &emitter{ch: ch})
}

// emit emits every series of a report: the cluster's, then each enabled
// sub-collector's with its duration and success.
func (e *Exporter) emit(r *report.Report, out *emitter) {
	collectCluster(r, out)
	for _, c := range e.collectors {
		start := time.Now()
		err := c.c.Update(r, out)
		success := 1.0
		if err != nil {
			success = 0
		}
		out.gauge(scrapeDurationFamily, time.Since(start).Seconds(), c.name)
		out.gauge(scrapeSuccessFamily, success, c.name)
	}
}

var (
	scrapeDurationFamily = newFamily(
		"swarm_exporter_scrape_collector_duration_seconds",
		"Time a sub-collector took to emit its metrics in this scrape (the shared read of the swarm is not included).",
		"collector")
	scrapeSuccessFamily = newFamily(
		"swarm_exporter_scrape_collector_success",
		"1 when a sub-collector had cluster state to report on in this scrape, 0 otherwise.",
		"collector")
)

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
