package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
	"golang.org/x/sync/errgroup"
)

// What a row of the alert matrix does with its swarm: faults, holding
// them, healing, and waiting for a quiet cluster (see TestAlertMatrix).

const (
	// mxMaxHold bounds a row's fault: whatever was expected and has not
	// come by then will not.
	mxMaxHold = 10 * time.Minute
	// mxHoldMargin is added to a for: when waiting for an alert that could
	// fire: two evaluations, group_wait, and a scrape that came late.
	mxHoldMargin = 20 * time.Second
	// mxQuiet is how long a cluster must show no alert, pending or firing,
	// before a row starts or ends.
	mxQuiet = 8 * time.Second
)

// mxRun is one row while it runs.
type mxRun struct {
	t   *testing.T
	m   *matrix
	l   *mxLane
	row *mxRow
	res *mxResult

	mu    sync.Mutex
	heals map[string]func() error // registered by Fault, run by Heal
	order []string
	done  bool
}

// Expect adds notifications the row must produce.
func (x *mxRun) Expect(e ...mxExpect) {
	x.res.mu.Lock()
	x.res.Expect = append(x.res.Expect, e...)
	x.res.mu.Unlock()
}

// Says adds words the firing notification of an expected alert must say.
func (x *mxRun) Says(alert string, words ...string) {
	x.res.mu.Lock()
	defer x.res.mu.Unlock()
	for i := range x.res.Expect {
		if x.res.Expect[i].Alert == alert {
			x.res.Expect[i].Says = append(x.res.Expect[i].Says, words...)
			return
		}
	}
	x.t.Errorf("%s / %s: no expected %s to say %q", x.l.spec.Cluster, x.res.Row, alert, words)
}

// Mute adds alerts Alertmanager must hold inhibited during the row.
func (x *mxRun) Mute(m ...mxMute) {
	x.res.mu.Lock()
	x.res.Mutes = append(x.res.Mutes, m...)
	x.res.mu.Unlock()
}

// Note adds a line under the row in the table.
func (x *mxRun) Note(format string, args ...any) {
	x.res.mu.Lock()
	x.res.Notes = append(x.res.Notes, fmt.Sprintf(format, args...))
	x.res.mu.Unlock()
}

// Fault injects a fault, marks when, and registers heal, which Heal (or
// the row's end, if the row fails first) runs.
func (x *mxRun) Fault(name string, fault, heal func() error) {
	x.t.Helper()
	if heal != nil {
		x.mu.Lock()
		if x.heals == nil {
			x.heals = map[string]func() error{}
		}
		x.heals[name] = heal
		x.order = append(x.order, name)
		x.mu.Unlock()
	}
	if err := fault(); err != nil {
		x.t.Fatalf("fault %s: %v", name, err)
	}
	x.mark(&x.res.Faults, name)
	x.t.Logf("%s: fault %q", x.l.spec.Cluster, name)
}

// Heal runs the heal registered with the fault called name, waits until
// healed says the swarm is whole again, and marks when: the resolutions
// are timed from then.
func (x *mxRun) Heal(name string, healed func() error) {
	x.t.Helper()
	x.mu.Lock()
	heal := x.heals[name]
	delete(x.heals, name)
	x.mu.Unlock()
	began := time.Now()
	if heal != nil {
		if err := heal(); err != nil {
			x.t.Fatalf("heal %s: %v", name, err)
		}
	}
	if healed != nil {
		if err := healed(); err != nil {
			x.t.Fatalf("heal %s: the swarm does not heal: %v", name, err)
		}
	}
	x.res.mu.Lock()
	x.res.Heals = append(x.res.Heals, mxMark{Name: name, At: time.Now(), Began: began})
	x.res.mu.Unlock()
	x.t.Logf("%s: healed %q (%v after the heal began)", x.l.spec.Cluster, name, time.Since(began).Round(time.Second))
}

func (x *mxRun) mark(list *[]mxMark, name string) {
	x.res.mu.Lock()
	*list = append(*list, mxMark{Name: name, At: time.Now()})
	x.res.mu.Unlock()
}

// cleanup runs the heals a failed row left, newest first.
func (x *mxRun) cleanup() {
	x.mu.Lock()
	done := x.done
	var pending []string
	for i := len(x.order) - 1; i >= 0; i-- {
		if x.heals[x.order[i]] != nil {
			pending = append(pending, x.order[i])
		}
	}
	x.mu.Unlock()
	if !done {
		x.res.mu.Lock()
		x.res.Aborted = true
		x.res.mu.Unlock()
	}
	for _, name := range pending {
		if err := x.heals[name](); err != nil {
			x.t.Errorf("%s: healing %q after the row failed: %v", x.l.spec.Cluster, name, err)
		}
	}
}

// inScope reports whether an alert is the row's business: any alert of the
// lane's cluster, or only those about its services for a row that has some.
func (x *mxRun) inScope(labels map[string]string) bool {
	if labels["cluster"] != x.l.spec.Cluster {
		return false
	}
	if len(x.row.Services) == 0 {
		return true
	}
	for _, s := range x.row.Services {
		if labels["service_name"] == s {
			return true
		}
	}
	return false
}

