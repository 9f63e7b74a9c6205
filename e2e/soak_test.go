package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/swarm-exporter/swarm_exporter/internal/fakedocker"
	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
	"github.com/swarm-exporter/swarm_exporter/internal/testkit"
)

// Issue #7: the exporter under load, for a long time. 50 scrapers hit
// /metrics together once a second (a "wave"), as 50 Prometheus servers
// whose scrapes line up would, while the swarm behind it fails and recovers
// midway. Every scrape must be an HTTP 200 exposition that parses, within
// the scrape timeout it announced; each wave must cost about one read of
// the swarm (concurrent scrapes share it); and goroutines and memory must
// not grow from the first to the last window of the run.
//
// By default each soak lasts 15 s (CI); SOAK=1 runs 2 minutes each, and
// SOAK_DURATION=5m any duration:
//
//	SWARMTEST=1 SOAK=1 go test -count=1 -p 1 -run 'TestSoak' -v -timeout 30m ./e2e/
//
// (TestSoakSynthetic needs no root: the synthetic swarm is in memory.)

// soakConfig sizes one soak.
type soakConfig struct {
	Duration time.Duration // of the load
	Scrapers int           // concurrent scrapers
	Interval time.Duration // between waves
	Timeout  time.Duration // sent as X-Prometheus-Scrape-Timeout-Seconds
	Window   time.Duration // the first and last windows compared for leaks
	Long     bool          // a full soak: windows long enough to judge flatness
}

// The exporter's flags under soak: a read of the swarm gives up after 5 s
// (the default is 10 s) so that the hung-daemon phases end within a short
// run; a scrape's deadline is 3 s − 0.25 s (the default offset) anyway.
var soakExporterFlags = []string{"--docker.timeout=5s"}

func soakSettings(t *testing.T) soakConfig {
	c := soakConfig{Duration: 15 * time.Second, Scrapers: 50, Interval: time.Second, Timeout: 3 * time.Second}
	if os.Getenv("SOAK") == "1" {
		c.Duration, c.Long = 2*time.Minute, true
	}
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second {
			t.Fatalf("SOAK_DURATION=%q: want a duration of at least 10s", v)
		}
		c.Duration, c.Long = d, d >= 2*time.Minute
	}
	// The brief's windows: the first and the last 30 s of the run; a short
	// run compares its first and last quarters, for information only.
	c.Window = min(30*time.Second, c.Duration/4)
	return c
}

// soakFault is a change of the swarm at an offset of the load.
type soakFault struct {
	At   time.Duration
	What string
	Do   func() error
}

// soakTarget is what a soak runs against.
type soakTarget struct {
	Name string
	E    *Exporter
	// DockerRequests returns the requests the daemon (or the proxy in
	// front of it) received so far: the independent count of reads.
	DockerRequests func() int
	Faults         []soakFault
}

// soakSample is what the sampler reads from the exporter's own metrics
// between two waves.
type soakSample struct {
	At                time.Duration
	Goroutines        float64
	HeapInuse, RSS    float64
	Reads, DockerReqs float64
	Up                float64
	Cluster           string // one-hot cluster status, "" when absent
	NodesDown         float64
	FailedScrape      bool
	// Quiet: no scrape of a wave was in flight when the sample began;
	// only quiet samples are compared for leaks.
	Quiet              bool
	ScrapeErr          string
	ScrapeTook         time.Duration
	ReadErrorsByReason map[string]float64
}

// soakScrapeResult is one scrape of a wave.
type soakScrapeResult struct {
	Wave int
	Took time.Duration
	Err  string // "" when the scrape was a 200 exposition that parsed
	Up   float64
}

// soakResult holds the figures of a run.
type soakResult struct {
	Cfg                    soakConfig
	Target                 string
	Waves, Scrapes, Failed int
	Late                   int // scrapes that took longer than the timeout
	Durations              []time.Duration
	UpZero                 int
	Errors                 []string
	Samples                []soakSample
	Baseline, After        soakSample // before the load; when back at rest
	BackAfter              time.Duration
	Back                   bool
	Reads                  float64 // exporter reads during the load
	ExporterDockerReqs     float64 // swarm_exporter_docker_requests_total during the load
	DockerReqs             int     // seen by the proxy or the fake during the load
	SamplerScrapes         int
	FaultLog               []string
}

