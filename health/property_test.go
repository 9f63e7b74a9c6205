package health

// Properties of the decision tables, checked over every small cluster and
// service (exhaustive enumeration) and over random large ones
// (testing/quick). The same checks run under FuzzClusterNodes.

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"testing/quick"
)

// nodeState is a node's Status.State, as in package swarm.
type nodeState uint8

const (
	stReady nodeState = iota
	stDown
	stUnknown
	stDisconnected
	numStates
)

func (s nodeState) alive() bool { return s == stReady || s == stUnknown }

// simNode is one node of a simulated swarm.
type simNode struct {
	Manager   bool
	State     nodeState
	Reachable bool // managers only
}

func (n simNode) String() string {
	role := "W"
	if n.Manager {
		role = "M"
		if !n.Reachable {
			role = "M(unreachable)"
		}
	}
	return fmt.Sprintf("%s:%s", role, [...]string{"ready", "down", "unknown", "disconnected"}[n.State])
}

// viewOf builds the ClusterView the way package report does from /nodes.
func viewOf(nodes []simNode) ClusterView {
	var v ClusterView
	for _, n := range nodes {
		if n.Manager {
			v.Managers++
			if n.State.alive() {
				v.ManagersAlive++
			}
			if n.Reachable {
				v.ReachableManagers++
			}
		} else {
			v.Workers++
			if n.State.alive() {
				v.WorkersAlive++
			}
		}
		if n.State != stReady {
			v.NotReady++
		}
	}
	return v
}

// kinds are every distinct kind of node.
var kinds = func() []simNode {
	var out []simNode
	for s := range numStates {
		out = append(out, simNode{Manager: false, State: s})
		out = append(out, simNode{Manager: true, State: s, Reachable: true})
		out = append(out, simNode{Manager: true, State: s, Reachable: false})
	}
	return out
}()

// eachCluster calls fn with every multiset of at most max nodes.
func eachCluster(max int, fn func([]simNode)) {
	var rec func(start int, cur []simNode)
	rec = func(start int, cur []simNode) {
		fn(cur)
		if len(cur) == max {
			return
		}
		for k := start; k < len(kinds); k++ {
			rec(k, append(cur, kinds[k]))
		}
	}
	rec(0, nil)
}

var smallThresholds = func() []Thresholds {
	var out []Thresholds
	for m := 0; m <= 4; m++ {
		for w := 0; w <= 3; w++ {
			out = append(out, Thresholds{MinManagers: m, MinWorkers: w})
		}
	}
	return out
}()

var koConditions = []Condition{QuorumLost, NoReadyManager, NoReadyWorker}