// alerts returns the row's alerts in Prometheus in a state ("" for both).
func (x *mxRun) alerts(state string) ([]monitoring.Alert, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	all, err := x.m.prom.Alerts(ctx)
	if err != nil {
		return nil, err
	}
	var out []monitoring.Alert
	for _, a := range all {
		if x.inScope(a.Labels) && (state == "" || a.State == state) {
			out = append(out, a)
		}
	}
	return out, nil
}

func mxAlertKeys(as []monitoring.Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.State+" "+monitoring.LabelsKey(a.Labels))
	}
	sort.Strings(out)
	return out
}

// waitQuiet waits until no alert of the row's scope is pending or firing
// in Prometheus, nor held by Alertmanager, for mxQuiet. Firing alerts have
// timeout to end; a pending one as long as its for: (it fires or clears
// by then, unless it keeps going pending and back).
func (x *mxRun) waitQuiet(timeout time.Duration) {
	start := time.Now()
	deadline := start.Add(timeout)
	firstPending := map[string]time.Time{}
	var quietSince time.Time
	for {
		as, err := x.alerts("")
		var held []string
		for _, a := range x.m.mutes.current(x.l.spec.Cluster) {
			if x.inScope(a.Labels) {
				held = append(held, monitoring.LabelsKey(a.Labels))
			}
		}
		now := time.Now()
		for _, a := range as {
			k := monitoring.LabelsKey(a.Labels)
			if _, ok := firstPending[k]; !ok && a.State == "pending" {
				firstPending[k] = now
				if d := now.Add(x.m.forOf[a.Labels["alertname"]] + mxHoldMargin); d.After(deadline) {
					deadline = d
				}
			}
		}
		if err == nil && len(as) == 0 && len(held) == 0 {
			if quietSince.IsZero() {
				quietSince = now
			}
			if now.Sub(quietSince) >= mxQuiet {
				return
			}
		} else {
			quietSince = time.Time{}
		}
		if now.After(deadline) {
			x.t.Errorf("%s / %s: after %v the cluster is not quiet: Prometheus %v, Alertmanager %v (err %v)",
				x.l.spec.Cluster, x.res.Row, now.Sub(start).Round(time.Second), mxAlertKeys(as), held, err)
			return
		}
		time.Sleep(time.Second)
	}
}

// Hold keeps the fault until (1) every expected alert whose fault has
// happened was notified firing, or its bound passed; (2) every alert of
// the row's scope that went pending has fired or cleared, or outlived its
// for: (it keeps going pending and back); (3) the for: of every alert the
// row names in CouldFire has passed since the last fault. Then it runs the
// dashboards' queries: the peak of the row.
func (x *mxRun) Hold() {
	x.t.Helper()
	x.res.mu.Lock()
	faults := append([]mxMark(nil), x.res.Faults...)
	expect := append([]mxExpect(nil), x.res.Expect...)
	x.res.mu.Unlock()
	if len(faults) == 0 {
		x.t.Fatal("Hold before any fault")
	}
	since := faults[len(faults)-1].At
	var minHold time.Duration
	for _, a := range x.row.CouldFire {
		if d, ok := x.m.forOf[a]; ok && d+mxHoldMargin > minHold {
			minHold = d + mxHoldMargin
		}
	}
	firstPending := map[string]time.Time{}
	late := map[string]bool{}
	for {
		now := time.Now()
		ds := x.m.deliveries(x.l, x.res.From, time.Time{}, now)
		var missing []string
		for _, e := range expect {
			mark, ok := markAt(faults, e.Fault, true)
			at := mark.At
			if !ok || e.Firing == 0 || late[e.key()] {
				continue
			}
			got := false
			for _, d := range ds {
				got = got || (d.Status == "firing" && !d.At.Before(at) && mxKey(d.Alert, d.Severity, d.Obj) == e.key())
			}
			if got {
				continue
			}
			bound := e.FireWithin
			if bound == 0 {
				bound = x.m.forOf[e.Alert] + mxDetect
			}
			if now.Sub(at) > bound {
				late[e.key()] = true
				continue
			}
			missing = append(missing, e.String())
		}
		pending, err := x.alerts("pending")
		var unsettled []string
		for _, a := range pending {
			k := monitoring.LabelsKey(a.Labels)
			if _, ok := firstPending[k]; !ok {
				firstPending[k] = now
			}
			if now.Sub(firstPending[k]) < x.m.forOf[a.Labels["alertname"]]+mxHoldMargin {
				unsettled = append(unsettled, k)
			}
		}
		if err == nil && len(missing) == 0 && len(unsettled) == 0 && now.Sub(since) >= minHold {
			break
		}
		if now.Sub(since) > mxMaxHold {
			x.t.Errorf("%s / %s: held %v: still waiting for %v, pending %v (err %v)", x.l.spec.Cluster, x.res.Row,
				mxMaxHold, missing, unsettled, err)
			break
		}
		time.Sleep(2 * time.Second)
	}
	for k := range late {
		x.t.Logf("%s / %s: %s not notified within its bound", x.l.spec.Cluster, x.res.Row, k)
	}
	x.t.Logf("%s / %s: held %v after the last fault", x.l.spec.Cluster, x.res.Row, time.Since(since).Round(time.Second))
	x.panels()
}

