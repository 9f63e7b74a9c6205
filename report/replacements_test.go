package report_test

import (
	"sync"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/report"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

// replacementsAfter counts a read and returns the replacements by service
// name.
func replacementsAfter(t *testing.T, r *report.Replacements, snap *swarm.Snapshot) map[string]uint64 {
	t.Helper()
	rep := report.Build(snap, report.DefaultOptions())
	r.Count(snap, rep)
	out := map[string]uint64{}
	for i := range rep.Services {
		out[rep.Services[i].Name] = rep.Services[i].Replacements
	}
	return out
}

func checkReplacements(t *testing.T, what string, got map[string]uint64, want map[string]uint64) {
	t.Helper()
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %s has %d replacements, want %d (all: %v)", what, name, got[name], w, got)
		}
	}
}

// Successive reads of healthy-3m2w as Docker answers them while tasks are
// replaced: a replaced task no longer appears (its desired state is
// shutdown) and its replacement has a new ID in the same slot (replicated)
// or on the same node (global).
func TestReplacementsFromSuccessiveReads(t *testing.T) {
	at := time.Date(2026, 11, 22, 3, 50, 0, 0, time.UTC)
	read := func(c *jsonCase, seconds int) *swarm.Snapshot {
		snap := c.snapshot()
		snap.ReadAt = at.Add(time.Duration(seconds) * time.Second)
		return snap
	}
	// replace replaces the task of a service in a slot, or on a node.
	replace := func(c *jsonCase, service string, match func(task map[string]any) bool) {
		t.Helper()
		s := c.service(service)
		for i, task := range c.tasks {
			if task["ServiceID"] == s["ID"] && match(task) {
				nt := c.clone(task)
				nt["ID"] = c.newID()
				c.tasks[i] = nt
				return
			}
		}
		t.Fatalf("no task of %s to replace", service)
	}
	inSlot := func(slot float64) func(map[string]any) bool {
		return func(task map[string]any) bool { return task["Slot"] == slot }
	}
	onNode := func(c *jsonCase, host string) func(map[string]any) bool {
		id := c.node(host)["ID"]
		return func(task map[string]any) bool { return task["NodeID"] == id }
	}

	r := report.NewReplacements()
	c := loadCase(t, "healthy-3m2w")
	first := replacementsAfter(t, r, read(c, 0))
	checkReplacements(t, "first read", first, map[string]uint64{"web": 0, "agent": 0, "pinned": 0, "mgr-global": 0, "zero": 0, "updating": 0})

	// Second read: web's slot 3 and agent's task on swx-w1 replaced, a
	// second task beside pinned's in slot 2 (a start-first update), web
	// scaled up by one (a new slot), updating's slot 1 replaced, and a
	// replaced task of the job batch (jobs are not counted).
	replace(c, "web", inSlot(3))
	replace(c, "agent", onNode(c, "swx-w1"))
	replace(c, "updating", inSlot(1))
	replace(c, "batch", inSlot(1))
	pinned := c.service("pinned")
	var pinnedOld map[string]any
	for _, task := range c.tasksOf(pinned) {
		if task["Slot"] == 2.0 {
			pinnedOld = task
		}
	}
	second := c.addTask(pinnedOld, pinned, c.node("swx-m1"), "running", "starting")
	second["Slot"] = 2
	web := c.service("web")
	obj(web, "Spec", "Mode", "Replicated")["Replicas"] = 7
	c.addTask(c.tasksOf(web)[0], web, c.node("swx-w2"), "running", "running")["Slot"] = 7
	snap2 := read(c, 15)
	want2 := map[string]uint64{"web": 1, "agent": 1, "pinned": 1, "updating": 1, "mgr-global": 0, "zero": 0}
	checkReplacements(t, "second read", replacementsAfter(t, r, snap2), want2)
	if got := replacementsAfter(t, r, snap2)["batch"]; got != 0 {
		t.Errorf("the job batch has %d replacements: jobs are not counted", got)
	}

	// The same read again (scrapes that share it) is counted once, also
	// when several scrapes come at once, or hold a copy of it.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { replacementsAfter(t, r, snap2) })
	}
	wg.Wait()
	copied := *snap2
	checkReplacements(t, "the second read, again", replacementsAfter(t, r, &copied), want2)

	// Third read: pinned's old task in slot 2 gone, web's slot 3 replaced
	// again.
	for i, task := range c.tasks {
		if task["ID"] == pinnedOld["ID"] {
			c.tasks = append(c.tasks[:i], c.tasks[i+1:]...)
			break
		}
	}
	replace(c, "web", inSlot(3))
	want3 := map[string]uint64{"web": 2, "agent": 1, "pinned": 1, "updating": 1, "mgr-global": 0}
	checkReplacements(t, "third read", replacementsAfter(t, r, read(c, 30)), want3)

	// A read that started before the last one counted, answered late,
	// changes nothing, whatever it holds.
	late := loadCase(t, "healthy-3m2w")
	checkReplacements(t, "a late read", replacementsAfter(t, r, read(late, 20)), want3)

	// A failed read changes nothing; the next read is compared with the
	// last one counted.
	failed := &swarm.Snapshot{ReadAt: at.Add(45 * time.Second), Err: &swarm.Error{Kind: swarm.KindTimeout}}
	if rep := report.Build(failed, report.DefaultOptions()); rep.ServicesKnown {
		t.Fatal("a failed read has services")
	} else {
		r.Count(failed, rep)
	}
	replace(c, "agent", onNode(c, "swx-w1"))
	want4 := map[string]uint64{"web": 2, "agent": 2, "pinned": 1, "updating": 1}
	checkReplacements(t, "the read after a failed one", replacementsAfter(t, r, read(c, 60)), want4)

	// A read of the cluster without the task list (another instance reads
	// it: --read.services=leader on a follower) ends the comparison: what
	// changed until this instance reads the tasks again is not counted in
	// one step when it does, and the reads after it count again.
	follower := c.snapshot()
	follower.ReadAt = at.Add(61 * time.Second)
	follower.NoServices, follower.Services, follower.Tasks = true, nil, swarm.Tasks{}
	if rep := report.Build(follower, report.DefaultOptions()); rep.ServicesKnown || !rep.Up {
		t.Fatal("a read without the services has services, or is not up")
	} else {
		r.Count(follower, rep)
	}
	replace(c, "web", inSlot(1))
	replace(c, "web", inSlot(2))
	checkReplacements(t, "the read after one without the tasks", replacementsAfter(t, r, read(c, 62)), want4)
	replace(c, "web", inSlot(1))
	want4["web"]++
	checkReplacements(t, "the read after that", replacementsAfter(t, r, read(c, 63)), want4)

	// A service removed is forgotten: listed again, it starts from 0.
	updating := c.service("updating")
	var kept []map[string]any
	for _, s := range c.services {
		if s["ID"] != updating["ID"] {
			kept = append(kept, s)
		}
	}
	saved := c.services
	c.services = kept
	replacementsAfter(t, r, read(c, 75))
	c.services = saved
	checkReplacements(t, "a service listed again", replacementsAfter(t, r, read(c, 90)), map[string]uint64{"updating": 0, "web": want4["web"]})
}

