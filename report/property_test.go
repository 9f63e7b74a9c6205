package report_test

// Properties of the statuses end to end: random snapshots (nodes, services,
// tasks as the reader returns them) go through report.Build, and what comes
// out is checked against a straightforward recount and against the
// properties of the decision tables:
//
//   - every report has exactly one cluster, services and overall status, and
//     each replicated or global service exactly one status;
//   - a service's status depends only on its running and desired counts, its
//     mode and the operator's flags — not on its name, stack, image, update
//     state, Docker's own counts, its ID or its place in the list;
//   - marking a node down never improves the cluster status (nor, under the
//     default policy, the overall status);
//   - adding a ready worker never makes the cluster status worse, so in
//     particular not that of a WARNING cluster.

import (
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"testing"
	"testing/quick"
	"time"

	"github.com/swarm-exporter/swarm_exporter/health"
	"github.com/swarm-exporter/swarm_exporter/placement"
	"github.com/swarm-exporter/swarm_exporter/report"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

var (
	constraintPool = [][]string{nil, nil, {"node.role==manager"}, {"node.role==worker"}, {"node.labels.zone==b"},
		{"node.labels.zone!=b", "node.platform.os==linux"}, {"node.role>manager"}, {"node.hostname!=n1"}}
	allTaskStates = func() []swarm.TaskState {
		out := make([]swarm.TaskState, swarm.NumTaskStates)
		for i := range out {
			out[i] = swarm.TaskState(i)
		}
		return out
	}()
	modes   = []swarm.Mode{swarm.Replicated, swarm.Global, swarm.ReplicatedJob, swarm.GlobalJob}
	updates = []swarm.UpdateState{swarm.UpdateNone, swarm.Updating, swarm.UpdatePaused, swarm.UpdateCompleted,
		swarm.RollbackStarted, swarm.RollbackPaused, swarm.RollbackCompleted, swarm.UpdateUnknown}
)

// genSnapshot is a random snapshot of a small swarm, mostly healthy so that
// every status shows up.
type genSnapshot struct{ *swarm.Snapshot }

func pick[T any](r *rand.Rand, s []T) T { return s[r.Intn(len(s))] }

func (genSnapshot) Generate(r *rand.Rand, _ int) reflect.Value {
	snap := &swarm.Snapshot{ReadAt: time.Unix(1e9, 0)}
	bad := r.Float64() * 0.5
	nNodes := r.Intn(9)
	for i := range nNodes {
		n := swarm.Node{
			ID: fmt.Sprintf("n%d", i), Hostname: fmt.Sprintf("host%d", i), Manager: i < 3 && r.Intn(4) != 0,
			OS: "linux", Architecture: pick(r, []string{"x86_64", "aarch64"}),
			Labels: map[string]string{"zone": pick(r, []string{"a", "b", ""})},
		}
		if r.Float64() < bad {
			n.State = pick(r, swarm.NodeStates[:])
			n.Availability = pick(r, swarm.Availabilities[:])
		}
		if n.Manager {
			n.Reachability = swarm.Reachable
			if n.State == swarm.NodeDown || r.Float64() < bad/3 {
				n.Reachability = pick(r, swarm.Reachabilities[:])
			}
		}
		snap.Nodes = append(snap.Nodes, n)
	}
	if len(snap.Nodes) > 0 && snap.Nodes[0].Manager {
		snap.Nodes[0].Leader = true
	}
	nodeID := "n0"
	snap.Info = &swarm.Info{Name: "host0", NodeID: nodeID, LocalNodeState: swarm.LocalActive, ControlAvailable: true,
		Nodes: nNodes, Managers: 3}
	if r.Intn(20) == 0 {
		// A leaderless swarm: only /info's totals.
		snap.NoLeader, snap.Nodes = true, nil
		return reflect.ValueOf(genSnapshot{snap})
	}

	nSvc := r.Intn(7)
	for i := range nSvc {
		s := swarm.Service{
			ID: fmt.Sprintf("s%d", i), Name: fmt.Sprintf("svc%d", i), Stack: pick(r, []string{"", "shop"}),
			Image: "img:1", Mode: pick(r, modes), Replicas: uint64(r.Intn(5)),
			Constraints: pick(r, constraintPool),
			UpdateState: pick(r, updates),
			Reported:    swarm.ReportedStatus{Running: uint64(r.Intn(5)), Desired: uint64(r.Intn(5))},
		}
		if s.Mode == swarm.ReplicatedJob {
			s.MaxConcurrent = 1
		}
		if s.Mode.Job() && r.Intn(4) != 0 {
			// A job re-run once or twice.
			s.HasJobStatus, s.JobIteration = true, uint64(r.Intn(3))
		}
		snap.Services = append(snap.Services, s)
	}
	ts := &snap.Tasks
	for _, s := range snap.Services {
		ts.ServiceIDs = append(ts.ServiceIDs, s.ID)
	}
	ts.ServiceIDs = append(ts.ServiceIDs, "gone") // removed since /services was read
	for _, n := range snap.Nodes {
		ts.NodeIDs = append(ts.NodeIDs, n.ID)
	}
	ts.NodeIDs = append(ts.NodeIDs, "removed") // removed from the swarm
	r.Shuffle(len(ts.NodeIDs), func(i, j int) { ts.NodeIDs[i], ts.NodeIDs[j] = ts.NodeIDs[j], ts.NodeIDs[i] })
	for range r.Intn(25) {
		t := swarm.Task{Service: int32(r.Intn(len(ts.ServiceIDs))), Node: int32(r.Intn(len(ts.NodeIDs)+1) - 1),
			State: swarm.TaskRunning, Desired: swarm.TaskRunning}
		if r.Float64() < bad*2 {
			t.State = pick(r, allTaskStates)
			t.Desired = pick(r, []swarm.TaskState{swarm.TaskRunning, swarm.TaskReady, swarm.TaskComplete, swarm.TaskShutdown})
		}
		if r.Intn(3) != 0 {
			t.HasJobIteration, t.JobIteration = true, uint64(r.Intn(3))
		}
		ts.List = append(ts.List, t)
	}
	return reflect.ValueOf(genSnapshot{snap})
}

// clone deep-copies what the properties modify.
func clone(s *swarm.Snapshot) *swarm.Snapshot {
	c := *s
	c.Nodes = slices.Clone(s.Nodes)
	c.Services = slices.Clone(s.Services)
	c.Tasks.ServiceIDs = slices.Clone(s.Tasks.ServiceIDs)
	c.Tasks.NodeIDs = slices.Clone(s.Tasks.NodeIDs)
	c.Tasks.List = slices.Clone(s.Tasks.List)
	return &c
}

// recount computes a service's desired and running counts the simple way:
// one pass over nodes and tasks per service.
func recount(snap *swarm.Snapshot, s *swarm.Service) (desired, running int) {
	cs, _ := placement.Parse(s.Constraints)
	counts := func(t swarm.Task) bool {
		return snap.Tasks.ServiceIDs[t.Service] == s.ID &&
			(!s.Mode.Job() || !s.HasJobStatus || t.HasJobIteration && t.JobIteration == s.JobIteration)
	}
	// A node holds a task of the service when one of its current tasks
	// (of the job's current run) is there.
	holds := func(n *swarm.Node) bool {
		return slices.ContainsFunc(snap.Tasks.List, func(t swarm.Task) bool {
			return counts(t) && t.Node >= 0 && snap.Tasks.NodeIDs[t.Node] == n.ID
		})
	}
	// A paused node counts only while it holds a task.
	eligible := func(n *swarm.Node) bool {
		return n.State != swarm.NodeDown && n.Availability != swarm.Drain && cs.Match(n.PlacementNode()) &&
			(n.Availability != swarm.Pause || holds(n))
	}
	if s.Mode.Global() {
		for i := range snap.Nodes {
			if eligible(&snap.Nodes[i]) {
				desired++
			}
		}
	} else {
		desired = int(s.Replicas)
	}
	for _, t := range snap.Tasks.List {
		if !counts(t) || t.State != swarm.TaskRunning || t.Node < 0 {
			continue
		}
		if t.Desired != swarm.TaskRunning && !(s.Mode.Job() && t.Desired == swarm.TaskComplete) {
			continue
		}
		i := slices.IndexFunc(snap.Nodes, func(n swarm.Node) bool { return n.ID == snap.Tasks.NodeIDs[t.Node] })
		if i < 0 || snap.Nodes[i].State == swarm.NodeDown || (s.Mode.Global() && !eligible(&snap.Nodes[i])) {
			continue
		}
		running++
	}
	return desired, running
}

var policies = []report.Options{
	report.DefaultOptions(),
	{Thresholds: health.Thresholds{MinManagers: 1, MinWorkers: 0}, Policy: health.ServicePolicy{AllowZeroReplicas: true}},
	{Thresholds: health.Thresholds{MinManagers: 3, MinWorkers: 1}},
}

func oneStatus(s health.Status) bool { return slices.Contains(health.Statuses[:], s) }

// statusKey is what a service's status may depend on.
type statusKey struct {
	running, desired int
	mode             swarm.Mode
	policy           health.ServicePolicy
}

// checkReport checks one report against the recount and the tables, and
// records each service's status under its key in seen.
func checkReport(t *testing.T, snap *swarm.Snapshot, opts report.Options, rep *report.Report, seen map[statusKey]health.Status) {
	t.Helper()
	if !rep.Up || !oneStatus(rep.Cluster.Status) || !oneStatus(rep.Overall) {
		t.Fatalf("report: up %v, cluster %d, overall %d", rep.Up, rep.Cluster.Status, rep.Overall)
	}
	if rep.NoLeader {
		if rep.Cluster.Status != health.KO || rep.Overall != health.KO || len(rep.Services) != 0 {
			t.Fatalf("leaderless report: %v %v %d services", rep.Cluster.Status, rep.Overall, len(rep.Services))
		}
		return
	}
	// The cluster status is the table's verdict on the node list.
	var v health.ClusterView
	for _, n := range snap.Nodes {
		alive := n.State != swarm.NodeDown
		if n.Manager {
			v.Managers++
			v.ManagersAlive += b2i(alive)
			v.ReachableManagers += b2i(n.Reachability == swarm.Reachable)
		} else {
			v.Workers++
			v.WorkersAlive += b2i(alive)
		}
		v.NotReady += b2i(n.State != swarm.NodeReady)
	}
	if st, cs := health.Cluster(v, opts.Thresholds); st != rep.Cluster.Status || cs != rep.Cluster.Conditions {
		t.Fatalf("cluster %v %v, the table on the nodes says %v %v", rep.Cluster.Status, rep.Cluster.Conditions.Active(), st, cs.Active())
	}
	if !rep.ServicesKnown || !oneStatus(rep.ServicesStatus) || len(rep.Services) != len(snap.Services) {
		t.Fatalf("services known %v status %d, %d of %d services", rep.ServicesKnown, rep.ServicesStatus, len(rep.Services), len(snap.Services))
	}
	worst := health.OK
	for i := range rep.Services {
		rs := &rep.Services[i]
		desired, running := recount(snap, &snap.Services[i])
		if rs.ID != snap.Services[i].ID || rs.Desired != desired || rs.Running != running {
			t.Fatalf("service %s: desired %d running %d, recount %d %d", rs.ID, rs.Desired, rs.Running, desired, running)
		}
		if !rs.HasStatus() {
			continue
		}
		if !oneStatus(rs.Status) {
			t.Fatalf("service %s: status %d", rs.ID, rs.Status)
		}
		key := statusKey{rs.Running, rs.Desired, rs.Mode, opts.Policy}
		if prev, ok := seen[key]; ok && prev != rs.Status {
			t.Fatalf("two services with %+v have statuses %v and %v", key, prev, rs.Status)
		}
		seen[key] = rs.Status
		if want := health.Service(rs.Running, rs.Desired, opts.Policy); rs.Status != want {
			t.Fatalf("service %s: %v, the table says %v for %+v", rs.ID, rs.Status, want, key)
		}
		worst = health.Worst(worst, rs.Status)
	}
	if rep.ServicesStatus != worst || rep.Overall != health.Worst(rep.Cluster.Status, worst) {
		t.Fatalf("services %v (worst is %v), overall %v", rep.ServicesStatus, worst, rep.Overall)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestReportProperties(t *testing.T) {
	seen := map[statusKey]health.Status{}
	statuses := map[health.Status]int{}
	err := quick.Check(func(g genSnapshot) bool {
		snap := g.Snapshot
		for _, opts := range policies {
			rep := report.Build(clone(snap), opts)
			checkReport(t, snap, opts, rep, seen)
			statuses[rep.Cluster.Status]++
			if rep.NoLeader {
				continue
			}
			checkIrrelevantChanges(t, snap, opts, rep)
			checkNodeDown(t, snap, opts, rep)
			checkReadyWorker(t, snap, opts, rep)
		}
		return true
	}, &quick.Config{MaxCount: 3000, Rand: rand.New(rand.NewSource(42))})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range health.Statuses {
		if statuses[s] == 0 {
			t.Errorf("no generated cluster was %v", s)
		}
	}
	if len(seen) < 50 {
		t.Errorf("only %d distinct (running, desired, mode, policy) seen", len(seen))
	}
}

// checkIrrelevantChanges: renaming, relabelling, re-imaging, changing the
// update state and Docker's counts, renumbering the IDs and reversing the
// service list change no service's counts or status.
func checkIrrelevantChanges(t *testing.T, snap *swarm.Snapshot, opts report.Options, rep *report.Report) {
	t.Helper()
	c := clone(snap)
	slices.Reverse(c.Services)
	for i := range c.Services {
		s := &c.Services[i]
		s.Name, s.Stack, s.Image = "renamed-"+s.Name, "other\"stack", "other:2"
		s.UpdateState, s.UpdateStartedAt = (s.UpdateState+1)%swarm.UpdateUnknown, time.Unix(5, 0)
		s.Reported = swarm.ReportedStatus{Running: s.Reported.Desired + 7, Desired: 1, Completed: 9}
		s.ID = "new-" + s.ID
	}
	for i, id := range c.Tasks.ServiceIDs {
		c.Tasks.ServiceIDs[i] = "new-" + id
	}
	// Tasks that are not running, of every service, change nothing either.
	for i := range c.Tasks.ServiceIDs {
		c.Tasks.List = append(c.Tasks.List, swarm.Task{Service: int32(i), Node: -1, State: swarm.TaskPending, Desired: swarm.TaskRunning})
	}
	after := report.Build(c, opts)
	for i := range rep.Services {
		a, b := &rep.Services[i], &after.Services[len(after.Services)-1-i]
		if a.Running != b.Running || a.Desired != b.Desired || a.Status != b.Status {
			t.Fatalf("service %s: %d/%d %v, after irrelevant changes %d/%d %v", a.ID, a.Running, a.Desired, a.Status, b.Running, b.Desired, b.Status)
		}
	}
	if after.ServicesStatus != rep.ServicesStatus || after.Overall != rep.Overall {
		t.Fatalf("irrelevant changes moved the services status %v→%v, overall %v→%v", rep.ServicesStatus, after.ServicesStatus, rep.Overall, after.Overall)
	}
}

// checkNodeDown marks each node that is not down as down, as Docker reports
// a lost node (a lost manager also becomes unreachable and stops leading).
func checkNodeDown(t *testing.T, snap *swarm.Snapshot, opts report.Options, rep *report.Report) {
	t.Helper()
	for i, n := range snap.Nodes {
		if n.State == swarm.NodeDown {
			continue
		}
		c := clone(snap)
		c.Nodes[i].State = swarm.NodeDown
		if n.Manager {
			c.Nodes[i].Reachability, c.Nodes[i].Leader = swarm.Unreachable, false
		}
		after := report.Build(c, opts)
		if after.Cluster.Status < rep.Cluster.Status {
			t.Fatalf("marking %s (%v) down improved the cluster from %v to %v", n.ID, n.State, rep.Cluster.Status, after.Cluster.Status)
		}
		// Under the default policy the overall status cannot improve
		// either. (With AllowZeroReplicas it can: a global service whose
		// only eligible node goes down has 0 of 0 tasks, which is OK.)
		if !opts.Policy.AllowZeroReplicas && after.Overall < rep.Overall {
			t.Fatalf("marking %s (%v) down improved the overall status from %v to %v", n.ID, n.State, rep.Overall, after.Overall)
		}
	}
}

// checkReadyWorker adds a ready, active worker that runs nothing yet.
func checkReadyWorker(t *testing.T, snap *swarm.Snapshot, opts report.Options, rep *report.Report) {
	t.Helper()
	c := clone(snap)
	c.Nodes = append(c.Nodes, swarm.Node{ID: "new-worker", Hostname: "new", OS: "linux", Architecture: "x86_64"})
	after := report.Build(c, opts)
	if after.Cluster.Status > rep.Cluster.Status {
		t.Fatalf("adding a ready worker made the cluster %v from %v", after.Cluster.Status, rep.Cluster.Status)
	}
	if rep.Cluster.Status == health.Warning && after.Cluster.Status == health.KO {
		t.Fatal("adding a ready worker made a WARNING cluster KO")
	}
}
