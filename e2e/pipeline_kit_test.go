package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// Helpers of TestPipeline (pipeline_test.go). Their names start with
// "pipe" so that they cannot clash with other files' helpers.

// pipeJob is the scrape job of the exporters (the shipped alerts/prometheus.yml's).
const pipeJob = "swarm_exporter"

// pipeFor is the for: of each alert in the test's copy of the rules. Each is
// shorter than the shipped one but keeps its purpose on this swarm: the
// exporter alerts and the 10-minute service alerts still ride out the
// blips the scenarios cause (an election makes the surviving instances
// answer docker_swarm_up 0 for up to ~45 s; a lost quorum makes the
// survivor hang ~40 s before it answers "no leader"), so that whatever
// fires here would fire in production for a longer outage.
var pipeFor = map[string]time.Duration{
	"SwarmQuorumLost":              15 * time.Second,
	"SwarmClusterStatusKO":         15 * time.Second,
	"SwarmClusterStatusWarning":    20 * time.Second,
	"SwarmQuorumAtRisk":            20 * time.Second,
	"SwarmClusterBelowMinimumSize": 60 * time.Second,
	"SwarmManagersEven":            60 * time.Second,
	"SwarmTooManyManagers":         60 * time.Second,
	"SwarmLeaderChangesFrequent":   60 * time.Second,
	"SwarmEngineVersionsDiffer":    60 * time.Second,
	"SwarmNodeDown":                15 * time.Second,
	"SwarmManagerUnreachable":      60 * time.Second, // rides out the ~45 s before the node of a dead manager is seen down
	"SwarmNodeFlapping":            30 * time.Second,
	"SwarmServiceDown":             15 * time.Second,
	"SwarmServiceUpdatePaused":     30 * time.Second,
	"SwarmServiceDegraded":         60 * time.Second,
	"SwarmServiceCrashLooping":     60 * time.Second,
	"SwarmServiceTasksRejected":    20 * time.Second,
	"SwarmServiceTasksPending":     60 * time.Second,
	"SwarmExporterDown":            60 * time.Second,
	"SwarmServicesNotRead":         60 * time.Second,
	"SwarmExporterTargetDown":      60 * time.Second,
	"SwarmExporterCannotRead":      60 * time.Second,
}

// pipeBreak names deliberate breakages (SWARM_PIPELINE_BREAK, comma
// separated) that TestPipeline must catch; see pipeline_test.go.
func pipeBreak(name string) bool {
	for _, b := range strings.Split(os.Getenv("SWARM_PIPELINE_BREAK"), ",") {
		if strings.TrimSpace(b) == name {
			return true
		}
	}
	return false
}

// pipeInstance is one exporter, run on the host for one manager, as a
// global service constrained to managers would run it. It listens on a
// fixed address (its Prometheus target) across restarts.
type pipeInstance struct {
	Node  *swarmtest.Node
	Addr  string // host:port, the target's instance label
	Flags []string
	E     *Exporter // nil while stopped
}

// pipeQ runs an instant query, failing the test on error.
func pipeQ(t *testing.T, prom *monitoring.Prometheus, expr string) []monitoring.Sample {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := prom.Query(ctx, expr)
	if err != nil {
		t.Fatalf("query %s: %v", expr, err)
	}
	return res
}

