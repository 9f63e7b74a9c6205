package report

import (
	"testing"

	"github.com/swarm-exporter/swarm_exporter/health"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

// A hand-made swarm for the rules the fixtures do not show.
func TestGlobalEligibilityAndRunningCounts(t *testing.T) {
	nodes := []swarm.Node{
		{ID: "m1", Hostname: "m1", Manager: true, Leader: true, Reachability: swarm.Reachable, State: swarm.NodeReady, OS: "linux", Architecture: "x86_64"},
		{ID: "w1", Hostname: "w1", State: swarm.NodeReady, Availability: swarm.Drain, OS: "linux", Architecture: "x86_64"},
		{ID: "w2", Hostname: "w2", State: swarm.NodeReady, Availability: swarm.Pause, OS: "linux", Architecture: "aarch64", Labels: map[string]string{"zone": "b"}},
		{ID: "w3", Hostname: "w3", State: swarm.NodeDown, OS: "linux", Architecture: "x86_64"},
		{ID: "w4", Hostname: "w4", State: swarm.NodeUnknown, OS: "linux", Architecture: "x86_64", Labels: map[string]string{"zone": "b"}},
	}
	services := []swarm.Service{
		{ID: "g", Name: "global", Mode: swarm.Global},
		{ID: "gz", Name: "zoned", Mode: swarm.Global, Constraints: []string{"node.labels.zone==b"}},
		{ID: "ga", Name: "amd64", Mode: swarm.Global, Constraints: []string{"node.platform.arch==x86_64"}},
		{ID: "gbad", Name: "bad", Mode: swarm.Global, Constraints: []string{"node.role>manager"}},
		{ID: "r", Name: "replicated", Mode: swarm.Replicated, Replicas: 3},
		{ID: "j", Name: "job", Mode: swarm.GlobalJob},
	}
	T := func(svc, node int32, state, desired swarm.TaskState) swarm.Task {
		return swarm.Task{Service: svc, Node: node, State: state, Desired: desired}
	}
	run, ready, complete := swarm.TaskRunning, swarm.TaskReady, swarm.TaskComplete
	snap := &swarm.Snapshot{
		Info:     &swarm.Info{NodeID: "m1", ControlAvailable: true, LocalNodeState: swarm.LocalActive},
		Nodes:    nodes,
		Services: services,
		Tasks: swarm.Tasks{
			ServiceIDs: []string{"g", "gz", "r", "j", "gone"},
			NodeIDs:    []string{"m1", "w1", "w2", "w3", "w4", "removed"},
			List: []swarm.Task{
				T(0, 0, run, run), T(0, 2, run, run), T(0, 4, run, run),
				T(0, 3, run, run), // on a down node: not running
				T(0, 1, run, run), // on a drained node: not eligible
				T(1, 2, run, run), T(1, 4, swarm.TaskRejected, ready),
				T(2, 0, run, run), T(2, 2, run, run), T(2, 5, run, run), // on a removed node
				T(2, -1, swarm.TaskPending, run),
				T(2, 4, swarm.TaskStarting, run),
				T(3, 0, complete, complete), T(3, 2, run, complete),
				T(4, 0, run, run), // a service removed since the service list was read
			},
		},
	}
	rep := Build(snap, DefaultOptions())
	want := map[string]struct{ desired, running, completed int }{
		"global":     {3, 3, 0}, // m1, w2 (paused), w4 (unknown); not w1 (drained), w3 (down)
		"zoned":      {2, 1, 0},
		"amd64":      {2, 0, 0}, // m1, w4: the x86_64 nodes neither drained nor down
		"bad":        {2, 0, 0}, // a malformed constraint places like none, as Docker does: m1, w4
		"replicated": {3, 2, 0},
		"job":        {3, 1, 1},
	}
	for i := range rep.Services {
		s := &rep.Services[i]
		w := want[s.Name]
		if s.Desired != w.desired || s.Running != w.running || s.Completed != w.completed {
			t.Errorf("%s: desired %d running %d completed %d, want %+v", s.Name, s.Desired, s.Running, s.Completed, w)
		}
	}
	if rep.Services[3].ConstraintErr == nil {
		t.Error("the malformed constraint is not reported")
	}
	if r := rep.Services[4]; r.Tasks[swarm.TaskPending] != 1 || r.Tasks[swarm.TaskStarting] != 1 || r.Tasks[swarm.TaskRunning] != 3 {
		t.Errorf("replicated tasks by state: %v", r.Tasks)
	}
	if rep.Cluster.Status != health.Warning {
		// One manager: below the minimum, and nodes not ready.
		t.Errorf("cluster %v", rep.Cluster.Status)
	}
}
