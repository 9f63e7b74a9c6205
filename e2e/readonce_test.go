package e2e

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"

	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// The leader's cost: with deploy/exporter.yml's read flags (--read.services
// =leader, --read.max-age just under deploy/prometheus.yml's scrape
// interval), one exporter per manager, each scraped by two Prometheus-like
// scrapers, makes the managers together serve exactly one task list and
// one service list per interval, from the instance on the leader; when the
// leader dies, the instance on the new one takes the reading over, and the
// count stays one per interval. Requests are counted at the proxy in front
// of every exporter, not as CPU, so that the test cannot flake on a busy
// machine (tools/managerbench measures the CPU), and each in the interval
// its read began in (see readRounds).
func TestLeaderReadsOncePerInterval(t *testing.T) {
	flags, maxAge, interval, scrapeTimeout := deployReadSettings(t)
	t.Logf("deploy/exporter.yml's read flags %v; deploy/prometheus.yml scrapes every %v (timeout %v)", flags, interval, scrapeTimeout)
	s := swarmtest.StartForTest(t, swarmtest.Options{})
	if _, err := s.CreateService("--name", "web", "--replicas", "2", swarmtest.WorkloadImage); err != nil {
		t.Fatal(err)
	}
	leader, err := s.Leader()
	faultMust(t, err)
	managers := s.Managers()
	exps := make([]*Exporter, len(managers))
	for i, m := range managers {
		exps[i] = StartExporter(t, m.Host(), flags...)
	}
	for i, e := range exps {
		e.WaitFor(t, time.Minute, "the instance on "+managers[i].Name+" reads the swarm", func(m Metrics) bool {
			if managers[i] == leader {
				return m.Is(1, "docker_swarm_up") && m.Is(2, "docker_swarm_service_replicas_running", "service_name", "web")
			}
			return m.Is(1, "docker_swarm_up")
		})
	}

	const scrapersPer = 2
	sc := startReadScrapers(exps, managers, scrapersPer, interval, scrapeTimeout)
	defer sc.stop()
	t.Logf("leader %s; %d instances × %d scrapers, one scrape every %v each, rounds from %s",
		leader.Name, len(exps), scrapersPer, interval, sc.start.Format("15:04:05.000"))

	// Round 0 warms up (the instances read shortly before it); rounds 1-3
	// are the steady state. The leader dies at the boundary before round 4,
	// when no read is under way.
	const killRound = 4
	sc.sleepUntilRound(killRound)
	faultMust(t, s.Kill(leader))
	killed := time.Now()
	var newLeader *swarmtest.Node
	faultMust(t, s.WaitFor(2*time.Minute, "a new leader", func() (bool, error) {
		l, err := s.Leader()
		if err != nil {
			return false, nil
		}
		newLeader = l
		return l != leader, nil
	}))
	elected := time.Now()
	t.Logf("killed %s at %s; the harness sees %s as the leader %v later", leader.Name, killed.Format("15:04:05.000"),
		newLeader.Name, elected.Sub(killed).Round(100*time.Millisecond))
	newIdx := indexOf(managers, newLeader)

	// The instance on the new leader takes the services over.
	var takeover scrapeRecord
	deadline := time.Now().Add(interval + maxAge + time.Minute)
	for {
		if r, ok := sc.first(newIdx, killed, func(m Metrics) bool { return m.Is(1, "docker_swarm_local_node_leader") }); ok {
			takeover = r
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the instance on %s never said its node is the leader:\n%s", newLeader.Name, sc.timeline(newIdx))
		}
		time.Sleep(time.Second)
	}
	delay := takeover.at.Sub(elected)
	t.Logf("the instance on %s first reports its node as the leader %v after the harness saw the election (scrape at %s)",
		newLeader.Name, delay.Round(100*time.Millisecond), takeover.at.Format("15:04:05.000"))
	// Its scrapes reuse the read from before the crash for up to max-age,
	// and it reads at least once per interval.
	if delay > interval+maxAge {
		t.Errorf("the new leader's instance took %v to report the leadership, want at most interval + max-age = %v", delay, interval+maxAge)
	}
	if !takeover.m.Is(2, "docker_swarm_service_replicas_running", "service_name", "web") || !takeover.m.Has("docker_swarm_status") {
		t.Errorf("the first scrape in which the new leader's instance says it is on the leader lacks the services (they are read in the same read):\n%s",
			takeover.m.Summary())
	}
	if !strings.Contains(exps[newIdx].Logs(), "this manager is the swarm's leader: reading the services and tasks too") {
		t.Errorf("the takeover is not logged:\n%s", exps[newIdx].Logs())
	}

	// Two full rounds after the takeover's.
	lastRound := sc.roundOf(takeover.at) + 2
	sc.sleepUntilRound(lastRound + 1)
	time.Sleep(scrapeTimeout / 4) // let the last scrapes land
	sc.stop()

	// The reads, round by round.
	for r := 1; r <= lastRound; r++ {
		counts := sc.reads(r)
		t.Logf("round %d: %s", r, counts)
		tasks, services := counts.sum("GET /tasks"), counts.sum("GET /services")
		steadyBefore := r < killRound
		steadyAfter := r > sc.roundOf(takeover.at)
		switch {
		case tasks > 1 || services > 1:
			t.Errorf("round %d: the managers served %d task lists and %d service lists, want at most one of each: %s", r, tasks, services, counts)
		case steadyBefore && (counts.of(leader, "GET /tasks") != 1 || counts.of(leader, "GET /services") != 1):
			t.Errorf("round %d, before the crash: want one task list and one service list, both from the instance on the leader %s: %s", r, leader.Name, counts)
		case steadyAfter && (counts.of(newLeader, "GET /tasks") != 1 || counts.of(newLeader, "GET /services") != 1):
			t.Errorf("round %d, after the takeover: want one task list and one service list, both from the instance on the new leader %s: %s", r, newLeader.Name, counts)
		}
		for _, m := range managers {
			if (steadyBefore || steadyAfter) && m.Running() && counts.of(m, "GET /nodes") != 1 {
				t.Errorf("round %d: the instance on %s read /nodes %d times, want once per interval", r, m.Name, counts.of(m, "GET /nodes"))
			}
		}
	}

	// What each scrape said: services only from the instance on the
	// leader; every scrape answered.
	for i := range exps {
		for _, r := range sc.records(i) {
			switch {
			case r.err != nil:
				t.Errorf("%s scrape of the instance on %s failed: %v", r.at.Format("15:04:05.000"), managers[i].Name, r.err)
			case r.m.Is(1, "docker_swarm_local_node_leader"):
				if !r.m.Has("docker_swarm_service_info", "service_name", "web") || !r.m.Has("docker_swarm_status") || !r.m.Has("docker_swarm_services_status") {
					t.Errorf("%s: the instance on %s, on the leader, does not report the services:\n%s", r.at.Format("15:04:05.000"), managers[i].Name, r.m.Summary())
				}
			default:
				if r.m.Has("docker_swarm_service_info") || r.m.Has("docker_swarm_status") || r.m.Has("docker_swarm_services_status") {
					t.Errorf("%s: the instance on %s, not on the leader, reports services:\n%s", r.at.Format("15:04:05.000"), managers[i].Name, r.m.Summary())
				}
				if r.m.Is(1, "docker_swarm_up") && !r.m.Has("docker_swarm_cluster_status") {
					t.Errorf("%s: the instance on %s reads the swarm but reports no cluster status:\n%s", r.at.Format("15:04:05.000"), managers[i].Name, r.m.Summary())
				}
			}
		}
	}
	if t.Failed() {
		for i := range exps {
			t.Logf("instance on %s:\n%s", managers[i].Name, sc.timeline(i))
		}
	}
}