// A node that leaves and one that joins: a global service's task on a new
// node replaces nothing, also when the new node takes the place the old one
// had in the exporter's memory.
func TestReplacementsAcrossNodeChanges(t *testing.T) {
	at := time.Date(2026, 11, 22, 3, 50, 0, 0, time.UTC)
	c := loadCase(t, "healthy-3m2w")
	agent := c.service("agent")
	template := c.tasksOf(agent)[0]
	r := report.NewReplacements()
	n := 0
	step := func(what string, want uint64) {
		t.Helper()
		snap := c.snapshot()
		snap.ReadAt = at.Add(time.Duration(n) * time.Second)
		n++
		checkReplacements(t, what, replacementsAfter(t, r, snap), map[string]uint64{"agent": want})
	}
	removeNode := func(host string) {
		id := c.node(host)["ID"]
		var nodes, tasks []map[string]any
		for _, nd := range c.nodes {
			if nd["ID"] != id {
				nodes = append(nodes, nd)
			}
		}
		for _, task := range c.tasks {
			if task["NodeID"] != id {
				tasks = append(tasks, task)
			}
		}
		c.nodes, c.tasks = nodes, tasks
	}
	addNode := func(host string) {
		nd := c.clone(c.node("swx-w1"))
		nd["ID"] = c.newID()
		obj(nd, "Description")["Hostname"] = host
		c.nodes = append(c.nodes, nd)
		c.addTask(template, agent, nd, "running", "running")
	}
	step("first read", 0)
	removeNode("swx-w2")
	addNode("swx-w3")
	step("swx-w2 gone, swx-w3 joined", 0)
	addNode("swx-w4") // may take swx-w2's place
	step("swx-w4 joined", 0)
	step("nothing changed", 0)
	for i, task := range c.tasks {
		if task["NodeID"] == c.node("swx-w4")["ID"] {
			nt := c.clone(task)
			nt["ID"] = c.newID()
			c.tasks[i] = nt
		}
	}
	step("the task on swx-w4 replaced", 1)
}
