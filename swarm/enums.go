package swarm

// The enumerations below map Docker's strings to small integers. Every enum
// lists its values in the order metrics emit them. A value Docker may add in
// the future maps to a documented fallback instead of failing the read:
// a node state to NodeUnknown, an availability to Active, a reachability to
// ReachabilityUnknown, a task state to TaskUnknown, a local node state to
// LocalError and an update state to UpdateUnknown.

// NodeState is a node's Status.State.
type NodeState uint8

const (
	NodeReady NodeState = iota
	NodeDown
	NodeUnknown
	NodeDisconnected
)

// NodeStates lists every node state.
var NodeStates = [...]NodeState{NodeReady, NodeDown, NodeUnknown, NodeDisconnected}

var nodeStateNames = [...]string{"ready", "down", "unknown", "disconnected"}

func (s NodeState) String() string { return nodeStateNames[s] }

func parseNodeState(b []byte) NodeState {
	for i, n := range nodeStateNames {
		if string(b) == n {
			return NodeState(i)
		}
	}
	return NodeUnknown
}

// Availability is a node's Spec.Availability.
type Availability uint8

const (
	Active Availability = iota
	Pause
	Drain
)

// Availabilities lists every availability.
var Availabilities = [...]Availability{Active, Pause, Drain}

var availabilityNames = [...]string{"active", "pause", "drain"}

func (a Availability) String() string { return availabilityNames[a] }

func parseAvailability(b []byte) Availability {
	for i, n := range availabilityNames {
		if string(b) == n {
			return Availability(i)
		}
	}
	return Active
}

// Reachability is a manager's ManagerStatus.Reachability.
type Reachability uint8

const (
	Reachable Reachability = iota
	Unreachable
	ReachabilityUnknown
)

// Reachabilities lists every reachability.
var Reachabilities = [...]Reachability{Reachable, Unreachable, ReachabilityUnknown}

var reachabilityNames = [...]string{"reachable", "unreachable", "unknown"}

func (r Reachability) String() string { return reachabilityNames[r] }

func parseReachability(b []byte) Reachability {
	for i, n := range reachabilityNames {
		if string(b) == n {
			return Reachability(i)
		}
	}
	return ReachabilityUnknown
}

// LocalNodeState is /info's Swarm.LocalNodeState: whether the daemon the
// exporter talks to takes part in a swarm.
type LocalNodeState uint8

const (
	LocalInactive LocalNodeState = iota
	LocalPending
	LocalActive
	LocalError
	LocalLocked
)

// LocalNodeStates lists every local node state.
var LocalNodeStates = [...]LocalNodeState{LocalInactive, LocalPending, LocalActive, LocalError, LocalLocked}

var localNodeStateNames = [...]string{"inactive", "pending", "active", "error", "locked"}

func (s LocalNodeState) String() string { return localNodeStateNames[s] }

func parseLocalNodeState(s string) LocalNodeState {
	for i, n := range localNodeStateNames {
		if s == n {
			return LocalNodeState(i)
		}
	}
	return LocalError
}

// Mode is a service's scheduling mode.
type Mode uint8

const (
	Replicated Mode = iota
	Global
	ReplicatedJob
	GlobalJob
)

var modeNames = [...]string{"replicated", "global", "replicated-job", "global-job"}

func (m Mode) String() string { return modeNames[m] }

// Job reports whether the service runs to completion instead of forever.
func (m Mode) Job() bool { return m == ReplicatedJob || m == GlobalJob }

// Global reports whether the service runs one task per eligible node.
func (m Mode) Global() bool { return m == Global || m == GlobalJob }

// UpdateState is a service's UpdateStatus.State.
type UpdateState uint8

const (
	UpdateNone UpdateState = iota
	Updating
	UpdatePaused
	UpdateCompleted
	RollbackStarted
	RollbackPaused
	RollbackCompleted
	UpdateUnknown
)

var updateStateNames = [...]string{"", "updating", "paused", "completed", "rollback_started", "rollback_paused", "rollback_completed", "unknown"}

func (s UpdateState) String() string { return updateStateNames[s] }

// InProgress reports whether an update or rollback is under way or paused
// midway: the service's tasks are expected to differ from its spec.
func (s UpdateState) InProgress() bool {
	switch s {
	case Updating, UpdatePaused, RollbackStarted, RollbackPaused:
		return true
	}
	return false
}

func parseUpdateState(s string) UpdateState {
	if s == "" {
		return UpdateNone
	}
	for i := 1; i < len(updateStateNames)-1; i++ {
		if s == updateStateNames[i] {
			return UpdateState(i)
		}
	}
	return UpdateUnknown
}

// TaskState is a task's Status.State or DesiredState.
type TaskState uint8

const (
	TaskNew TaskState = iota
	TaskAllocated
	TaskPending
	TaskAssigned
	TaskAccepted
	TaskPreparing
	TaskReady
	TaskStarting
	TaskRunning
	TaskComplete
	TaskShutdown
	TaskFailed
	TaskRejected
	TaskRemove
	TaskOrphaned
	TaskUnknown
)

var taskStateNames = [...]string{
	"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting",
	"running", "complete", "shutdown", "failed", "rejected", "remove", "orphaned", "unknown",
}

// NumTaskStates is the number of task states, TaskUnknown included.
const NumTaskStates = len(taskStateNames)

func (s TaskState) String() string { return taskStateNames[s] }

func parseTaskState(b []byte) TaskState {
	for i, n := range taskStateNames[:TaskUnknown] {
		if string(b) == n {
			return TaskState(i)
		}
	}
	return TaskUnknown
}