// pipeWaitQuery polls an instant query every 500 ms until cond holds on its
// result, and fails the test after timeout with the last result.
func pipeWaitQuery(t *testing.T, prom *monitoring.Prometheus, what, expr string, timeout time.Duration, cond func([]monitoring.Sample) bool) []monitoring.Sample {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := prom.Query(ctx, expr)
		cancel()
		if err == nil && cond(res) {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s: %s gives %s (err %v)", timeout, what, expr, pipeSamples(res), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// pipeSamples renders a result for messages.
func pipeSamples(res []monitoring.Sample) string {
	var out []string
	for _, s := range res {
		out = append(out, fmt.Sprintf("%s %g", monitoring.LabelsKey(s.Metric), s.Value))
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, "; ")
}

// pipeValues maps a result's label sets (without __name__) to values.
func pipeValues(res []monitoring.Sample) map[string]float64 {
	out := map[string]float64{}
	for _, s := range res {
		out[monitoring.LabelsKey(s.Metric)] = s.Value
	}
	return out
}

// pipeDelivery is one alert of one notification the webhook received.
type pipeDelivery struct {
	N     int // index of the notification
	At    time.Time
	Path  string
	Group string
	monitoring.NotifiedAlert
}

// pipeDeliveries flattens the webhook's notifications received at or
// after since.
func pipeDeliveries(hook *monitoring.Webhook, since time.Time) []pipeDelivery {
	var out []pipeDelivery
	for i, n := range hook.Notifications() {
		if n.Received.Before(since) {
			continue
		}
		for _, a := range n.Alerts {
			out = append(out, pipeDelivery{N: i, At: n.Received, Path: n.Path, Group: n.GroupKey, NotifiedAlert: a})
		}
	}
	return out
}

// pipeMatch selects alerts by name and label values.
type pipeMatch struct {
	Name   string
	Labels map[string]string
}

func (m pipeMatch) String() string {
	l := map[string]string{"alertname": m.Name}
	for k, v := range m.Labels {
		l[k] = v
	}
	return monitoring.LabelsKey(l)
}

func (m pipeMatch) matches(labels map[string]string) bool {
	if labels["alertname"] != m.Name {
		return false
	}
	for k, v := range m.Labels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// pipeWaitDelivered waits until the webhook has received, at or after
// since, the alert m with status (firing or resolved), and returns the
// first such delivery.
func pipeWaitDelivered(t *testing.T, hook *monitoring.Webhook, m pipeMatch, status string, since time.Time, timeout time.Duration) pipeDelivery {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, d := range pipeDeliveries(hook, since) {
			if d.Status == status && m.matches(d.Labels) {
				return d
			}
		}
		if time.Now().After(deadline) {
			var got []string
			for _, d := range pipeDeliveries(hook, since) {
				got = append(got, d.Status+" "+d.Key())
			}
			t.Fatalf("after %v the webhook has not received %s %s; since %s it received: %v",
				timeout, status, m, since.Format("15:04:05"), got)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// pipeRun is the longest run of consecutive points (at most 1.5 steps
// apart) of a range query's series, as a duration.
func pipeRun(points []monitoring.Point, step time.Duration) time.Duration {
	var best, cur time.Duration
	for i, p := range points {
		if i > 0 && p.T.Sub(points[i-1].T) <= step*3/2 {
			cur += p.T.Sub(points[i-1].T)
		} else {
			cur = step
		}
		best = max(best, cur)
	}
	return best
}

// pipeIsInstances reports whether a dashboard query counts or sums the
// exporter instances themselves (e.g. "Exporters reading the swarm"): its
// value depends on how many there are, its labels do not.
var pipeIsInstances = regexp.MustCompile(`(sum|count)\s+without\s*\(\s*instance\s*\)\s*\(\s*docker_swarm_up\b`)

// pipeLegendLabels returns the labels a query's legend names.
func pipeLegendLabels(legend string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`).FindAllStringSubmatch(legend, -1) {
		out = append(out, m[1])
	}
	return out
}

// pipeTemplateJunk finds what a template that failed to render leaves.
var pipeTemplateJunk = regexp.MustCompile(`<no value>|error executing|error calling|%!|\{\{|\}\}|NaN`)

// pipeWaitHTTPDown waits until nothing answers at addr.
func pipeWaitHTTPDown(t *testing.T, addr string) {
	t.Helper()
	c := http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Get("http://" + addr + "/-/healthy")
		if err != nil {
			return
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still answers after its exporter was killed", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pipeParallel runs f for each node at once and returns the first error.
func pipeParallel(nodes []*swarmtest.Node, f func(*swarmtest.Node) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(n)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// pipeTimeline renders a range query's series as runs of equal values,
// at times relative to from, one line per series: for logs.
func pipeTimeline(prom *monitoring.Prometheus, expr string, from, to time.Time) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	series, err := prom.QueryRange(ctx, expr, from, to, time.Second)
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, s := range series {
		var runs []string
		for i := 0; i < len(s.Points); {
			j := i
			for j+1 < len(s.Points) && s.Points[j+1].V == s.Points[i].V && s.Points[j+1].T.Sub(s.Points[j].T) <= 1500*time.Millisecond {
				j++
			}
			runs = append(runs, fmt.Sprintf("%g@%.0f..%.0fs", s.Points[i].V, s.Points[i].T.Sub(from).Seconds(), s.Points[j].T.Sub(from).Seconds()))
			i = j + 1
		}
		lines = append(lines, fmt.Sprintf("  %s: %s", monitoring.LabelsKey(s.Metric), strings.Join(runs, " ")))
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return "  (no data)"
	}
	return strings.Join(lines, "\n")
}