// soakClient is one scraper's HTTP client: its own connection, kept alive,
// as one Prometheus server keeps one per target.
func soakClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute}}
}

// soakScrape fetches /metrics with the scrape timeout header and parses it.
func soakScrape(c *http.Client, url string, timeout time.Duration) (Metrics, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", fmt.Sprintf("%.3f", timeout.Seconds()))
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return nil, time.Since(start), err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		return nil, took, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, took, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, took, fmt.Errorf("parsing the exposition: %w", err)
	}
	m := Metrics(mfs)
	if _, ok := m.Value("docker_swarm_up"); !ok {
		return m, took, fmt.Errorf("no docker_swarm_up in the exposition")
	}
	return m, took, nil
}

// soakSum sums every series of a family.
func soakSum(m Metrics, name string) float64 {
	v := 0.0
	for _, s := range m[name].GetMetric() {
		v += sampleValue(s)
	}
	return v
}

func soakSampleOf(m Metrics) soakSample {
	s := soakSample{
		Goroutines:         soakSum(m, "go_goroutines"),
		HeapInuse:          soakSum(m, "go_memstats_heap_inuse_bytes"),
		RSS:                soakSum(m, "process_resident_memory_bytes"),
		Reads:              soakSum(m, "swarm_exporter_reads_total"),
		DockerReqs:         soakSum(m, "swarm_exporter_docker_requests_total"),
		Cluster:            m.OneHot("docker_swarm_cluster_status", "status"),
		ReadErrorsByReason: map[string]float64{},
	}
	s.Up, _ = m.Value("docker_swarm_up")
	s.NodesDown = soakSum(m, "docker_swarm_nodes") - m.sumWhere("docker_swarm_nodes", "state", "ready")
	for _, ser := range m["swarm_exporter_read_errors_total"].GetMetric() {
		for _, lp := range ser.GetLabel() {
			s.ReadErrorsByReason[lp.GetValue()] = sampleValue(ser)
		}
	}
	return s
}

// sumWhere sums the series of a family whose label has the value.
func (m Metrics) sumWhere(name, label, value string) float64 {
	v := 0.0
	for _, s := range m[name].GetMetric() {
		if hasLabels(s, []string{label, value}) {
			v += sampleValue(s)
		}
	}
	return v
}

