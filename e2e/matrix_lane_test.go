package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// The alert matrix's lanes: a swarm each, its exporters and targets, its
// steps and rows, and what each row was notified (see TestAlertMatrix).

// runLane boots the lane's swarm and exporters, registers them with
// Prometheus and runs the steps.
func (m *matrix) runLane(t *testing.T, spec mxLaneSpec) {
	eng, err := swarmtest.LookupEngine(spec.Engine)
	if err != nil {
		t.Fatalf("%v (the matrix runs a lane on each engine)", err)
	}
	l := &mxLane{m: m, t: t, spec: spec}
	done := sync.OnceFunc(m.laneDone)
	t.Cleanup(done) // a lane that fails does not hold the others
	m.mu.Lock()
	m.lanes[spec.Cluster] = l
	m.laneOrder = append(m.laneOrder, spec.Cluster)
	m.mu.Unlock()
	l.s = swarmtest.StartForTest(t, swarmtest.Options{Engine: eng, Prefix: spec.Prefix, Subnet: spec.Subnet})
	l.pin, l.pinned = spec.Pin(l.s)
	t.Logf("%s: swarm of Docker %s up", spec.Cluster, eng.Version)
	if spec.Setup != nil {
		spec.Setup(l)
	}
	var targets []string
	for _, n := range l.s.Managers() {
		in := &mxInstance{Node: n, Addr: freeAddr(t)}
		l.inst = append(l.inst, in)
		targets = append(targets, in.Addr)
		l.startInstance(in)
	}
	l.register(targets)
	l.began = time.Now()
	for i, st := range spec.Steps {
		m.runStep(t, l, i+1, st)
	}
	// A lane that is done keeps its swarm, healthy and watched, until
	// every lane is: a swarm that vanished would page as unmonitored
	// while the other lane runs. Whatever it is notified meanwhile is
	// outside its steps, and fails the test.
	done()
	m.waitLanes()
	l.mu.Lock()
	l.ended = time.Now()
	l.mu.Unlock()
}

// mxLaneSpec is a lane: a swarm, its cluster label and its steps.
type mxLaneSpec struct {
	Name           string // the subtest's name
	Engine         string // swarmtest engine name
	Prefix, Subnet string
	Cluster        string
	// Pin places every service the lane creates (a constraint, and the
	// nodes it selects) on nodes that no row faults: see mxLanes.
	Pin   func(s *swarmtest.Swarm) (constraint string, nodes int)
	Setup func(l *mxLane) // services every step may rely on
	Steps []mxStep
}

// mxStep is one row, or rows about different services run at once.
type mxStep struct {
	Name string
	Rows []*mxRow
}

// mxRow is one scenario of the matrix.
type mxRow struct {
	Name string
	// Services are the services the row is about: it runs beside other
	// rows of its step, and notifications about them are its own.
	Services []string
	// CouldFire names the alerts that a wrong rule could raise for the
	// row's state: the row holds it longer than their for: in the copy
	// (names the shipped rules do not have are ignored).
	CouldFire []string
	Run       func(x *mxRun)
}

// mxLane is a running lane.
type mxLane struct {
	m      *matrix
	t      *testing.T
	spec   mxLaneSpec
	s      *swarmtest.Swarm
	pin    string // placement constraint of the lane's services
	pinned int    // how many nodes it selects
	inst   []*mxInstance
	began  time.Time

	mu      sync.Mutex
	results []*mxResult
	steps   []*mxStepRun
	ended   time.Time
}

// mxInstance is one exporter, run on the host for one manager, as the
// global service of deploy/exporter.yml runs one on each manager. Its
// address (the target) stays the same across restarts.
type mxInstance struct {
	Node *swarmtest.Node
	Addr string
	E    *Exporter // nil while stopped
}

func (l *mxLane) startInstance(in *mxInstance) {
	in.E = StartExporter(l.t, in.Node.Host(), append([]string{"--web.listen-address=" + in.Addr}, l.m.flags...)...)
}