// deployReadSettings returns the --read.* flags of deploy/exporter.yml,
// its max-age, and deploy/prometheus.yml's scrape interval and timeout.
func deployReadSettings(t *testing.T) (flags []string, maxAge, interval, timeout time.Duration) {
	t.Helper()
	var stack struct {
		Services map[string]struct{ Command []string }
	}
	var prom struct {
		Global struct {
			ScrapeInterval string `yaml:"scrape_interval"`
			ScrapeTimeout  string `yaml:"scrape_timeout"`
		}
	}
	for file, v := range map[string]any{stackExporterFile: &stack, "../deploy/prometheus.yml": &prom} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	for _, f := range stack.Services["swarm-exporter"].Command {
		if strings.HasPrefix(f, "--read.") {
			flags = append(flags, f)
		}
		if v, ok := strings.CutPrefix(f, "--read.max-age="); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("deploy/exporter.yml: %s: %v", f, err)
			}
			maxAge = d
		}
	}
	var err1, err2 error
	interval, err1 = time.ParseDuration(prom.Global.ScrapeInterval)
	timeout, err2 = time.ParseDuration(prom.Global.ScrapeTimeout)
	if err1 != nil || err2 != nil {
		t.Fatalf("deploy/prometheus.yml: scrape_interval %q, scrape_timeout %q", prom.Global.ScrapeInterval, prom.Global.ScrapeTimeout)
	}
	if maxAge <= 0 || maxAge >= interval {
		t.Fatalf("deploy/exporter.yml: --read.max-age %v, want a positive duration under the scrape interval %v (flags %v)", maxAge, interval, flags)
	}
	return flags, maxAge, interval, timeout
}