// soakRun runs the load against tg and returns the figures; it checks
// nothing itself (see soakCheck).
func soakRun(t *testing.T, cfg soakConfig, tg soakTarget) *soakResult {
	t.Helper()
	url := tg.E.URL
	sampler := soakClient()
	defer sampler.CloseIdleConnections()
	res := &soakResult{Cfg: cfg, Target: tg.Name}

	// Warm up (connections, decoder pools, first read), then take the
	// baseline at rest.
	for i := 0; i < 5; i++ {
		if _, _, err := soakScrape(sampler, url, cfg.Timeout); err != nil {
			t.Fatalf("%s: warm-up scrape: %v", tg.Name, err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	m, _, err := soakScrape(sampler, url, cfg.Timeout)
	if err != nil {
		t.Fatalf("%s: baseline scrape: %v", tg.Name, err)
	}
	res.Baseline = soakSampleOf(m)
	dockerBefore := tg.DockerRequests()

	type scraper struct {
		c       *http.Client
		waves   chan int
		results []soakScrapeResult
	}
	scrapers := make([]*scraper, cfg.Scrapers)
	var wg sync.WaitGroup
	var waveStart sync.Map // wave -> time.Time
	var inflight atomic.Int64
	for i := range scrapers {
		sc := &scraper{c: soakClient(), waves: make(chan int, 1)}
		scrapers[i] = sc
		wg.Go(func() {
			for w := range sc.waves {
				// A scraper still busy with an earlier wave skips the
				// ones it missed rather than scraping out of step.
				if st, ok := waveStart.Load(w); ok && time.Since(st.(time.Time)) > cfg.Interval/2 {
					continue
				}
				r := soakScrapeResult{Wave: w}
				inflight.Add(1)
				m, took, err := soakScrape(sc.c, url, cfg.Timeout)
				inflight.Add(-1)
				r.Took = took
				if err != nil {
					r.Err = err.Error()
				} else {
					r.Up, _ = m.Value("docker_swarm_up")
				}
				sc.results = append(sc.results, r)
			}
		})
	}

	start := time.Now()
	// Faults, at their offsets.
	var faultsDone sync.WaitGroup
	var faultMu sync.Mutex
	for _, f := range tg.Faults {
		faultsDone.Go(func() {
			time.Sleep(time.Until(start.Add(f.At)))
			t0 := time.Now()
			err := f.Do()
			faultMu.Lock()
			defer faultMu.Unlock()
			line := fmt.Sprintf("%6.1fs %s (%v)", time.Since(start).Seconds(), f.What, time.Since(t0).Round(time.Millisecond))
			if err != nil {
				line += ": " + err.Error()
				t.Errorf("%s: fault %q: %v", tg.Name, f.What, err)
			}
			res.FaultLog = append(res.FaultLog, line)
		})
	}
	// The sampler reads the exporter's own metrics half an interval after
	// each wave, once the wave's scrapes are done (quiet), or just before
	// the next wave if they are not.
	stop := make(chan struct{})
	trigger := make(chan time.Time, 1) // the wave's start
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		for {
			var wave time.Time
			select {
			case <-stop:
				return
			case wave = <-trigger:
			}
			for inflight.Load() != 0 && time.Since(wave) < cfg.Interval*9/10 {
				time.Sleep(5 * time.Millisecond)
			}
			at, quiet := time.Since(start), inflight.Load() == 0
			m, took, err := soakScrape(sampler, url, cfg.Timeout)
			s := soakSample{FailedScrape: err != nil}
			if err != nil {
				s.ScrapeErr = err.Error()
			} else {
				s = soakSampleOf(m)
			}
			s.At, s.ScrapeTook, s.Quiet = at, took, quiet
			res.Samples = append(res.Samples, s)
		}
	}()
	// Waves.
	tick := time.NewTicker(cfg.Interval)
	for w := 0; time.Since(start) < cfg.Duration; w++ {
		fired := time.Now()
		waveStart.Store(w, fired)
		for _, sc := range scrapers {
			select {
			case sc.waves <- w:
			default: // still busy: it will skip this wave
			}
		}
		res.Waves++
		time.AfterFunc(cfg.Interval/2, func() {
			select {
			case trigger <- fired:
			default: // the sampler is still busy with the last one
			}
		})
		<-tick.C
	}
	tick.Stop()
	for _, sc := range scrapers {
		close(sc.waves)
	}
	wg.Wait()
	time.Sleep(cfg.Interval / 2)
	close(stop)
	<-samplerDone
	faultsDone.Wait()
	loadTook := time.Since(start)

	// Drop the scrapers' connections, then wait until the exporter is back
	// at rest: goroutines within the tolerance of the baseline.
	for _, sc := range scrapers {
		sc.c.CloseIdleConnections()
	}
	t0 := time.Now()
	deadline := t0.Add(soakBaselineDeadline)
	for {
		m, _, err := soakScrape(sampler, url, cfg.Timeout)
		if err == nil {
			res.After = soakSampleOf(m)
			if res.After.Goroutines <= res.Baseline.Goroutines+soakGoroutineTolerance {
				res.Back, res.BackAfter = true, time.Since(t0)
				break
			}
		}
		if time.Now().After(deadline) {
			res.BackAfter = time.Since(t0)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}

	for _, sc := range scrapers {
		for _, r := range sc.results {
			res.Scrapes++
			res.Durations = append(res.Durations, r.Took)
			if r.Took > cfg.Timeout {
				res.Late++
			}
			switch {
			case r.Err != "":
				res.Failed++
				if len(res.Errors) < 10 {
					res.Errors = append(res.Errors, fmt.Sprintf("wave %d: %s", r.Wave, r.Err))
				}
			case r.Up == 0:
				res.UpZero++
			}
		}
	}
	sort.Slice(res.Samples, func(i, j int) bool { return res.Samples[i].At < res.Samples[j].At })
	for _, s := range res.Samples {
		res.SamplerScrapes++
		if s.FailedScrape {
			res.Failed++
			res.Errors = append(res.Errors, fmt.Sprintf("sampler at %.1fs: %s", s.At.Seconds(), s.ScrapeErr))
		}
		if s.ScrapeTook > cfg.Timeout {
			res.Late++
		}
	}
	// The read and request counters are taken at rest, so that reads that
	// were in flight when the load stopped are counted.
	res.Reads = res.After.Reads - res.Baseline.Reads
	res.ExporterDockerReqs = res.After.DockerReqs - res.Baseline.DockerReqs
	res.DockerReqs = tg.DockerRequests() - dockerBefore
	t.Logf("%s: load of %v done (%d waves), at rest %v later", tg.Name, loadTook.Round(time.Millisecond), res.Waves, res.BackAfter.Round(time.Millisecond))
	return res
}

const (
	// soakGoroutineTolerance is how far above its baseline the exporter's
	// goroutine count may be at rest after the load, and how much the
	// median may grow from the first window to the last. Justification: at
	// rest the exporter runs a fixed set (runtime, server, the sampler's
	// connection) plus 2 per pooled connection to the Docker API (read and
	// write loops); a read uses at most 5 connections at once (ping, info,
	// nodes, services, tasks) and the pool may end up holding a different
	// number of them than at baseline, so 10 covers it. A leak of one
	// goroutine per scrape adds 50 per second of load, one per read about 1
	// per second: both exceed 10 within seconds.
	soakGoroutineTolerance = 10
	// soakBaselineDeadline bounds the wait for the goroutines to return:
	// a read in flight ends within --docker.timeout (5 s here); idle
	// connections of the scrapers close at once.
	soakBaselineDeadline = 20 * time.Second
	// soakHeapGrowth bounds the growth of the median heap in use from the
	// first window to the last. The heap in use oscillates with the GC
	// cycle between the live heap and up to twice it (GOGC=100), so
	// medians of 30 one-second samples differ by a few tens of percent
	// without a leak; 1.5 leaves room for that. A leak of what one scrape
	// or one read allocates (an exposition, a snapshot: tens to hundreds of
	// KiB) at 50 scrapes or 1 read per second over the minute between the
	// windows exceeds it.
	soakHeapGrowth = 1.5
	// soakRSSGrowth bounds the growth of the largest resident set size
	// from the first window to the last: the Go runtime keeps freed pages
	// for minutes before returning them, so the RSS rises to the peak of
	// the run's busiest moment and stays; a fault phase in the middle may
	// raise that peak somewhat, a leak raises it without bound.
	soakRSSGrowth = 1.5
)

// soakWindows returns the samples of the first and last windows.
func soakWindows(r *soakResult) (first, last []soakSample) {
	end := time.Duration(0)
	if n := len(r.Samples); n > 0 {
		end = r.Samples[n-1].At
	}
	for _, s := range r.Samples {
		if s.FailedScrape || !s.Quiet {
			continue
		}
		if s.At < r.Cfg.Window {
			first = append(first, s)
		}
		if s.At > end-r.Cfg.Window {
			last = append(last, s)
		}
	}
	return first, last
}

func soakStat(ss []soakSample, f func(soakSample) float64, agg string) float64 {
	if len(ss) == 0 {
		return math.NaN()
	}
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	sort.Float64s(v)
	switch agg {
	case "max":
		return v[len(v)-1]
	case "min":
		return v[0]
	}
	return v[len(v)/2]
}

func soakPercentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

const mib = 1 << 20

// soakReport renders the figures of a run (printed, and what
// docs/reliability.md records).
func soakReport(r *soakResult) string {
	first, last := soakWindows(r)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %v, %d scrapers, a wave every %v, scrape timeout %v\n", r.Target, r.Cfg.Duration, r.Cfg.Scrapers, r.Cfg.Interval, r.Cfg.Timeout)
	fmt.Fprintf(&b, "  scrapes: %d in %d waves + %d sampler scrapes; failed %d; over the timeout %d; answered up=0 %d (during faults)\n",
		r.Scrapes, r.Waves, r.SamplerScrapes, r.Failed, r.Late, r.UpZero)
	fmt.Fprintf(&b, "  scrape duration: p50 %v, p99 %v, max %v\n",
		soakPercentile(r.Durations, .5).Round(time.Microsecond*100), soakPercentile(r.Durations, .99).Round(time.Microsecond*100), soakPercentile(r.Durations, 1).Round(time.Microsecond*100))
	perRead := math.NaN()
	if r.Reads > 0 {
		perRead = float64(r.Scrapes+r.SamplerScrapes) / r.Reads
	}
	fmt.Fprintf(&b, "  reads of the swarm: %.0f for %d waves + %d samples (%.2f per wave+sample), %.1f scrapes per read\n",
		r.Reads, r.Waves, r.SamplerScrapes, r.Reads/float64(r.Waves+r.SamplerScrapes), perRead)
	fmt.Fprintf(&b, "  Docker API requests: %d seen by the daemon side, %.0f counted by the exporter; %.2f per read, %.2f per wave\n",
		r.DockerReqs, r.ExporterDockerReqs, float64(r.DockerReqs)/r.Reads, float64(r.DockerReqs)/float64(r.Waves))
	g := func(s soakSample) float64 { return s.Goroutines }
	h := func(s soakSample) float64 { return s.HeapInuse / mib }
	rss := func(s soakSample) float64 { return s.RSS / mib }
	fmt.Fprintf(&b, "  leak windows: %d and %d quiet samples (no scrape in flight) in the first and last %v\n", len(first), len(last), r.Cfg.Window)
	fmt.Fprintf(&b, "  goroutines: baseline %.0f; first %v median %.0f (max %.0f); last %v median %.0f (max %.0f); at rest %.0f after %v (back: %v)\n",
		r.Baseline.Goroutines, r.Cfg.Window, soakStat(first, g, "median"), soakStat(first, g, "max"), r.Cfg.Window,
		soakStat(last, g, "median"), soakStat(last, g, "max"), r.After.Goroutines, r.BackAfter.Round(100*time.Millisecond), r.Back)
	fmt.Fprintf(&b, "  heap in use (MiB): baseline %.1f; first window median %.1f (max %.1f); last window median %.1f (max %.1f); at rest %.1f\n",
		r.Baseline.HeapInuse/mib, soakStat(first, h, "median"), soakStat(first, h, "max"), soakStat(last, h, "median"), soakStat(last, h, "max"), r.After.HeapInuse/mib)
	fmt.Fprintf(&b, "  RSS (MiB): baseline %.1f; first window max %.1f; last window max %.1f; at rest %.1f\n",
		r.Baseline.RSS/mib, soakStat(first, rss, "max"), soakStat(last, rss, "max"), r.After.RSS/mib)
	fmt.Fprintf(&b, "  read errors by reason during the run: %v\n", soakReasonDelta(r.Baseline, r.After))
	fmt.Fprintf(&b, "  timeline (sampler): %s\n", soakTimeline(r.Samples))
	if len(r.FaultLog) > 0 {
		fmt.Fprintf(&b, "  faults:\n    %s\n", strings.Join(r.FaultLog, "\n    "))
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(&b, "  first errors:\n    %s\n", strings.Join(r.Errors, "\n    "))
	}
	return b.String()
}

func soakReasonDelta(before, after soakSample) string {
	var out []string
	for k, v := range after.ReadErrorsByReason {
		if d := v - before.ReadErrorsByReason[k]; d > 0 {
			out = append(out, fmt.Sprintf("%s=%.0f", k, d))
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, " ")
}

// soakTimeline lists the changes of what the sampler saw.
func soakTimeline(ss []soakSample) string {
	var out []string
	last := ""
	for _, s := range ss {
		a := "scrape failed"
		if !s.FailedScrape {
			a = fmt.Sprintf("up=%g", s.Up)
			if s.Cluster != "" {
				a += " " + s.Cluster
			}
			if s.NodesDown > 0 {
				a += fmt.Sprintf(" (%g nodes not ready)", s.NodesDown)
			}
		}
		if a != last {
			out = append(out, fmt.Sprintf("%.1fs %s", s.At.Seconds(), a))
			last = a
		}
	}
	return strings.Join(out, " → ")
}

// soakCheck asserts the figures of a run.
func soakCheck(t *testing.T, r *soakResult) {
	t.Helper()
	if r.Scrapes < r.Waves*r.Cfg.Scrapers/2 {
		t.Errorf("%s: only %d scrapes for %d waves of %d scrapers: the load did not happen", r.Target, r.Scrapes, r.Waves, r.Cfg.Scrapers)
	}
	if r.Failed > 0 {
		t.Errorf("%s: %d scrapes failed (not an HTTP 200 exposition that parses): %v", r.Target, r.Failed, r.Errors)
	}
	if r.Late > 0 {
		t.Errorf("%s: %d scrapes took longer than the %v scrape timeout they announced (max %v)", r.Target, r.Late, r.Cfg.Timeout, soakPercentile(r.Durations, 1))
	}
	// Shared reads: the 50 scrapes of a wave share one read; the sampler,
	// half an interval later, needs its own. Allow 1.5 reads per
	// wave+sample: a scrape of a wave may still arrive just after the
	// wave's read ended and start a second one. Unshared reads would make
	// about 51 per wave.
	budget := 1.5 * float64(r.Waves+r.SamplerScrapes)
	if r.Reads > budget {
		t.Errorf("%s: %.0f reads of the swarm for %d waves and %d samples (budget %.0f): concurrent scrapes do not share reads",
			r.Target, r.Reads, r.Waves, r.SamplerScrapes, budget)
	}
	if r.Reads == 0 {
		t.Errorf("%s: no read of the swarm during the load", r.Target)
	}
	// A read is at most 5 requests (ping, info, nodes, services, tasks; the
	// ping may be retried once as GET): the daemon side must agree.
	if float64(r.DockerReqs) > 6*r.Reads || float64(r.DockerReqs) > 6*budget {
		t.Errorf("%s: the daemon received %d requests for %.0f reads", r.Target, r.DockerReqs, r.Reads)
	}
	if !r.Back {
		t.Errorf("%s: goroutines did not return to the baseline %.0f (+%d) within %v after the load: %.0f",
			r.Target, r.Baseline.Goroutines, soakGoroutineTolerance, soakBaselineDeadline, r.After.Goroutines)
	}
	first, last := soakWindows(r)
	if len(first) == 0 || len(last) == 0 {
		// No moment without a scrape in flight: the machine is too busy
		// to tell the exporter's steady state from its load. A full soak
		// exists to judge it; a short one still has the return to the
		// baseline above.
		if r.Cfg.Long {
			t.Errorf("%s: no quiet sample in the first or last window (the machine is overloaded): cannot judge leaks", r.Target)
		} else {
			t.Logf("%s: no quiet sample in the first or last window: windows not compared", r.Target)
		}
		return
	}
	g := func(s soakSample) float64 { return s.Goroutines }
	if d := soakStat(last, g, "median") - soakStat(first, g, "median"); d > soakGoroutineTolerance {
		t.Errorf("%s: goroutines grew by %.0f (median of the first %v to the last): a leak", r.Target, d, r.Cfg.Window)
	}
	if !r.Cfg.Long {
		return // a short run's windows are too short to judge the memory
	}
	h := func(s soakSample) float64 { return s.HeapInuse }
	if f, l := soakStat(first, h, "median"), soakStat(last, h, "median"); l > soakHeapGrowth*f {
		t.Errorf("%s: the heap in use grew from %.1f MiB to %.1f MiB (medians of the first and last %v), more than ×%.1f",
			r.Target, f/mib, l/mib, r.Cfg.Window, soakHeapGrowth)
	}
	rss := func(s soakSample) float64 { return s.RSS }
	if f, l := soakStat(first, rss, "max"), soakStat(last, rss, "max"); l > soakRSSGrowth*f {
		t.Errorf("%s: the RSS grew from %.1f MiB to %.1f MiB (max of the first and last %v), more than ×%.1f",
			r.Target, f/mib, l/mib, r.Cfg.Window, soakRSSGrowth)
	}
}

// soakSawState reports whether some sample between from and to satisfies f.
func soakSawState(r *soakResult, from, to time.Duration, f func(soakSample) bool) bool {
	for _, s := range r.Samples {
		if s.At >= from && s.At <= to && !s.FailedScrape && f(s) {
			return true
		}
	}
	return false
}

// TestSoakSynthetic: the load against a synthetic 100-node swarm served
// from memory (internal/fakedocker), which goes through a node going down,
// a hung daemon and a failing daemon midway.
func TestSoakSynthetic(t *testing.T) {
	t0 := time.Now()
	cfg := soakSettings(t)
	tmpl := testkit.Fixture(t, "healthy-3m2w")
	opts := fakedocker.SynthOptions{Managers: 5, Workers: 95, Services: 30, Replicas: 5, GlobalServices: 2, HistoryPerSlot: 5}
	healthy, err := fakedocker.Synth(tmpl, opts)
	if err != nil {
		t.Fatal(err)
	}
	down, err := soakNodeDownFixture(healthy, "node-0050")
	if err != nil {
		t.Fatal(err)
	}
	failing := soakFailingFixture(healthy, "nodes", http.StatusInternalServerError,
		`{"message":"rpc error: code = Unknown desc = simulated failure"}`)
	fake := fakedocker.New(healthy)
	t.Cleanup(fake.Close)
	e := StartExporter(t, fake.Host, soakExporterFlags...)

	d := cfg.Duration
	tg := soakTarget{
		Name:           "synthetic 100-node swarm (5 managers, 95 workers, 32 services, 350 tasks)",
		E:              e,
		DockerRequests: fake.TotalRequests,
		Faults: []soakFault{
			{d * 20 / 100, "a worker goes down (node-0050)", func() error { fake.SetFixture(down); return nil }},
			{d * 35 / 100, "the daemon answers /nodes with 500", func() error { fake.SetFixture(failing); return nil }},
			// Requests that arrive while the delay is set hang until the
			// exporter gives up (--docker.timeout, 5 s).
			{d * 45 / 100, "the daemon hangs on /tasks", func() error { fake.SetFixture(healthy); fake.Delay("tasks", time.Hour); return nil }},
			{d * 55 / 100, "the daemon is healthy again", func() error { fake.Delay("tasks", 0); return nil }},
		},
	}
	r := soakRun(t, cfg, tg)
	t.Logf("figures:\n%s", soakReport(r))
	soakCheck(t, r)
	// The faults were seen, and the end is healthy.
	for _, c := range []struct {
		what     string
		from, to time.Duration
		f        func(soakSample) bool
	}{
		{"the worker down", d * 20 / 100, d * 35 / 100, func(s soakSample) bool { return s.Up == 1 && s.Cluster == "warning" && s.NodesDown == 1 }},
		{"the failing daemon (up 0)", d * 35 / 100, d * 45 / 100, func(s soakSample) bool { return s.Up == 0 }},
		{"the hung daemon (up 0)", d * 45 / 100, d * 55 / 100, func(s soakSample) bool { return s.Up == 0 }},
		{"a healthy swarm at the end", d * 80 / 100, d, func(s soakSample) bool { return s.Up == 1 && s.Cluster == "ok" }},
	} {
		if !soakSawState(r, c.from, c.to, c.f) {
			t.Errorf("the sampler never saw %s between %v and %v: %s", c.what, c.from, c.to, soakTimeline(r.Samples))
		}
	}
	if got := fake.Requests(); got["tasks-all"] > 0 {
		t.Errorf("the exporter read the unfiltered task list %d times", got["tasks-all"])
	}
	t.Logf("TestSoakSynthetic took %v", time.Since(t0).Round(time.Millisecond))
}

// TestSoakRealSwarm: the load against the exporter on the host reading a
// real 3-manager, 2-worker swarm through the filtering proxy, while a
// manager is killed and restarted midway: in a full soak the leader (the
// manager the exporter reads goes through an election), in the short CI
// run another manager (an election would outlast it).
func TestSoakRealSwarm(t *testing.T) {
	t0 := time.Now()
	cfg := soakSettings(t)
	s := swarmtest.StartForTest(t, swarmtest.Options{DispatcherHeartbeat: 2 * time.Second})
	img := swarmtest.WorkloadImage
	for _, args := range [][]string{
		{"--name", "web", "--replicas", "6", "--label", "com.docker.stack.namespace=shop", img},
		{"--name", "agent", "--mode", "global", img, "sleep"},
	} {
		if _, err := s.CreateService(args...); err != nil {
			t.Fatal(err)
		}
	}
	m1, m2, m3 := s.Node("m1"), s.Node("m2"), s.Node("m3")
	e := StartExporter(t, m2.Host(), soakExporterFlags...)
	e.WaitFor(t, 90*time.Second, "a healthy swarm with its services running", func(m Metrics) bool {
		return m.Is(1, "docker_swarm_status", "status", "ok") &&
			m.Is(6, "docker_swarm_service_replicas_running", "service_name", "web") &&
			m.Is(5, "docker_swarm_service_replicas_running", "service_name", "agent")
	})
	victim := m3
	if cfg.Long {
		leader, err := s.Leader()
		if err != nil {
			t.Fatal(err)
		}
		if leader != m1 {
			t.Fatalf("the leader is %s, expected m1", leader.Name)
		}
		victim = m1
	}
	d := cfg.Duration
	proxyTotal := func() int {
		n := 0
		for _, v := range e.Proxy.Requests() {
			n += v
		}
		return n
	}
	tg := soakTarget{
		Name:           "real swarm (3 managers, 2 workers, exporter on the host reading m2 through the proxy)",
		E:              e,
		DockerRequests: proxyTotal,
		Faults: []soakFault{
			{d * 30 / 100, "kill " + victim.Name, func() error { return s.Kill(victim) }},
			{d * 65 / 100, "restart " + victim.Name, func() error {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				return s.Restart(ctx, victim)
			}},
		},
	}
	r := soakRun(t, cfg, tg)
	t.Logf("figures:\n%s", soakReport(r))
	soakCheck(t, r)
	if cfg.Long {
		// 42 s of a dead leader: the election, then the node seen down.
		if !soakSawState(r, d*30/100, d*70/100, func(s soakSample) bool { return s.Up == 1 && s.Cluster == "warning" && s.NodesDown >= 1 }) {
			t.Errorf("the exporter never reported the killed leader down: %s", soakTimeline(r.Samples))
		}
		if !soakSawState(r, d*85/100, d, func(s soakSample) bool { return s.Up == 1 && s.Cluster == "ok" }) {
			t.Errorf("the exporter did not report a healthy swarm again by the end: %s", soakTimeline(r.Samples))
		}
	}
	t.Logf("TestSoakRealSwarm took %v", time.Since(t0).Round(time.Millisecond))
}

// soakNodeDownFixture returns a copy of f in which the node with the given
// hostname is down, as a manager reports a node whose daemon died: Status
// State "down"; its tasks keep their running state (see
// testdata/docker/README.md).
func soakNodeDownFixture(f *fakedocker.Fixture, hostname string) (*fakedocker.Fixture, error) {
	var nodes []map[string]any
	if err := json.Unmarshal(f.Responses["nodes"].Body, &nodes); err != nil {
		return nil, err
	}
	found := false
	for _, n := range nodes {
		if d, _ := n["Description"].(map[string]any); d != nil && d["Hostname"] == hostname {
			n["Status"].(map[string]any)["State"] = "down"
			n["Status"].(map[string]any)["Message"] = "heartbeat failure"
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("no node %s in the fixture", hostname)
	}
	body, err := json.Marshal(nodes)
	if err != nil {
		return nil, err
	}
	out := soakCopyFixture(f)
	out.Responses["nodes"] = fakedocker.Response{Status: http.StatusOK, Body: body}
	return out, nil
}

// soakFailingFixture returns a copy of f whose endpoint answers status.
func soakFailingFixture(f *fakedocker.Fixture, endpoint string, status int, body string) *fakedocker.Fixture {
	out := soakCopyFixture(f)
	out.Responses[endpoint] = fakedocker.Response{Status: status, Body: []byte(body)}
	return out
}

func soakCopyFixture(f *fakedocker.Fixture) *fakedocker.Fixture {
	out := &fakedocker.Fixture{Ping: f.Ping.Clone(), Responses: map[string]fakedocker.Response{}}
	for k, v := range f.Responses {
		out.Responses[k] = v
	}
	return out
}