func (l *mxLane) stopInstance(in *mxInstance) error {
	if in.E == nil {
		return nil
	}
	if err := in.E.cmd.Process.Kill(); err != nil {
		return err
	}
	in.E = nil
	return mxWaitHTTPDown(in.Addr)
}

func (l *mxLane) instance(n *swarmtest.Node) *mxInstance {
	for _, in := range l.inst {
		if in.Node == n {
			return in
		}
	}
	return nil
}

// register writes the lane's targets for Prometheus's file_sd and waits
// until Prometheus scrapes them.
func (l *mxLane) register(targets []string) {
	b, err := json.Marshal([]map[string]any{{"targets": targets, "labels": map[string]string{"cluster": l.spec.Cluster}}})
	faultMust(l.t, err)
	path := filepath.Join(l.m.sdDir, l.spec.Cluster+".json")
	tmp := path + ".tmp"
	faultMust(l.t, os.WriteFile(tmp, b, 0o644))
	faultMust(l.t, os.Rename(tmp, path))
	l.m.prom.WaitFor(l.t, fmt.Sprintf(`up{job=%q, cluster=%q} == 1`, mxJob, l.spec.Cluster), len(targets), time.Minute)
}

// createService creates a service on the lane's pinned nodes: args are
// docker service create's, the image and its command last.
func (l *mxLane) createService(args ...string) error {
	_, err := l.s.CreateService(append([]string{"--constraint", l.pin}, args...)...)
	return err
}

// hostObj maps a hostname label to the node's harness name.
func (l *mxLane) hostObj(hostname string) string {
	for _, n := range l.s.Nodes() {
		if n.Hostname == hostname {
			return n.Name
		}
	}
	return hostname
}

func (l *mxLane) instObj(addr string) string {
	for _, in := range l.inst {
		if in.Addr == addr {
			return in.Node.Name
		}
	}
	return addr
}

// objOf says what an alert is about, from its labels.
func (l *mxLane) objOf(labels map[string]string) mxObj {
	switch {
	case labels["instance"] != "":
		return instObj(l.instObj(labels["instance"]))
	case labels["service_name"] != "":
		return serviceObj(labels["service_name"])
	case labels["hostname"] != "":
		return nodeObj(l.hostObj(labels["hostname"]))
	}
	return swarmObj()
}

// runStep runs one step of a lane as a subtest: one row, or its rows at
// once as parallel subtests; then waits until the cluster is quiet and
// evaluates what was notified during the step.
func (m *matrix) runStep(t *testing.T, l *mxLane, i int, st mxStep) {
	name := fmt.Sprintf("%d_%s", i, st.Name)
	var results []*mxResult
	for _, r := range st.Rows {
		res := &mxResult{Lane: l.spec.Name, Cluster: l.spec.Cluster, Step: st.Name, Row: r.Name}
		if len(st.Rows) > 1 {
			res.Row = st.Name + ": " + r.Name
		}
		results = append(results, res)
	}
	sr := &mxStepRun{st: st, results: results}
	l.mu.Lock()
	l.results = append(l.results, results...)
	l.steps = append(l.steps, sr)
	l.mu.Unlock()
	t.Run(name, func(t *testing.T) {
		from := l.lastEnd()
		for _, res := range results {
			res.From = from
		}
		// Evaluated when the step and its parallel rows are over, failed
		// or not.
		t.Cleanup(func() { m.endStep(t, l, sr) })
		if len(st.Rows) == 1 {
			m.runRow(t, l, st.Rows[0], results[0])
			return
		}
		mxAtOnce(st.Rows, func(r *mxRow) {
			t.Run(r.Name, func(t *testing.T) { m.runRow(t, l, r, mxResultOf(st, results, r)) })
		})
	})
}

func mxResultOf(st mxStep, results []*mxResult, r *mxRow) *mxResult {
	for i, row := range st.Rows {
		if row == r {
			return results[i]
		}
	}
	panic("no result for row " + r.Name)
}