func indexOf(nodes []*swarmtest.Node, n *swarmtest.Node) int {
	for i, m := range nodes {
		if m == n {
			return i
		}
	}
	return -1
}

// readScrapers scrape every instance with m Prometheus-like scrapers each,
// once per interval at its own offset (Prometheus spreads its targets over
// the interval, and two servers scrape the same target at different
// moments), and record every answer.
type readScrapers struct {
	exps     []*Exporter
	nodes    []*swarmtest.Node
	start    time.Time
	interval time.Duration
	gap      time.Duration // between two consecutive scrapes of the schedule
	stopc    chan struct{}
	once     sync.Once
	wg       sync.WaitGroup

	mu   sync.Mutex
	recs [][]scrapeRecord // by instance
}

type scrapeRecord struct {
	at  time.Time
	m   Metrics
	err error
}

func startReadScrapers(exps []*Exporter, nodes []*swarmtest.Node, m int, interval, timeout time.Duration) *readScrapers {
	total := len(exps) * m
	sc := &readScrapers{exps: exps, nodes: nodes, start: time.Now().Add(time.Second), interval: interval,
		gap: interval / time.Duration(total), stopc: make(chan struct{}), recs: make([][]scrapeRecord, len(exps))}
	for i, e := range exps {
		for j := range m {
			offset := sc.gap * time.Duration(i*m+j)
			sc.wg.Go(func() {
				for r := 0; ; r++ {
					select {
					case <-sc.stopc:
						return
					case <-time.After(time.Until(sc.start.Add(offset + time.Duration(r)*interval))):
					}
					at := time.Now()
					metrics, _, err := e.Scrape(timeout)
					sc.mu.Lock()
					sc.recs[i] = append(sc.recs[i], scrapeRecord{at, metrics, err})
					sc.mu.Unlock()
				}
			})
		}
	}
	return sc
}

func (sc *readScrapers) stop() {
	sc.once.Do(func() { close(sc.stopc) })
	sc.wg.Wait()
}

// Round r runs from half a gap before its first scrape to half a gap
// before the next round's: its boundaries fall where no scrape is due.
func (sc *readScrapers) roundStart(r int) time.Time {
	return sc.start.Add(time.Duration(r)*sc.interval - sc.gap/2)
}

