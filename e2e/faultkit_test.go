package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// Helpers of the fault, topology, unreadable-daemon, TLS and leader-change
// scenarios. Their names start with "fault" so that they cannot clash with
// helpers other files of the package add.

// faultScrape is one scrape seen by faultPoll.
type faultScrape struct {
	M    Metrics       // nil when the scrape failed
	Took time.Duration // wall time of the HTTP request
	Err  error
	At   time.Duration // since the poll began
	N    int           // 0 for the first scrape
}

// faultPollOpts configures faultPoll.
type faultPollOpts struct {
	What string
	// Every is the pause between the end of one scrape and the next.
	Every time.Duration
	// ScrapeTimeout is sent as X-Prometheus-Scrape-Timeout-Seconds.
	ScrapeTimeout time.Duration
	// Timeout fails the test when visit has not returned true by then.
	Timeout time.Duration
}

// faultPoll scrapes e until visit returns true, and fails the test after
// opts.Timeout with what the last scrape said. visit sees every scrape,
// failed ones included (M nil, Err set), so that it can assert invariants
// on each of them; it may call t.Errorf or t.Fatalf.
func faultPoll(t *testing.T, e *Exporter, opts faultPollOpts, visit func(s faultScrape) bool) faultScrape {
	t.Helper()
	if opts.Every == 0 {
		opts.Every = 250 * time.Millisecond
	}
	if opts.ScrapeTimeout == 0 {
		opts.ScrapeTimeout = 10 * time.Second
	}
	start := time.Now()
	var last faultScrape
	for n := 0; ; n++ {
		m, took, err := e.Scrape(opts.ScrapeTimeout)
		last = faultScrape{M: m, Took: took, Err: err, At: time.Since(start), N: n}
		if visit(last) {
			return last
		}
		if t.Failed() {
			t.FailNow()
		}
		if !e.Running() {
			t.Fatalf("%s: the exporter exited:\n%s", opts.What, e.Logs())
		}
		if time.Since(start) > opts.Timeout {
			t.Fatalf("after %v (%d scrapes): %s did not happen; last scrape error %v:\n%s",
				opts.Timeout, n+1, opts.What, last.Err, last.M.Summary())
		}
		time.Sleep(opts.Every)
	}
}

// faultStatus returns the status at 1 of a one-hot status family ("ok",
// "warning", "ko"), "" when the family is absent or not one-hot.
func faultStatus(m Metrics, family string, labels ...string) string {
	return m.OneHot(family, "status", labels...)
}

// faultValue returns a series' value, or -1 when it is absent or ambiguous,
// for log lines and failure messages.
func faultValue(m Metrics, name string, labels ...string) float64 {
	v, ok := m.Value(name, labels...)
	if !ok {
		return -1
	}
	return v
}

// faultLogLines returns the exporter's log lines that contain every one of
// the substrings.
func faultLogLines(e *Exporter, substrings ...string) []string {
	var out []string
	for _, l := range strings.Split(e.Logs(), "\n") {
		ok := l != ""
		for _, s := range substrings {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// faultDockerService is Docker's own view of a service: GET
// /services?status=true, as `docker service ls` shows it.
type faultDockerService struct {
	ID   string
	Spec struct {
		Name string
		Mode struct {
			Replicated *struct{ Replicas uint64 }
			Global     *struct{}
		}
	}
	ServiceStatus *struct {
		RunningTasks, DesiredTasks, CompletedTasks uint64
	}
}

// faultDockerServices reads GET /services?status=true from node n, by name.
func faultDockerServices(n *swarmtest.Node) (map[string]faultDockerService, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var list []faultDockerService
	if err := n.GetJSON(ctx, "/v"+n.APIVersion()+"/services?status=true", &list); err != nil {
		return nil, err
	}
	out := make(map[string]faultDockerService, len(list))
	for _, s := range list {
		if s.ServiceStatus == nil {
			return nil, fmt.Errorf("service %s has no ServiceStatus", s.Spec.Name)
		}
		out[s.Spec.Name] = s
	}
	return out, nil
}

// faultTaskCounts counts the tasks of a service (every task Docker keeps,
// history included) by "DesiredState/State@node".
func faultTaskCounts(s *swarmtest.Swarm, tasks []swarmtest.Task) map[string]int {
	out := map[string]int{}
	for _, tk := range tasks {
		node := "-"
		if n := s.NodeByID(tk.NodeID); n != nil {
			node = n.Name
		}
		out[tk.DesiredState+"/"+tk.State+"@"+node]++
	}
	return out
}

// faultMust fails the test on err.
func faultMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// faultSeries is one expected series value.
type faultSeries struct {
	want   float64
	name   string
	labels []string
}

// faultExpect checks series values of one scrape.
func faultExpect(t *testing.T, m Metrics, want []faultSeries) {
	t.Helper()
	for _, c := range want {
		if !m.Is(c.want, c.name, c.labels...) {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, faultValue(m, c.name, c.labels...), c.want)
		}
	}
}

// faultTick starts a scrape every opts.Every whether the previous ones
// have answered or not (they overlap while the daemon hangs), and passes
// the answers to visit as they arrive, until visit returns true; it fails
// the test after opts.Timeout. At is when the scrape started, since the
// first one. Scrapes still in flight when it returns are left to finish
// on their own; their answers are dropped.
func faultTick(t *testing.T, e *Exporter, opts faultPollOpts, visit func(s faultScrape) bool) {
	t.Helper()
	start := time.Now()
	results := make(chan faultScrape)
	stop := make(chan struct{})
	tick := time.NewTicker(opts.Every)
	defer tick.Stop()
	launch := func(n int) {
		go func() {
			at := time.Since(start)
			m, took, err := e.Scrape(opts.ScrapeTimeout)
			select {
			case results <- faultScrape{M: m, Took: took, Err: err, At: at, N: n}:
			case <-stop:
			}
		}()
	}
	defer close(stop)
	n := 0
	launch(n)
	deadline := time.After(opts.Timeout)
	var last faultScrape
	for {
		select {
		case <-tick.C:
			n++
			launch(n)
		case sc := <-results:
			last = sc
			if visit(sc) {
				return
			}
			if t.Failed() {
				t.FailNow()
			}
			if !e.Running() {
				t.Fatalf("%s: the exporter exited:\n%s", opts.What, e.Logs())
			}
		case <-deadline:
			t.Fatalf("after %v (%d scrapes): %s did not happen; last scrape error %v:\n%s",
				opts.Timeout, n+1, opts.What, last.Err, last.M.Summary())
		}
	}
}

// faultAwaitLogLines waits up to 5 s for at least one log line with every
// substring (the exporter's output reaches the buffer through a pipe, after
// the scrape that caused it may have returned), then returns them all.
func faultAwaitLogLines(e *Exporter, substrings ...string) []string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines := faultLogLines(e, substrings...)
		if len(lines) > 0 || time.Now().After(deadline) {
			return lines
		}
		time.Sleep(50 * time.Millisecond)
	}
}
