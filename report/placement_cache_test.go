package report_test

import (
	"testing"

	"github.com/swarm-exporter/swarm_exporter/report"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

// Global services with different placements never share the cached
// eligibility of the other, whatever bytes their constraints hold.
func TestPlacementsDoNotCollide(t *testing.T) {
	nodes := []swarm.Node{
		{ID: "m1", Manager: true, Leader: true, Reachability: swarm.Reachable, OS: "linux", Architecture: "x86_64"},
		{ID: "w1", OS: "linux", Architecture: "x86_64"},
	}
	for _, tc := range []struct {
		name string
		a, b swarm.Service
	}{
		{"constraints", // one malformed constraint (all nodes) vs two that exclude each other (none)
			swarm.Service{ID: "a", Name: "a", Mode: swarm.Global, Constraints: []string{"node.role==manager\x00node.role==worker"}},
			swarm.Service{ID: "b", Name: "b", Mode: swarm.Global, Constraints: []string{"node.role==manager", "node.role==worker"}}},
	} {
		alone := func(s swarm.Service) int {
			rep := report.Build(&swarm.Snapshot{Info: &swarm.Info{NodeID: "m1"}, Nodes: nodes, Services: []swarm.Service{s}}, report.DefaultOptions())
			return rep.Services[0].Desired
		}
		wantA, wantB := alone(tc.a), alone(tc.b)
		rep := report.Build(&swarm.Snapshot{Info: &swarm.Info{NodeID: "m1"}, Nodes: nodes, Services: []swarm.Service{tc.a, tc.b}}, report.DefaultOptions())
		if got := rep.Services[1].Desired; got != wantB {
			t.Errorf("%s: service b alone has %d eligible nodes, next to a (%d) it has %d", tc.name, wantB, wantA, got)
		}
	}
}