func (sc *readScrapers) roundOf(at time.Time) int {
	return int(at.Sub(sc.roundStart(0)) / sc.interval)
}

func (sc *readScrapers) sleepUntilRound(r int) {
	time.Sleep(time.Until(sc.roundStart(r)))
}

func (sc *readScrapers) records(i int) []scrapeRecord {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return append([]scrapeRecord(nil), sc.recs[i]...)
}

// first returns instance i's first successful scrape at or after t that
// satisfies cond.
func (sc *readScrapers) first(i int, t time.Time, cond func(Metrics) bool) (scrapeRecord, bool) {
	for _, r := range sc.records(i) {
		if !r.at.Before(t) && r.err == nil && cond(r.m) {
			return r, true
		}
	}
	return scrapeRecord{}, false
}

// timeline renders what instance i said and read, for failure messages.
func (sc *readScrapers) timeline(i int) string {
	var lines []string
	for _, r := range sc.records(i) {
		a := "error " + fmt.Sprint(r.err)
		if r.err == nil {
			a = fmt.Sprintf("up %g, local leader %g, services %v", faultValue(r.m, "docker_swarm_up"),
				faultValue(r.m, "docker_swarm_local_node_leader"), r.m.Has("docker_swarm_service_info"))
		}
		lines = append(lines, fmt.Sprintf("  scrape %s (round %d): %s", r.at.Format("15:04:05.000"), sc.roundOf(r.at), a))
	}
	log := sc.exps[i].Proxy.Log()
	rounds := sc.readRounds(log)
	for k, p := range log {
		if !p.At.Before(sc.start.Add(-sc.interval)) {
			lines = append(lines, fmt.Sprintf("  request %s (round %d, of a read begun in round %d): %s",
				p.At.Format("15:04:05.000"), sc.roundOf(p.At), rounds[k], p.Req))
		}
	}
	return strings.Join(lines, "\n")
}

// readRounds gives each request of an instance's log the round in which
// its read began. Every read begins with a ping, and a read can end in the
// next round: during an election a manager may take seconds to answer
// /info, and the instance that finds its node leading then fetches the
// services and tasks. Those belong to the read that began in the earlier
// round, as the read's age for --read.max-age counts from its start.
func (sc *readScrapers) readRounds(log []ProxyRequest) []int {
	rounds := make([]int, len(log))
	began := -1
	for k, p := range log {
		if p.Req == "HEAD /_ping" {
			began = sc.roundOf(p.At)
		}
		rounds[k] = began
		if began < 0 {
			rounds[k] = sc.roundOf(p.At)
		}
	}
	return rounds
}

// roundReads are the requests of the reads begun in one round, by instance.
type roundReads struct {
	nodes  []*swarmtest.Node
	counts []map[string]int
}

func (sc *readScrapers) reads(r int) roundReads {
	out := roundReads{nodes: sc.nodes}
	for _, e := range sc.exps {
		c := map[string]int{}
		log := e.Proxy.Log()
		for k, began := range sc.readRounds(log) {
			if began == r {
				c[log[k].Req]++
			}
		}
		out.counts = append(out.counts, c)
	}
	return out
}

func (rr roundReads) sum(req string) int {
	n := 0
	for _, c := range rr.counts {
		n += c[req]
	}
	return n
}

func (rr roundReads) of(n *swarmtest.Node, req string) int {
	return rr.counts[indexOf(rr.nodes, n)][req]
}

func (rr roundReads) String() string {
	var parts []string
	for i, n := range rr.nodes {
		parts = append(parts, fmt.Sprintf("%s nodes %d services %d tasks %d", n.Name,
			rr.counts[i]["GET /nodes"], rr.counts[i]["GET /services"], rr.counts[i]["GET /tasks"]))
	}
	return strings.Join(parts, "; ")
}