func (l *mxLane) lastEnd() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	end := l.began
	for _, r := range l.results {
		if r.To.After(end) {
			end = r.To
		}
	}
	return end
}

// runRow runs one row: it waits until its part of the swarm is quiet,
// then the row's own function; a heal the row registered but did not run
// (it failed) runs when it ends.
func (m *matrix) runRow(t *testing.T, l *mxLane, r *mxRow, res *mxResult) {
	res.mu.Lock()
	res.Ran = true
	res.mu.Unlock()
	x := &mxRun{t: t, m: m, l: l, row: r, res: res}
	t.Cleanup(x.cleanup)
	x.waitQuiet(2 * time.Minute)
	t0 := time.Now()
	r.Run(x)
	x.mu.Lock()
	x.done = true
	x.mu.Unlock()
	t.Logf("%s: %s done after %v", l.spec.Cluster, res.Row, time.Since(t0).Round(time.Second))
}

// mxStepRun is a step that ran, or runs, with its rows' results.
type mxStepRun struct {
	st      mxStep
	results []*mxResult
}

// endStep waits until the lane's cluster is quiet, then evaluates what
// was notified during the step.
func (m *matrix) endStep(t *testing.T, l *mxLane, sr *mxStepRun) {
	x := &mxRun{t: t, m: m, l: l, row: &mxRow{}, res: sr.results[0]}
	x.waitQuiet(mxResolveBound + time.Minute)
	// The last notifications of the step are sent within a group
	// interval of the alerts' end.
	time.Sleep(mxGroupInterval + time.Second)
	to := time.Now()
	for _, res := range sr.results {
		res.mu.Lock()
		res.To = to
		res.mu.Unlock()
	}
	m.judge(l, sr, to)
	for _, res := range sr.results {
		for _, p := range res.problems() {
			t.Errorf("%s / %s: %s", l.spec.Cluster, res.Row, p)
		}
	}
	t.Logf("%s, %s:\n%s", l.spec.Cluster, sr.st.Name, mxTable(mxTableRows(sr.results)))
	if t.Failed() {
		from := sr.results[0].From
		for _, q := range []struct{ what, expr string }{
			{"the alerts of the cluster", `ALERTS{cluster=%q}`},
			{"what the view reads", `{__name__=~"job:docker_swarm_.*_read:bool", cluster=%q}`},
			{"the cluster's conditions", `job:docker_swarm_cluster_condition:max{cluster=%q} == 1`},
			{"the nodes' states", `node:docker_swarm_node_state:max{cluster=%q} == 1`},
		} {
			t.Logf("%s, %s: %s during the step (t=0 at its start):\n%s", l.spec.Cluster, sr.st.Name, q.what,
				pipeTimeline(m.prom, fmt.Sprintf(q.expr, l.spec.Cluster), from, to))
		}
	}
}

// judge gives each row of a step the notifications that belong to it and
// arrived before until, and evaluates them.
func (m *matrix) judge(l *mxLane, sr *mxStepRun, until time.Time) {
	from, to := sr.results[0].From, sr.results[0].To
	own := map[*mxResult][]mxDelivery{}
	for _, d := range m.deliveries(l, from, to, until) {
		owner := sr.results[0]
		if len(sr.results) > 1 {
			owner = mxOwner(sr.st, sr.results, d)
		}
		own[owner] = append(own[owner], d)
	}
	for _, res := range sr.results {
		res.evaluate(m, own[res])
		var missing []string
		for _, mu := range res.Mutes {
			if !m.mutes.saw(l, mu, from, to) {
				missing = append(missing, fmt.Sprintf("Alertmanager never held %s inhibited", mu))
			}
		}
		res.mu.Lock()
		res.MuteMissing = missing
		res.Muted = m.mutes.during(l, from, to)
		res.mu.Unlock()
	}
}