// checkOneStatus: the verdict is exactly one of OK, WARNING, KO, only known
// conditions hold, and the verdict agrees with the conditions: KO exactly
// when a KO condition holds, OK exactly when none holds.
func checkOneStatus(t testing.TB, v ClusterView, th Thresholds, st Status, cs ConditionSet) {
	t.Helper()
	n := 0
	for _, s := range Statuses {
		if s == st {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("Cluster(%+v, %+v) = %d, not exactly one status", v, th, st)
	}
	var known ConditionSet
	for _, c := range Conditions {
		known = known.With(c, true)
	}
	if cs&^known != 0 {
		t.Fatalf("Cluster(%+v, %+v): unknown conditions %08b", v, th, cs)
	}
	ko := false
	for _, c := range koConditions {
		ko = ko || cs.Has(c)
	}
	switch {
	case ko != (st == KO):
		t.Fatalf("Cluster(%+v, %+v) = %v with conditions %v", v, th, st, cs.Active())
	case (cs == 0) != (st == OK):
		t.Fatalf("Cluster(%+v, %+v) = %v with conditions %v: OK exactly when no condition holds", v, th, st, cs.Active())
	}
}

// specStatus is the documented table, evaluated on the node list itself.
func specStatus(nodes []simNode, th Thresholds) Status {
	var m, w, mAlive, wAlive, reachable, notReady int
	for _, n := range nodes {
		if n.Manager {
			m++
			if n.State.alive() {
				mAlive++
			}
			if n.Reachable {
				reachable++
			}
		} else {
			w++
			if n.State.alive() {
				wAlive++
			}
		}
		if n.State != stReady {
			notReady++
		}
	}
	switch {
	case th.MinWorkers > 0 && wAlive == 0:
		return KO
	case mAlive == 0:
		return KO
	case 2*reachable <= m: // not a strict majority
		return KO
	case m >= th.MinManagers && w >= th.MinWorkers && notReady == 0 && reachable == m:
		return OK
	}
	return Warning
}

func status(nodes []simNode, th Thresholds) Status {
	st, _ := Cluster(viewOf(nodes), th)
	return st
}

// checkCluster checks every property of one cluster under th.
func checkCluster(t testing.TB, nodes []simNode, th Thresholds) {
	t.Helper()
	v := viewOf(nodes)
	st, cs := Cluster(v, th)
	checkOneStatus(t, v, th, st, cs)
	if want := specStatus(nodes, th); st != want {
		t.Fatalf("%v under %+v: %v, the documented table says %v", nodes, th, st, want)
	}
	if again, cs2 := Cluster(v, th); again != st || cs2 != cs {
		t.Fatalf("%v: not deterministic", nodes)
	}

	// Marking a node down never improves the status: a manager that goes
	// down also becomes unreachable (Docker reports both), or keeps its
	// reachability for a moment; either way.
	for i, n := range nodes {
		if n.State == stDown {
			continue
		}
		for _, reach := range []bool{false, n.Reachable} {
			down := append([]simNode(nil), nodes...)
			down[i] = simNode{Manager: n.Manager, State: stDown, Reachable: n.Manager && reach}
			if after := status(down, th); after < st {
				t.Fatalf("marking node %d (%v) of %v down improved the cluster from %v to %v", i, n, nodes, st, after)
			}
		}
	}

	// Adding a ready worker never makes it worse (in particular not a
	// WARNING cluster), nor does adding a ready, reachable manager.
	for _, add := range []simNode{{State: stReady}, {Manager: true, State: stReady, Reachable: true}} {
		more := append(append([]simNode(nil), nodes...), add)
		if after := status(more, th); after > st {
			t.Fatalf("adding %v to %v (%v) made it %v", add, nodes, st, after)
		}
	}

	// Without a leader the verdict is KO (quorum lost), whatever else.
	lv := ClusterView{NoLeader: true, Managers: v.Managers, Workers: v.Workers}
	if st, cs := Cluster(lv, th); st != KO || !cs.Has(QuorumLost) {
		t.Fatalf("no leader: %v %v", st, cs.Active())
	}
	lv.WorkersUnknown = true
	if st, cs := Cluster(lv, th); st != KO || !cs.Has(QuorumLost) || cs.Has(BelowMinWorkers) {
		t.Fatalf("no leader, workers unknown: %v %v", st, cs.Active())
	}
}

func TestClusterPropertiesExhaustive(t *testing.T) {
	clusters := 0
	eachCluster(5, func(nodes []simNode) {
		clusters++
		for _, th := range smallThresholds {
			checkCluster(t, nodes, th)
		}
	})
	if clusters < 6000 {
		t.Fatalf("only %d clusters enumerated", clusters)
	}
}

// bigCluster is a random cluster of up to 60 nodes, for testing/quick.
type bigCluster struct {
	Nodes []simNode
	Th    Thresholds
}

func (bigCluster) Generate(r *rand.Rand, _ int) reflect.Value {
	c := bigCluster{Th: Thresholds{MinManagers: r.Intn(8), MinWorkers: r.Intn(8)}}
	n := r.Intn(61)
	// Mostly healthy clusters, so that every status shows up.
	bad := r.Float64() * 0.4
	for range n {
		k := simNode{Manager: r.Intn(3) == 0, State: stReady, Reachable: true}
		if r.Float64() < bad {
			k.State = nodeState(r.Intn(int(numStates)))
			k.Reachable = r.Intn(2) == 0
		}
		k.Reachable = k.Reachable && k.Manager
		c.Nodes = append(c.Nodes, k)
	}
	return reflect.ValueOf(c)
}

func TestClusterPropertiesQuick(t *testing.T) {
	seen := map[Status]int{}
	err := quick.Check(func(c bigCluster) bool {
		checkCluster(t, c.Nodes, c.Th)
		seen[status(c.Nodes, c.Th)]++
		return true
	}, &quick.Config{MaxCount: 20000, Rand: rand.New(rand.NewSource(7))})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Statuses {
		if seen[s] == 0 {
			t.Errorf("no random cluster was %v: the generator misses a row", s)
		}
	}
}

// specService is the documented service table.
func specService(running, desired int, p ServicePolicy) Status {
	switch {
	case running == 0 && desired == 0:
		if p.AllowZeroReplicas {
			return OK
		}
		return KO
	case running == 0:
		return KO
	case running == desired:
		return OK
	}
	return Warning
}

func TestServicePropertiesExhaustive(t *testing.T) {
	for running := 0; running <= 12; running++ {
		for desired := 0; desired <= 12; desired++ {
			strict := Service(running, desired, ServicePolicy{})
			lax := Service(running, desired, ServicePolicy{AllowZeroReplicas: true})
			for _, st := range []Status{strict, lax} {
				if st != OK && st != Warning && st != KO {
					t.Fatalf("Service(%d, %d) = %d, not one status", running, desired, st)
				}
			}
			if want := specService(running, desired, ServicePolicy{}); strict != want {
				t.Errorf("Service(%d, %d) = %v, want %v", running, desired, strict, want)
			}
			if want := specService(running, desired, ServicePolicy{AllowZeroReplicas: true}); lax != want {
				t.Errorf("Service(%d, %d, allow zero) = %v, want %v", running, desired, lax, want)
			}
			// The policy only matters for a service scaled to zero.
			if (strict != lax) != (running == 0 && desired == 0) {
				t.Errorf("Service(%d, %d): policy changed %v to %v", running, desired, strict, lax)
			}
			// One more running task moves a service towards OK until it
			// reaches desired, and away from it beyond.
			next := Service(running+1, desired, ServicePolicy{})
			if running < desired && next > strict {
				t.Errorf("Service(%d, %d) = %v but Service(%d, %d) = %v", running, desired, strict, running+1, desired, next)
			}
		}
	}
}

func TestServicesAggregateQuick(t *testing.T) {
	err := quick.Check(func(raw []uint8) bool {
		var in []Status
		want := OK
		for _, r := range raw {
			s := Statuses[int(r)%len(Statuses)]
			in = append(in, s)
			want = max(want, s)
		}
		got := worstOf(in)
		// Order does not matter.
		rev := make([]Status, len(in))
		for i, s := range in {
			rev[len(in)-1-i] = s
		}
		return got == want && worstOf(rev) == got
	}, &quick.Config{MaxCount: 2000, Rand: rand.New(rand.NewSource(1))})
	if err != nil {
		t.Fatal(err)
	}
}
