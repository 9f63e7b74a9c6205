package health

import (
	"fmt"
	"testing"
)

// view builds a ClusterView from node lists the way the report package does:
// each entry is a node state ("ready", "down", "unknown", "disconnected"),
// and managers are reachable exactly when they are ready or unknown.
func view(managers, workers []string) ClusterView {
	var v ClusterView
	for _, s := range managers {
		v.Managers++
		if s == "ready" || s == "unknown" {
			v.ManagersAlive++
			v.ReachableManagers++
		}
		if s != "ready" {
			v.NotReady++
		}
	}
	for _, s := range workers {
		v.Workers++
		if s == "ready" || s == "unknown" {
			v.WorkersAlive++
		}
		if s != "ready" {
			v.NotReady++
		}
	}
	return v
}

func n(state string, count int) []string {
	out := make([]string, count)
	for i := range out {
		out[i] = state
	}
	return out
}

func cat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestClusterOriginalLibraryExamples(t *testing.T) {
	def := DefaultThresholds()
	tests := []struct {
		name string
		v    ClusterView
		want Status
	}{
		{"3 managers + 2 workers, all ready → OK", view(n("ready", 3), n("ready", 2)), OK},
		{"3M+2W with one manager down → WARNING", view(cat(n("ready", 2), n("down", 1)), n("ready", 2)), Warning},
		{"3M+2W with one worker down → WARNING", view(n("ready", 3), cat(n("ready", 1), n("down", 1))), Warning},
		{"1 manager + 1 worker → WARNING", view(n("ready", 1), n("ready", 1)), Warning},
		{"managers only → KO", view(n("ready", 3), nil), KO},
		{"workers with no ready manager → KO", view(n("down", 1), n("ready", 2)), KO},
		{"5M+3W with one node not ready → WARNING (original returned nothing)", view(n("ready", 5), cat(n("ready", 2), n("down", 1))), Warning},
		{"5M+3W with one manager not ready → WARNING", view(cat(n("ready", 4), n("down", 1)), n("ready", 3)), Warning},
		{"1 of 3 managers left (node list) → KO (original said WARNING)", view(cat(n("ready", 1), n("down", 2)), n("ready", 2)), KO},
		{"1 of 3 managers left (API: no leader) → KO", ClusterView{NoLeader: true, Managers: 3, Workers: 2}, KO},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := Cluster(tt.v, def)
			if got != tt.want {
				t.Errorf("Cluster(%+v) = %v, want %v", tt.v, got, tt.want)
			}
		})
	}
}

func TestClusterRows(t *testing.T) {
	def := DefaultThresholds()
	noWorkers := Thresholds{MinManagers: 3, MinWorkers: 0}
	tests := []struct {
		row   string
		v     ClusterView
		th    Thresholds
		want  Status
		conds []Condition
	}{
		{"1: no leader", ClusterView{NoLeader: true, Managers: 3, Workers: 2}, def, KO, []Condition{QuorumLost}},
		{"1: no leader, small swarm", ClusterView{NoLeader: true, Managers: 2, Workers: 0}, def, KO, []Condition{QuorumLost, BelowMinManagers, BelowMinWorkers}},
		{"2: workers all down", view(n("ready", 3), n("down", 2)), def, KO, []Condition{NoReadyWorker, NodeNotReady}},
		{"2: no workers at all", view(n("ready", 3), nil), def, KO, []Condition{NoReadyWorker, BelowMinWorkers}},
		{"2: workers disconnected", view(n("ready", 3), n("disconnected", 2)), def, KO, []Condition{NoReadyWorker, NodeNotReady}},
		{"2 skipped with min-workers=0: managers only, all ready → OK", view(n("ready", 3), nil), noWorkers, OK, nil},
		{"2 skipped with min-workers=0: 2 managers → WARNING", view(n("ready", 2), nil), noWorkers, Warning, []Condition{BelowMinManagers}},
		{"3: no alive manager", ClusterView{Managers: 1, Workers: 2, WorkersAlive: 2, NotReady: 1}, def, KO, []Condition{QuorumLost, NoReadyManager, NodeNotReady, BelowMinManagers, ManagerUnreachable}},
		{"4: reachable below quorum", view(cat(n("ready", 2), n("down", 3)), n("ready", 2)), def, KO, []Condition{QuorumLost, NodeNotReady, ManagerUnreachable}},
		{"4: 2 managers, one down (quorum 2)", view(cat(n("ready", 1), n("down", 1)), n("ready", 2)), def, KO, []Condition{QuorumLost, NodeNotReady, BelowMinManagers, ManagerUnreachable}},
		{"5: 5M+3W all ready", view(n("ready", 5), n("ready", 3)), def, OK, nil},
		{"5 with custom thresholds", view(n("ready", 1), n("ready", 1)), Thresholds{MinManagers: 1, MinWorkers: 1}, OK, nil},
		{"6: 2 managers", view(n("ready", 2), n("ready", 2)), def, Warning, []Condition{BelowMinManagers}},
		{"6: 1 worker", view(n("ready", 3), n("ready", 1)), def, Warning, []Condition{BelowMinWorkers}},
		{"6: leader change, every node unknown → WARNING, never KO", view(n("unknown", 3), n("unknown", 2)), def, Warning, []Condition{NodeNotReady}},
		{"6: a manager unknown", view(cat(n("ready", 2), n("unknown", 1)), n("ready", 2)), def, Warning, []Condition{NodeNotReady}},
		// A manager that just died: unreachable at once, still ready until
		// its heartbeat expires. Not fault tolerant any more: WARNING.
		{"6: a manager unreachable but still ready", ClusterView{Managers: 3, Workers: 2, ManagersAlive: 3, WorkersAlive: 2, ReachableManagers: 2}, def, Warning, []Condition{ManagerUnreachable}},
	}
	for _, tt := range tests {
		t.Run(tt.row, func(t *testing.T) {
			got, cs := Cluster(tt.v, tt.th)
			if got != tt.want {
				t.Errorf("status = %v, want %v", got, tt.want)
			}
			if fmt.Sprint(cs.Active()) != fmt.Sprint(tt.conds) {
				t.Errorf("conditions = %v, want %v", cs.Active(), tt.conds)
			}
		})
	}
}

