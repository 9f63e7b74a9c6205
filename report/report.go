// Package report turns one read of the swarm into the exporter's answer:
// node and replica counts, and the OK / WARNING / KO statuses of the
// cluster, of each service and overall. The metrics, the status API and the
// status command all render the same Report, so they cannot disagree.
package report

import (
	"strconv"
	"strings"
	"time"

	"github.com/swarm-exporter/swarm_exporter/health"
	"github.com/swarm-exporter/swarm_exporter/placement"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

// Options are the operator's health settings.
type Options struct {
	Thresholds health.Thresholds
	Policy     health.ServicePolicy
}

// DefaultOptions returns the original library's settings.
func DefaultOptions() Options {
	return Options{Thresholds: health.DefaultThresholds()}
}

// Report is the evaluated state of the swarm.
type Report struct {
	ReadAt time.Time
	// Up is true when cluster state could be read; a leaderless swarm
	// counts as read (its KO is the answer).
	Up bool
	// Err says why cluster state could not be read.
	Err error
	// Local is the node the exporter reads through; nil when /info failed.
	Local *swarm.Info
	// LocalLeader is true when that node is the swarm's leader.
	LocalLeader bool
	// NoLeader is true when the swarm has no leader. Only the cluster
	// totals and status are known then; Nodes and Services are empty.
	NoLeader bool

	Cluster Cluster
	// Nodes and Services are known when Up and not NoLeader.
	Nodes    []swarm.Node
	Services []Service
	// ServicesStatus is the worst status of the replicated and global
	// services (jobs have none), OK when there are none. Valid when
	// ServicesKnown.
	ServicesStatus health.Status
	ServicesKnown  bool
	// Overall is the worse of the cluster and services statuses. Valid
	// when OverallKnown.
	Overall health.Status
}

// OverallKnown reports whether Overall is: the swarm was read, and either
// its services were or it has no leader (the cluster's KO is then the
// answer).
func (r *Report) OverallKnown() bool { return r.Up && (r.ServicesKnown || r.NoLeader) }

// Cluster is the cluster-level verdict and the counts behind it.
type Cluster struct {
	Status     health.Status
	Conditions health.ConditionSet
	Managers   RoleCount
	Workers    RoleCount
	// StatesKnown is false while the swarm has no leader: only the number
	// of managers is known then (from /info), not the per-state counts.
	StatesKnown bool
	// WorkersKnown is false when the number of workers is not known either.
	WorkersKnown bool
	// ReachableManagers is known when StatesKnown.
	ReachableManagers int
	// Quorum is the number of reachable managers Raft needs.
	Quorum int
}

// RoleCount counts the nodes of one role.
type RoleCount struct {
	Total   int
	ByState [len(swarm.NodeStates)]int
}

// Ready returns the number of ready nodes.
func (c RoleCount) Ready() int { return c.ByState[swarm.NodeReady] }

// Alive returns the number of nodes that count as alive: ready, or
// looking for the leader's dispatcher. Every node passes through unknown
// when a new leader takes over: its dispatcher marks them all so until
// they report in (seconds on a real swarm, docs/health-model.md; a dead
// node turns down later). Disconnected is what swarmkit's dispatcher
// marks a node whose session it drops ("node is currently trying to find
// new manager"); as it does that only once stopped, when it can no longer
// write, real swarms hardly show it, but it means the same. Docker's
// orchestrators keep the tasks of both (only a down node is invalid to
// them), so those tasks count as running, and the node as alive.
func (c RoleCount) Alive() int {
	return c.ByState[swarm.NodeReady] + c.ByState[swarm.NodeUnknown] + c.ByState[swarm.NodeDisconnected]
}

// Service is one service with its counts and status.
type Service struct {
	*swarm.Service
	// Desired is the replica count of a replicated service, the number of
	// eligible nodes of a global one (see eligibility), and the number of
	// completions wanted (replicated job) or eligible nodes (global job)
	// of a job.
	Desired int
	// Running counts tasks whose state and desired state are running, on
	// nodes that are not down (for global services: on eligible nodes);
	// for a job, in its current run only.
	Running int
	// Completed counts the completed tasks of a job's current run.
	Completed int
	// Tasks counts the current tasks by state (a job's: of its current
	// run).
	Tasks [swarm.NumTaskStates]int
	// Replacements is the number of tasks that replaced another in the
	// service's slots or on its nodes since the process started (see
	// Replacements); set by Replacements.Count, 0 otherwise and for jobs.
	Replacements uint64
	// Status is the service's status; meaningless for jobs (HasStatus).
	Status health.Status
	// ConstraintErr is set when the placement constraints could not be
	// parsed; Docker then places tasks as if there were none, and so do we.
	ConstraintErr error
}

// HasStatus reports whether the service gets an OK/WARNING/KO status: jobs
// do not.
func (s *Service) HasStatus() bool { return !s.Mode.Job() }

// Build evaluates a snapshot.
func Build(snap *swarm.Snapshot, opts Options) *Report {
	r := &Report{
		ReadAt:   snap.ReadAt,
		Up:       snap.Err == nil,
		Err:      snap.Err,
		Local:    snap.Info,
		NoLeader: snap.NoLeader && snap.Err == nil,
	}
	if !r.Up {
		return r
	}
	if r.NoLeader {
		r.buildLeaderless(opts)
		return r
	}
	r.Nodes = snap.Nodes
	r.buildCluster(opts)
	if snap.NoServices {
		// The exporter on the leader reads them (--read.services=leader):
		// neither the services nor the overall status are known here.
		return r
	}
	r.buildServices(snap, opts)
	r.Overall = health.Worst(r.Cluster.Status, r.ServicesStatus)
	return r
}

func (r *Report) buildLeaderless(opts Options) {
	c := &r.Cluster
	c.Managers.Total = r.Local.ManagersTotal()
	if r.Local.Nodes > 0 {
		c.Workers.Total = max(r.Local.Nodes-r.Local.Managers, 0)
		c.WorkersKnown = true
	}
	c.Quorum = health.Quorum(c.Managers.Total)
	c.Status, c.Conditions = health.Cluster(health.ClusterView{
		NoLeader:       true,
		Managers:       c.Managers.Total,
		Workers:        c.Workers.Total,
		WorkersUnknown: !c.WorkersKnown,
	}, opts.Thresholds)
	r.Overall = c.Status
}

func (r *Report) buildCluster(opts Options) {
	c := &r.Cluster
	c.StatesKnown = true
	c.WorkersKnown = true
	notReady := 0
	for i := range r.Nodes {
		n := &r.Nodes[i]
		role := &c.Workers
		if n.Manager {
			role = &c.Managers
			if n.Reachability == swarm.Reachable {
				c.ReachableManagers++
			}
			if n.Leader && r.Local != nil && n.ID == r.Local.NodeID {
				r.LocalLeader = true
			}
		}
		role.Total++
		role.ByState[n.State]++
		if n.State != swarm.NodeReady {
			notReady++
		}
	}
	c.Quorum = health.Quorum(c.Managers.Total)
	c.Status, c.Conditions = health.Cluster(health.ClusterView{
		Managers:          c.Managers.Total,
		Workers:           c.Workers.Total,
		ManagersAlive:     c.Managers.Alive(),
		WorkersAlive:      c.Workers.Alive(),
		NotReady:          notReady,
		ReachableManagers: c.ReachableManagers,
	}, opts.Thresholds)
}

func (r *Report) buildServices(snap *swarm.Snapshot, opts Options) {
	nodes := snap.Nodes
	r.Services = make([]Service, len(snap.Services))
	byID := make(map[string]int32, len(snap.Services))
	el := eligibility{nodes: nodes, sets: make([]*eligibleSet, len(snap.Services))}
	for i := range snap.Services {
		s := &snap.Services[i]
		rs := &r.Services[i]
		rs.Service = s
		byID[s.ID] = int32(i)
		if s.Mode.Global() {
			set := el.add(i, s)
			rs.Desired, rs.ConstraintErr = set.count, set.err
		} else {
			rs.Desired = int(min(s.Replicas, uint64(maxInt)))
		}
	}

	// Resolve the interned IDs of the task list once, not per task.
	tasks := &snap.Tasks
	svcOf := make([]int32, len(tasks.ServiceIDs))
	for i, id := range tasks.ServiceIDs {
		if s, ok := byID[id]; ok {
			svcOf[i] = s
		} else {
			svcOf[i] = -1 // removed since the service list was read
		}
	}
	nodeIndex := make(map[string]int32, len(nodes))
	for i := range nodes {
		nodeIndex[nodes[i].ID] = int32(i)
	}
	nodeOf := make([]int32, len(tasks.NodeIDs))
	for i, id := range tasks.NodeIDs {
		if n, ok := nodeIndex[id]; ok {
			nodeOf[i] = n
		} else {
			nodeOf[i] = -1 // removed from the swarm
		}
	}

	for i := range tasks.List {
		t := &tasks.List[i]
		si := svcOf[t.Service]
		if si < 0 {
			continue
		}
		rs := &r.Services[si]
		if !inCurrentRun(rs.Service, t) {
			continue
		}
		rs.Tasks[t.State]++
		ni := int32(-1)
		if t.Node >= 0 {
			ni = nodeOf[t.Node]
		}
		if rs.Mode.Global() && ni >= 0 && el.holdsTask(si, ni) {
			// A paused node that holds a task of the service keeps it.
			rs.Desired++
		}
		switch t.State {
		case swarm.TaskComplete:
			rs.Completed++
		case swarm.TaskRunning:
			if ni < 0 || nodes[ni].State == swarm.NodeDown {
				continue
			}
			if !wantsRunning(rs.Mode, t.Desired) {
				continue
			}
			if rs.Mode.Global() && !el.placeable(si, ni) {
				continue
			}
			rs.Running++
		}
	}

	r.ServicesKnown = true
	r.ServicesStatus = health.OK
	for i := range r.Services {
		rs := &r.Services[i]
		if !rs.HasStatus() {
			continue
		}
		rs.Status = health.Service(rs.Running, rs.Desired, opts.Policy)
		r.ServicesStatus = health.Worst(r.ServicesStatus, rs.Status)
	}
}

// inCurrentRun reports whether a task counts for its service: every task
// of a replicated or global service, and the tasks of a job's current run
// only. Each update of a job (`docker service update`, `--force` included)
// starts a new run; the completed tasks of earlier runs stay in the task
// list with desired state complete, and Docker's own counts leave them
// out, as they leave out a job's task that belongs to no run.
func inCurrentRun(s *swarm.Service, t *swarm.Task) bool {
	if !s.Mode.Job() || !s.HasJobStatus {
		return true
	}
	return t.HasJobIteration && t.JobIteration == s.JobIteration
}

// wantsRunning reports whether a task in state running with this desired
// state counts as running: services want it running; job tasks carry the
// desired state complete while they run.
func wantsRunning(m swarm.Mode, desired swarm.TaskState) bool {
	if m.Job() {
		return desired == swarm.TaskRunning || desired == swarm.TaskComplete
	}
	return desired == swarm.TaskRunning
}

const maxInt = int(^uint(0) >> 1)

// eligibility computes which nodes a global service wants a task on, the
// way Docker's global orchestrators decide it (swarmkit's
// manager/orchestrator/global and jobs/global): nodes that are not down, not
// drained and match the placement constraints. Platforms do not count: the
// orchestrator creates a task on a node of another platform too, which the
// scheduler then leaves pending ("unsupported platform"), so the service is
// short of a task there. A paused node gets no new task, but keeps the one
// it has: it counts for a service only while it holds a task of it.
// Services with the same constraints share one computation, so the cost
// grows with nodes × distinct placements, not nodes × services.
type eligibility struct {
	nodes []swarm.Node
	pnode []*placement.Node
	cache map[string]*eligibleSet
	sets  []*eligibleSet // by service index; nil for a service that is not global
	// held records the paused nodes found holding a task of a service,
	// by service and node index.
	held map[[2]int32]struct{}
}

// placeability is what a node is to a placement.
type placeability uint8

const (
	notPlaceable placeability = iota
	placeable                 // active, not down, matching the constraints
	pausedMatch               // the same, but paused: only while it holds a task
)

type eligibleSet struct {
	nodes []placeability
	count int // placeable nodes
	err   error
}

// add computes, or finds among those already computed, the eligible nodes
// of the global service of index si, and returns them. The count is that
// of the active nodes; the paused ones that hold a task are added as
// holdsTask finds them.
func (e *eligibility) add(si int, s *swarm.Service) *eligibleSet {
	if e.cache == nil {
		e.cache = make(map[string]*eligibleSet)
		e.pnode = make([]*placement.Node, len(e.nodes))
		for i := range e.nodes {
			e.pnode[i] = e.nodes[i].PlacementNode()
		}
	}
	key := placementKey(s)
	set, ok := e.cache[key]
	if !ok {
		set = &eligibleSet{nodes: make([]placeability, len(e.nodes))}
		cs, err := placement.Parse(s.Constraints)
		set.err = err
		for i := range e.nodes {
			n := &e.nodes[i]
			if n.State == swarm.NodeDown || n.Availability == swarm.Drain || !cs.Match(e.pnode[i]) {
				continue
			}
			if n.Availability == swarm.Pause {
				set.nodes[i] = pausedMatch
				continue
			}
			set.nodes[i] = placeable
			set.count++
		}
		e.cache[key] = set
	}
	e.sets[si] = set
	return set
}

// placeable reports whether a task of the global service of index si on
// the node counts: the node is one it wants a task on, or a paused one
// that holds this task.
func (e *eligibility) placeable(si, node int32) bool {
	return e.sets[si].nodes[node] != notPlaceable
}

// holdsTask records that the node holds a task of the global service of
// index si and reports whether that adds the node to the nodes the service
// wants a task on: the first time a paused node is found holding one.
func (e *eligibility) holdsTask(si, node int32) bool {
	if e.sets[si].nodes[node] != pausedMatch {
		return false
	}
	if e.held == nil {
		e.held = make(map[[2]int32]struct{})
	}
	k := [2]int32{si, node}
	if _, ok := e.held[k]; ok {
		return false
	}
	e.held[k] = struct{}{}
	return true
}

// placementKey identifies a placement: each constraint is length-prefixed,
// so that no two different placements share a key, whatever their strings
// hold.
func placementKey(s *swarm.Service) string {
	var b strings.Builder
	part := func(v string) {
		b.WriteString(strconv.Itoa(len(v)))
		b.WriteByte(':')
		b.WriteString(v)
	}
	for _, c := range s.Constraints {
		part(c)
	}
	return b.String()
}
