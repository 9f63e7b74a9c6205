package health

// Condition is one reason a cluster is not OK. Conditions are independent
// booleans: any number may hold at once, so that an alert can say why.
type Condition uint8

const (
	// QuorumLost: the swarm has no leader, or fewer managers are reachable
	// than the quorum needs.
	QuorumLost Condition = iota
	// NoReadyManager: no manager is alive (ready, or in the transient
	// unknown or disconnected state).
	NoReadyManager
	// NoReadyWorker: workers are required (MinWorkers > 0) and none is
	// alive; this includes a swarm without workers.
	NoReadyWorker
	// NodeNotReady: at least one node is not in the ready state.
	NodeNotReady
	// BelowMinManagers: fewer managers than Thresholds.MinManagers.
	BelowMinManagers
	// BelowMinWorkers: fewer workers than Thresholds.MinWorkers.
	BelowMinWorkers
	// ManagerUnreachable: at least one manager is not reachable. A manager
	// that dies turns unreachable at once but stays ready until its
	// heartbeat expires (about 10 s later): the swarm is already one loss
	// away from losing quorum.
	ManagerUnreachable

	numConditions
)

// Conditions lists every condition in a fixed order; metrics emit all of them.
var Conditions = [numConditions]Condition{
	QuorumLost, NoReadyManager, NoReadyWorker, NodeNotReady, BelowMinManagers, BelowMinWorkers, ManagerUnreachable,
}

var conditionNames = [numConditions]string{
	QuorumLost:         "quorum_lost",
	NoReadyManager:     "no_ready_manager",
	NoReadyWorker:      "no_ready_worker",
	NodeNotReady:       "node_not_ready",
	BelowMinManagers:   "below_min_managers",
	BelowMinWorkers:    "below_min_workers",
	ManagerUnreachable: "manager_unreachable",
}

// String returns the condition's metric label value.
func (c Condition) String() string {
	if c < numConditions {
		return conditionNames[c]
	}
	return "invalid"
}

// ConditionSet records which conditions hold.
type ConditionSet uint8

// Has reports whether c holds.
func (s ConditionSet) Has(c Condition) bool { return s&(1<<c) != 0 }

// With returns the set with c added when on is true.
func (s ConditionSet) With(c Condition, on bool) ConditionSet {
	if on {
		return s | 1<<c
	}
	return s
}

// Active returns the conditions that hold, in the order of Conditions.
func (s ConditionSet) Active() []Condition {
	var out []Condition
	for _, c := range Conditions {
		if s.Has(c) {
			out = append(out, c)
		}
	}
	return out
}

// Thresholds are the sizes below which a cluster is not fault tolerant.
// The defaults (3 managers, 2 workers) are those of the original library.
type Thresholds struct {
	MinManagers int
	MinWorkers  int
}

// DefaultThresholds returns the original library's thresholds.
func DefaultThresholds() Thresholds { return Thresholds{MinManagers: 3, MinWorkers: 2} }

// ClusterView is what the cluster decision needs to know about the swarm.
//
// A node is a manager when it has a manager status, otherwise a worker.
// Alive means ready, unknown or disconnected: every node passes through
// unknown for a few seconds after a leader change, disconnected is the
// state of a node looking for a new manager, and neither must turn into
// KO (report.RoleCount.Alive says why).
type ClusterView struct {
	// NoLeader: the manager could not serve cluster state because the swarm
	// has no leader. Only the totals below are then known (from /info).
	NoLeader bool

	Managers int // M
	Workers  int // W
	// WorkersUnknown: the number of workers is not known (a manager
	// without leader reports only the managers it knows of).
	WorkersUnknown bool

	ManagersAlive int // Ma: managers ready, unknown or disconnected
	WorkersAlive  int // Wa: workers ready, unknown or disconnected

	// NotReady counts nodes whose state is anything but ready.
	NotReady int
	// ReachableManagers counts managers whose reachability is "reachable".
	ReachableManagers int
}

// Cluster decides the cluster status. The first matching row wins:
//
//  1. no leader                              → KO (quorum_lost)
//  2. MinWorkers > 0 and no alive worker     → KO
//  3. no alive manager                       → KO
//  4. reachable managers < quorum            → KO
//  5. M ≥ MinManagers, W ≥ MinWorkers, all ready and every manager
//     reachable                              → OK
//  6. otherwise                              → WARNING
//
// The returned conditions are evaluated independently of the row that
// decided; while the swarm has no leader only the conditions that the /info
// totals support are evaluated.
func Cluster(v ClusterView, t Thresholds) (Status, ConditionSet) {
	var cs ConditionSet
	cs = cs.With(BelowMinManagers, v.Managers < t.MinManagers)
	cs = cs.With(BelowMinWorkers, !v.WorkersUnknown && v.Workers < t.MinWorkers)
	if v.NoLeader {
		return KO, cs.With(QuorumLost, true)
	}
	noWorker := t.MinWorkers > 0 && v.WorkersAlive == 0
	noManager := v.ManagersAlive == 0
	quorumLost := v.ReachableManagers < Quorum(v.Managers)
	cs = cs.With(NoReadyWorker, noWorker).
		With(NoReadyManager, noManager).
		With(QuorumLost, quorumLost).
		With(NodeNotReady, v.NotReady > 0).
		With(ManagerUnreachable, v.ReachableManagers < v.Managers)

	switch {
	case noWorker, noManager, quorumLost:
		return KO, cs
	case v.Managers >= t.MinManagers && v.Workers >= t.MinWorkers && v.NotReady == 0 && v.ReachableManagers == v.Managers:
		return OK, cs
	default:
		return Warning, cs
	}
}
