// Package swarm reads the state of a Docker swarm through the Engine API of
// one of its managers: one read is /_ping, /info, /nodes, /services and one
// filtered /tasks request, whatever the size of the swarm. It decodes only the
// fields the exporter uses, while the bytes arrive, and shares one in-flight
// read between concurrent callers.
package swarm

import (
	"time"

	"github.com/swarm-exporter/swarm_exporter/placement"
)

// Snapshot is one read of the swarm.
type Snapshot struct {
	// ReadAt is when the read started.
	ReadAt time.Time
	// APIVersion is the Engine API version the read used.
	APIVersion string
	// Info is the daemon's /info answer; nil when /info did not answer.
	Info *Info
	// NoLeader is set when the manager answered that the swarm has no leader
	// (quorum lost). Nodes, Services and Tasks are then empty: only Info's
	// totals are known.
	NoLeader bool
	// NoServices is set when the read left out /services and /tasks
	// (Config.Services is ServicesLeader and the manager read through is
	// neither the leader nor its stand-in, see readsServices): Services and Tasks are empty because they were not
	// read, not because the swarm has none.
	NoServices bool
	// forStatusOnly: the read fetched the services and tasks only because
	// a status request (ReadFull) wanted them, on a manager that neither
	// read them for the scrapes when the read began nor does as its /nodes
	// says (ServicesLeader, readsServices).
	// The scrapes then get the read without them (Reader.scope).
	forStatusOnly bool
	Nodes         []Node
	Services      []Service
	Tasks         Tasks
	// Err says why the cluster state could not be read; nil when it was
	// (a leaderless swarm counts as read: its KO is the answer). It is an
	// *Error unless the read was cut short by the caller's deadline.
	Err error
}

// LocalLeader reports whether the node read through is the swarm's leader,
// as the read's /nodes says.
func (s *Snapshot) LocalLeader() bool {
	if s.Info == nil || s.Info.NodeID == "" {
		return false
	}
	for i := range s.Nodes {
		if s.Nodes[i].Leader && s.Nodes[i].ID == s.Info.NodeID {
			return true
		}
	}
	return false
}

// readsServices says whether the manager read through is the one that
// reads the services and tasks with ServicesLeader, as the read's /nodes
// says: the leader; or, while the leader is drained (the exporter, a swarm
// service, cannot run there), its stand-in, the first manager by node ID
// that is ready, active and reachable. Every instance finds the same one.
func (s *Snapshot) readsServices() bool {
	if s.Info == nil || s.Info.NodeID == "" {
		return false
	}
	var leader *Node
	standIn := ""
	for i := range s.Nodes {
		n := &s.Nodes[i]
		switch {
		case !n.Manager:
		case n.Leader:
			leader = n
		case n.State == NodeReady && n.Availability == Active && n.Reachability == Reachable &&
			(standIn == "" || n.ID < standIn):
			standIn = n.ID
		}
	}
	switch {
	case leader == nil:
		return false
	case leader.ID == s.Info.NodeID:
		return true
	default:
		return leader.Availability == Drain && standIn == s.Info.NodeID
	}
}

// Info is the part of /info the exporter uses: the node it talks to.
type Info struct {
	Name             string // the daemon's hostname
	ServerVersion    string
	NodeID           string
	NodeAddr         string
	LocalNodeState   LocalNodeState
	ControlAvailable bool   // the node is a manager
	Error            string // Swarm.Error, set in the error state
	ClusterID        string
	// Nodes and Managers are the totals a manager reports; a manager
	// whose swarm has no leader leaves them out (0).
	Nodes    int
	Managers int
	// RemoteManagers is the number of managers this node knows of (Raft
	// membership), which it reports also without a leader.
	RemoteManagers int
}

// Role returns "manager" or "worker". A locked node is a manager: only
// managers hold the swarm's encrypted state, and a locked one does not say
// it can serve it.
func (i *Info) Role() string {
	if i.ControlAvailable || i.LocalNodeState == LocalLocked {
		return "manager"
	}
	return "worker"
}

// ManagersTotal returns the number of managers: the reported total, or the
// Raft membership this node knows of when the swarm has no leader.
func (i *Info) ManagersTotal() int {
	if i.Managers > 0 {
		return i.Managers
	}
	return i.RemoteManagers
}

// Node is one swarm node.
type Node struct {
	ID            string
	Hostname      string
	EngineVersion string
	Addr          string
	OS            string
	Architecture  string
	State         NodeState
	Availability  Availability
	Labels        map[string]string
	EngineLabels  map[string]string

	// Manager is true when the node has a manager status; the rest of the
	// fields below are only meaningful for managers.
	Manager      bool
	Leader       bool
	Reachability Reachability
	ManagerAddr  string
}

// Role returns "manager" or "worker".
func (n *Node) Role() string {
	if n.Manager {
		return "manager"
	}
	return "worker"
}

// PlacementNode returns what placement constraints are evaluated against.
func (n *Node) PlacementNode() *placement.Node {
	return &placement.Node{
		ID: n.ID, Hostname: n.Hostname, Role: n.Role(), Addr: n.Addr,
		OS: n.OS, Architecture: n.Architecture, Labels: n.Labels, EngineLabels: n.EngineLabels,
	}
}

// Service is one swarm service.
type Service struct {
	ID    string
	Name  string
	Stack string // the com.docker.stack.namespace label
	Image string // the image reference without its digest
	Mode  Mode
	// Replicas is the replica count of a replicated service and the total
	// number of completions of a replicated job.
	Replicas      uint64
	MaxConcurrent uint64 // replicated jobs only
	Constraints   []string
	// JobIteration is a job's current run (JobStatus.JobIteration.Index):
	// every update of a job, `--force` included, starts a new one, and only
	// the tasks of the current one count, as Docker counts them.
	// HasJobStatus is false when the service has no JobStatus (a service
	// that is not a job); its tasks are then counted whatever their
	// iteration.
	JobIteration uint64
	HasJobStatus bool
	// UpdateState is the state of the last update or rollback, UpdateNone
	// when the service was never updated.
	UpdateState     UpdateState
	UpdateStartedAt time.Time
	// Reported holds Docker's own ServiceStatus counts. They are kept for
	// comparison only: RunningTasks counts tasks on down nodes and
	// DesiredTasks hides nodes whose task keeps being rejected.
	Reported ReportedStatus
}

// ReportedStatus is Docker's ServiceStatus.
type ReportedStatus struct {
	Running, Desired, Completed uint64
}

// Tasks is the list of current tasks (desired state running, ready or
// complete), kept compact: service and node IDs are interned and each task
// refers to them by index.
type Tasks struct {
	ServiceIDs []string
	NodeIDs    []string
	List       []Task
}

// Task is one current task.
type Task struct {
	// ID is taskIDHash of the task's ID, 0 when it has none: enough to
	// tell a task from the one it replaced, in 8 bytes instead of 25.
	ID uint64
	// Slot is the slot of a replicated service's or replicated job's
	// task; 0 for a global one, whose "slot" is its node.
	Slot uint64
	// JobIteration is the JobIteration.Index of a job's task: the run of
	// the job it belongs to. HasJobIteration is false when the task has
	// none (tasks of services that are not jobs).
	JobIteration    uint64
	Service         int32 // index into Tasks.ServiceIDs
	Node            int32 // index into Tasks.NodeIDs; -1 when not assigned to a node
	State           TaskState
	Desired         TaskState
	HasJobIteration bool
}