// panels runs every dashboard query: each must run; a query that is not
// about the instances must return no series per instance and one series
// per object (cluster, node, service and the labels its legend names).
func (x *mxRun) panels() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var empty int
	for _, q := range x.m.queries {
		res, err := x.m.prom.Query(ctx, q.Expr)
		if err != nil {
			x.t.Errorf("%s / %s: %s fails: %v\n%s", x.l.spec.Cluster, x.res.Row, q, err, q.Expr)
			continue
		}
		if len(res) == 0 {
			empty++
			continue
		}
		x.m.mu.Lock()
		x.m.panelData[q.String()] = append(x.m.panelData[q.String()], x.l.spec.Cluster+" / "+x.res.Row)
		x.m.mu.Unlock()
		if q.PerInstance() {
			continue
		}
		ids := append([]string{"cluster", "hostname", "service_name"}, pipeLegendLabels(q.Legend)...)
		seen := map[string]int{}
		for _, s := range res {
			if _, ok := s.Metric["instance"]; ok {
				x.t.Errorf("%s / %s: %s returns a series per instance: %s", x.l.spec.Cluster, x.res.Row, q, monitoring.LabelsKey(s.Metric))
				break
			}
			var id []string
			for _, l := range ids {
				if v, ok := s.Metric[l]; ok {
					id = append(id, l+"="+v)
				}
			}
			seen[strings.Join(id, ",")]++
		}
		for id, n := range seen {
			if n > 1 && id != "" {
				x.t.Errorf("%s / %s: %s returns %d series for %s: %s", x.l.spec.Cluster, x.res.Row, q, n, id, monitoring.FormatSamples(res))
			}
		}
	}
	x.t.Logf("%s / %s: %d of %d panel queries return data", x.l.spec.Cluster, x.res.Row, len(x.m.queries)-empty, len(x.m.queries))
}

// Node returns the lane's node by harness name.
func (x *mxRun) Node(name string) *swarmtest.Node {
	n := x.l.s.Node(name)
	if n == nil {
		x.t.Fatalf("no node %s", name)
	}
	return n
}

// Leader returns the current leader, and the other managers.
func (x *mxRun) Leader() (*swarmtest.Node, []*swarmtest.Node) {
	l, err := x.l.s.Leader()
	if err != nil {
		x.t.Fatal(err)
	}
	var others []*swarmtest.Node
	for _, m := range x.l.s.Managers() {
		if m != l {
			others = append(others, m)
		}
	}
	return l, others
}

// Kill crashes nodes and the exporters they host, as a crash of the
// machine would.
func (x *mxRun) Kill(nodes ...*swarmtest.Node) error {
	for _, n := range nodes {
		if in := x.l.instance(n); in != nil {
			if err := x.l.stopInstance(in); err != nil {
				return err
			}
		}
	}
	var g errgroup.Group
	for _, n := range nodes {
		g.Go(func() error { return x.l.s.Kill(n) })
	}
	return g.Wait()
}

// Restart starts nodes' daemons again and the exporters they host, as
// their global service's tasks come back with them.
func (x *mxRun) Restart(nodes ...*swarmtest.Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var g errgroup.Group
	for _, n := range nodes {
		g.Go(func() error { return x.l.s.Restart(ctx, n) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, n := range nodes {
		if in := x.l.instance(n); in != nil && in.E == nil {
			x.l.startInstance(in)
		}
	}
	return nil
}

// Whole waits until every node is ready, every manager reachable and the
// swarm has a leader, as the harness sees them (not the exporter).
func (x *mxRun) Whole() error {
	s := x.l.s
	return s.WaitFor(3*time.Minute, "every node ready, every manager reachable", func() (bool, error) {
		nodes, err := s.ListNodes()
		if err != nil {
			return false, nil
		}
		leader := false
		for _, n := range nodes {
			if n.State != "ready" || n.Availability != "active" || (n.Role == "manager" && n.Reachability != "reachable") {
				return false, nil
			}
			leader = leader || n.Leader
		}
		return leader && len(nodes) == len(s.Nodes()), nil
	})
}

// Running waits until a service runs n tasks.
func (x *mxRun) Running(service string, n int) func() error {
	return func() error { return x.l.s.WaitRunning(service, n, 3*time.Minute) }
}

// mxWaitHTTPDown waits until nothing answers at addr.
func mxWaitHTTPDown(addr string) error {
	c := http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Get("http://" + addr + "/-/healthy")
		if err != nil {
			return nil
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still answers after its exporter was killed", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// execOutputTrim runs a program and returns its trimmed output (its
// standard error too when it fails).
func execOutputTrim(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return strings.TrimSpace(string(out) + stderr.String()), err
	}
	return strings.TrimSpace(string(out)), nil
}