func TestServiceRows(t *testing.T) {
	strict := ServicePolicy{}
	zeroOK := ServicePolicy{AllowZeroReplicas: true}
	tests := []struct {
		row              string
		running, desired int
		p                ServicePolicy
		want             Status
	}{
		{"1: none running", 0, 6, strict, KO},
		{"1: scaled to zero", 0, 0, strict, KO},
		{"1: scaled to zero, allowed", 0, 0, zeroOK, OK},
		{"1: none running, zero allowed but desired > 0", 0, 3, zeroOK, KO},
		{"2: some running", 3, 6, strict, Warning},
		{"2: one running", 1, 6, strict, Warning},
		{"3: all running", 6, 6, strict, OK},
		{"3: seed example 15/15", 15, 15, strict, OK},
		{"3: seed example 5/5", 5, 5, strict, OK},
		{"4: more running than desired", 8, 6, strict, Warning},
		{"4: running while scaled to zero", 2, 0, zeroOK, Warning},
	}
	for _, tt := range tests {
		t.Run(tt.row, func(t *testing.T) {
			if got := Service(tt.running, tt.desired, tt.p); got != tt.want {
				t.Errorf("Service(%d, %d, %+v) = %v, want %v", tt.running, tt.desired, tt.p, got, tt.want)
			}
		})
	}
}

// The services status folds the services' statuses with Worst from OK.
func TestServicesAggregate(t *testing.T) {
	tests := []struct {
		in   []Status
		want Status
	}{
		{nil, OK},
		{[]Status{OK, OK}, OK},
		{[]Status{OK, Warning, OK}, Warning},
		{[]Status{Warning, KO, OK}, KO},
	}
	for _, tt := range tests {
		if got := worstOf(tt.in); got != tt.want {
			t.Errorf("worst of %v = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// worstOf folds statuses with Worst, as report does for the services.
func worstOf(statuses []Status) Status {
	worst := OK
	for _, s := range statuses {
		worst = Worst(worst, s)
	}
	return worst
}

func TestQuorum(t *testing.T) {
	for m, want := range map[int]int{0: 1, 1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 7: 4} {
		if got := Quorum(m); got != want {
			t.Errorf("Quorum(%d) = %d, want %d", m, got, want)
		}
	}
}

func TestStatusNames(t *testing.T) {
	for _, s := range Statuses {
		if s.String() == "" || s.Label() == "" {
			t.Errorf("status %d has no name", s)
		}
	}
	if OK.String() != "OK" || Warning.String() != "WARNING" || KO.String() != "KO" {
		t.Error("status names differ from the original library's")
	}
	seen := map[string]bool{}
	for _, c := range Conditions {
		if seen[c.String()] || c.String() == "invalid" {
			t.Errorf("condition %d has a duplicate or missing name %q", c, c)
		}
		seen[c.String()] = true
	}
}