// mxOwner picks the row of a step that a delivery belongs to: the row
// about its service, else the row that expects it, else the first.
func mxOwner(st mxStep, results []*mxResult, d mxDelivery) *mxResult {
	for i, r := range st.Rows {
		for _, s := range r.Services {
			if d.Obj == serviceObj(s) {
				return results[i]
			}
		}
	}
	for _, res := range results {
		for _, e := range res.Expect {
			if e.key() == mxKey(d.Alert, d.Severity, d.Obj) {
				return res
			}
		}
	}
	return results[0]
}

// deliveries returns what the webhook received for the lane's cluster
// during the step from..to, until a time.
//
// A notification belongs to the step during which its alert started (its
// startsAt), wherever it arrives: the late resolution of an alert of an
// earlier row is that row's, not the current one's. One about an alert
// that started before the lane's first step belongs where it arrives.
func (m *matrix) deliveries(l *mxLane, from, to, until time.Time) []mxDelivery {
	var out []mxDelivery
	for _, d := range m.allDeliveries() {
		if d.Cluster != l.spec.Cluster || !d.At.Before(until) {
			continue
		}
		when := d.StartsAt
		if when.Before(l.began) {
			when = d.At
		}
		if !when.Before(from) && (to.IsZero() || when.Before(to)) {
			d.Obj = l.objOf(d.Labels)
			out = append(out, d)
		}
	}
	return out
}

func (m *matrix) allDeliveries() []mxDelivery {
	var out []mxDelivery
	for i, n := range m.hook.Notifications() {
		for _, a := range n.Alerts {
			out = append(out, mxDelivery{N: i, At: n.Received, Status: a.Status, Alert: a.Labels["alertname"],
				Severity: a.Labels["severity"], Cluster: a.Labels["cluster"], StartsAt: a.StartsAt, Labels: a.Labels,
				Obj: swarmObj(), Text: a.Annotations["summary"] + "\n" + a.Annotations["description"]})
		}
	}
	return out
}

// mxResult is what one row expected and got.
type mxResult struct {
	Lane, Cluster, Step, Row string

	mu          sync.Mutex
	Ran         bool
	Aborted     bool
	From, To    time.Time
	Expect      []mxExpect
	Mutes       []mxMute
	Faults      []mxMark
	Heals       []mxMark
	Cells       []mxCell
	Muted       []string // seen inhibited during the row
	MuteMissing []string // Mutes never seen
	Notes       []string
}

// status is "not run", "aborted", "ok" or "FAIL".
func (r *mxResult) status() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case !r.Ran:
		return "not run"
	case r.Aborted:
		return "aborted"
	case !allOK(r.Cells) || len(r.MuteMissing) > 0:
		return "FAIL"
	}
	return "ok"
}

// problems lists what is wrong with the row's notifications.
func (r *mxResult) problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.Cells {
		if !c.ok() {
			out = append(out, fmt.Sprintf("%s (%s, %s): %s", c.Alert, c.Severity, c.Obj, strings.Join(c.Problems, "; ")))
		}
	}
	return append(out, r.MuteMissing...)
}

func (r *mxResult) evaluate(m *matrix, ds []mxDelivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Cells = mxEvaluate(r.Expect, ds, r.Faults, r.Heals, mxBounds{
		Fire: func(alert string) time.Duration {
			if d, ok := m.forOf[alert]; ok {
				return d + mxDetect
			}
			return 0
		},
		Resolve: mxResolveBound,
	})
}

func mxTableRows(results []*mxResult) []mxTableRow {
	var out []mxTableRow
	for _, r := range results {
		r.mu.Lock()
		notes := append([]string(nil), r.Notes...)
		for _, m := range r.MuteMissing {
			notes = append(notes, "✗ "+m)
		}
		row := mxTableRow{Lane: r.Lane, Row: r.Row, Cells: r.Cells, Muted: r.Muted, Notes: notes}
		r.mu.Unlock()
		row.Status = r.status()
		out = append(out, row)
	}
	return out
}
