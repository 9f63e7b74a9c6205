package health

// Fuzz targets for the decision functions.
//
// To fuzz: go test ./health -run '^$' -fuzz '^FuzzClusterNodes$' -parallel 1 -fuzztime 3m
// (likewise FuzzClusterView, FuzzService).

import (
	"testing"
)

// FuzzClusterNodes: any node list (one byte a node: bit 0 manager, bits 1-2
// the state, bit 3 reachable) under any small thresholds has every property
// of checkCluster.
func FuzzClusterNodes(f *testing.F) {
	f.Add([]byte{1 | 8, 1 | 8, 1 | 8, 0, 0}, int8(3), int8(2))             // 3M+2W ready: OK
	f.Add([]byte{1 | 8, 1 | 8, 1 | 2, 0, 0}, int8(3), int8(2))             // a manager down
	f.Add([]byte{1 | 8, 1 | 8, 1 | 8}, int8(3), int8(0))                   // managers only
	f.Add([]byte{1 | 4 | 8, 1 | 4 | 8, 1 | 4 | 8, 4, 4}, int8(3), int8(2)) // leader change: all unknown
	f.Add([]byte{1 | 8, 1 | 6, 1 | 2, 0, 6}, int8(-1), int8(127))
	f.Add([]byte{}, int8(0), int8(0))
	f.Fuzz(func(t *testing.T, raw []byte, minManagers, minWorkers int8) {
		if len(raw) > 200 {
			raw = raw[:200]
		}
		nodes := make([]simNode, len(raw))
		for i, b := range raw {
			nodes[i] = simNode{Manager: b&1 != 0, State: nodeState(b >> 1 & 3)}
			nodes[i].Reachable = nodes[i].Manager && b&8 != 0
		}
		checkCluster(t, nodes, Thresholds{MinManagers: int(minManagers), MinWorkers: int(minWorkers)})
	})
}

// FuzzClusterView: any view at all, however inconsistent (negative counts,
// more alive nodes than nodes), yields exactly one status and only known
// conditions, without panicking; views that package report can build (counts
// that add up, workers unknown only without a leader) also have a verdict
// that agrees with the conditions.
func FuzzClusterView(f *testing.F) {
	f.Add(false, 3, 2, false, 3, 2, 0, 3, 3, 2)
	f.Add(true, 3, 0, true, 0, 0, 0, 0, 3, 2)
	f.Add(false, 1, 2, false, 0, 2, 1, 0, 3, 2)
	f.Add(false, -1, -5, true, 7, -2, -1, 9, -3, 1<<62)
	f.Fuzz(func(t *testing.T, noLeader bool, managers, workers int, workersUnknown bool,
		managersAlive, workersAlive, notReady, reachable, minManagers, minWorkers int) {
		v := ClusterView{NoLeader: noLeader, Managers: managers, Workers: workers, WorkersUnknown: workersUnknown,
			ManagersAlive: managersAlive, WorkersAlive: workersAlive, NotReady: notReady, ReachableManagers: reachable}
		th := Thresholds{MinManagers: minManagers, MinWorkers: minWorkers}
		st, cs := Cluster(v, th)
		if st != OK && st != Warning && st != KO {
			t.Fatalf("Cluster(%+v, %+v) = %d", v, th, st)
		}
		_ = st.String() + st.Label()
		for _, c := range cs.Active() {
			_ = c.String()
		}
		if noLeader && (st != KO || !cs.Has(QuorumLost)) {
			t.Fatalf("no leader but %v %v", st, cs.Active())
		}
		plausible := managers >= 0 && workers >= 0 &&
			0 <= managersAlive && managersAlive <= managers && 0 <= workersAlive && workersAlive <= workers &&
			0 <= reachable && reachable <= managers && 0 <= notReady && notReady <= managers+workers &&
			notReady >= managers-managersAlive+workers-workersAlive && (!workersUnknown || noLeader)
		if plausible && !noLeader {
			checkOneStatus(t, v, th, st, cs)
		}
	})
}

// FuzzService: any counts (negative ones included) yield exactly one status,
// the documented one for counts that can occur.
func FuzzService(f *testing.F) {
	f.Add(0, 0, false)
	f.Add(0, 0, true)
	f.Add(3, 6, false)
	f.Add(6, 6, true)
	f.Add(8, 6, false)
	f.Add(-1, -1, true)
	f.Fuzz(func(t *testing.T, running, desired int, allowZero bool) {
		p := ServicePolicy{AllowZeroReplicas: allowZero}
		st := Service(running, desired, p)
		if st != OK && st != Warning && st != KO {
			t.Fatalf("Service(%d, %d, %+v) = %d", running, desired, p, st)
		}
		if running >= 0 && desired >= 0 {
			if want := specService(running, desired, p); st != want {
				t.Fatalf("Service(%d, %d, %+v) = %v, want %v", running, desired, p, st, want)
			}
		}
		if st == OK && running != desired {
			t.Fatalf("Service(%d, %d) is OK", running, desired)
		}
	})
}
