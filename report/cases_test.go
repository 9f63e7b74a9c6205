package report_test

// Cases the captured scenarios do not show, built from their JSON: the
// answers of testdata/docker/<scenario>/ with objects edited or added as
// Docker writes them, read by the exporter's own reader from a fake Docker
// API. The
// end-to-end suite (e2e/semantics_test.go) produces the same cases on real
// swarms where the harness can.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/health"
	"github.com/swarm-exporter/swarm_exporter/internal/fakedocker"
	"github.com/swarm-exporter/swarm_exporter/internal/testkit"
	"github.com/swarm-exporter/swarm_exporter/report"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

// jsonCase holds a scenario's answers as JSON objects, to be edited.
type jsonCase struct {
	t                      *testing.T
	scenario               string
	info                   map[string]any
	nodes, services, tasks []map[string]any
	added                  int
}

func loadCase(t *testing.T, scenario string) *jsonCase {
	t.Helper()
	c := &jsonCase{t: t, scenario: scenario}
	for ep, dst := range map[string]any{"info": &c.info, "nodes": &c.nodes, "services": &c.services, "tasks": &c.tasks} {
		b, err := os.ReadFile(filepath.Join(testkit.ScenarioDir(scenario), ep+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatalf("%s/%s: %v", scenario, ep, err)
		}
	}
	return c
}

// obj returns the object at a path of member names, which must exist.
func obj(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		m = m[p].(map[string]any)
	}
	return m
}

func (c *jsonCase) node(hostname string) map[string]any {
	for _, n := range c.nodes {
		if obj(n, "Description")["Hostname"] == hostname {
			return n
		}
	}
	c.t.Fatalf("no node %s", hostname)
	return nil
}

func (c *jsonCase) service(name string) map[string]any {
	for _, s := range c.services {
		if obj(s, "Spec")["Name"] == name {
			return s
		}
	}
	c.t.Fatalf("no service %s", name)
	return nil
}

func (c *jsonCase) tasksOf(service map[string]any) []map[string]any {
	var out []map[string]any
	for _, t := range c.tasks {
		if t["ServiceID"] == service["ID"] {
			out = append(out, t)
		}
	}
	return out
}

// clone deep-copies an object.
func (c *jsonCase) clone(m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		c.t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		c.t.Fatal(err)
	}
	return out
}

// newID returns an ID of Docker's length that no captured object has.
func (c *jsonCase) newID() string {
	c.added++
	return fmt.Sprintf("added%020d", c.added)
}

// addService adds a copy of a service under a new name and ID, without tasks.
func (c *jsonCase) addService(from map[string]any, name string) map[string]any {
	s := c.clone(from)
	s["ID"] = c.newID()
	obj(s, "Spec")["Name"] = name
	c.services = append(c.services, s)
	return s
}

// addTask adds a copy of a task of the service on the node, with a new ID.
func (c *jsonCase) addTask(from, service, node map[string]any, desired, state string) map[string]any {
	t := c.clone(from)
	t["ID"] = c.newID()
	t["ServiceID"] = service["ID"]
	t["NodeID"] = node["ID"]
	t["DesiredState"] = desired
	obj(t, "Status")["State"] = state
	c.tasks = append(c.tasks, t)
	return t
}

// snapshot reads the edited answers through the exporter's reader, from a
// fake Docker API that serves them.
func (c *jsonCase) snapshot() *swarm.Snapshot {
	c.t.Helper()
	f := testkit.Fixture(c.t, c.scenario)
	for ep, v := range map[string]any{"info": c.info, "nodes": c.nodes, "services": c.services, "tasks": c.tasks} {
		b, err := json.Marshal(v)
		if err != nil {
			c.t.Fatal(err)
		}
		f.Responses[ep] = fakedocker.Response{Status: http.StatusOK, Body: b}
	}
	srv := fakedocker.New(f)
	defer srv.Close()
	r, err := swarm.NewReader(swarm.Config{Host: srv.Host, Timeout: 10 * time.Second})
	if err != nil {
		c.t.Fatal(err)
	}
	defer r.Close()
	snap := r.Read(context.Background())
	if snap.Err != nil {
		c.t.Fatal(snap.Err)
	}
	return snap
}

type counts struct {
	desired, running, completed int
	status                      health.Status
}

func checkCounts(t *testing.T, rep *report.Report, want map[string]counts) {
	t.Helper()
	for name, w := range want {
		var s *report.Service
		for i := range rep.Services {
			if rep.Services[i].Name == name {
				s = &rep.Services[i]
			}
		}
		if s == nil {
			t.Errorf("no service %s in the report", name)
			continue
		}
		got := counts{s.Desired, s.Running, s.Completed, s.Status}
		if got != w {
			t.Errorf("%s: desired %d running %d completed %d %v, want desired %d running %d completed %d %v",
				name, got.desired, got.running, got.completed, got.status, w.desired, w.running, w.completed, w.status)
		}
	}
}

// A paused node gets no new task of a global service: swarmkit's global
// orchestrator skips paused nodes when it adds tasks, and shuts down rather
// than restarts a task that fails there. A global service created after the
// pause therefore wants no task on it, while one that already had a task
// there keeps it and wants it.
func TestPausedNodeAndGlobalServiceCreatedAfter(t *testing.T) {
	c := loadCase(t, "drained-paused") // swx-w1 drained, swx-w2 paused and running a task of agent
	agent := c.service("agent")
	late := c.addService(agent, "late")
	template := c.tasksOf(agent)[0]
	for _, host := range []string{"swx-m1", "swx-m2", "swx-m3"} {
		c.addTask(template, late, c.node(host), "running", "running")
	}
	rep := report.Build(c.snapshot(), report.DefaultOptions())
	checkCounts(t, rep, map[string]counts{
		"agent": {desired: 4, running: 4, status: health.OK}, // the managers and the paused swx-w2
		"late":  {desired: 3, running: 3, status: health.OK}, // the managers only
	})
	if rep.ServicesStatus != health.OK {
		t.Errorf("services status %v, want OK", rep.ServicesStatus)
	}
}

// A node whose platform matches none of a global service's platforms still
// gets a task: swarmkit's global orchestrator checks the constraints only,
// and the scheduler's platform filter leaves the task pending ("no suitable
// node (unsupported platform on 1 node)"). The service is short of that
// task: WARNING, not OK.
func TestPlatformMismatchLeavesATaskPending(t *testing.T) {
	c := loadCase(t, "healthy-3m2w")
	arm := c.node("swx-w2")
	obj(arm, "Description", "Platform")["Architecture"] = "aarch64"
	agent := c.service("agent") // global, running on all 5 nodes
	obj(agent, "Spec", "TaskTemplate")["Placement"] = map[string]any{
		"Platforms": []any{map[string]any{"Architecture": "amd64", "OS": "linux"}},
	}
	for _, task := range c.tasksOf(agent) {
		if task["NodeID"] == arm["ID"] {
			status := obj(task, "Status")
			status["State"] = "pending"
			status["Message"] = "pending task scheduling"
			status["Err"] = "no suitable node (unsupported platform on 1 node)"
			delete(status, "ContainerStatus")
		}
	}
	rep := report.Build(c.snapshot(), report.DefaultOptions())
	checkCounts(t, rep, map[string]counts{
		"agent": {desired: 5, running: 4, status: health.Warning},
	})
	for i := range rep.Services {
		if s := &rep.Services[i]; s.Name == "agent" && s.Tasks[swarm.TaskPending] != 1 {
			t.Errorf("agent: %d pending tasks, want 1", s.Tasks[swarm.TaskPending])
		}
	}
}

// After a job is run again (any update of a job, `docker service update
// --force` included, starts a new JobIteration), the completed tasks of the
// earlier run stay in the task list with desired state complete; only
// those of the current run count, as in Docker's own ServiceStatus.
func TestJobRerunCountsTheCurrentRunOnly(t *testing.T) {
	c := loadCase(t, "healthy-3m2w")
	batch := c.service("batch") // a replicated job of 3 completions, all complete, JobIteration {}
	obj(batch, "JobStatus", "JobIteration")["Index"] = 1
	old := c.tasksOf(batch)
	if len(old) != 3 {
		t.Fatalf("batch has %d tasks, want 3", len(old))
	}
	for i, o := range old {
		// The new run: a new task in each slot, two completed, one running.
		state := "complete"
		if i == 2 {
			state = "running"
		}
		nt := c.addTask(o, batch, c.node("swx-m1"), "complete", state)
		nt["JobIteration"] = map[string]any{"Index": 1}
	}
	// A job's task of no run at all is not counted either, as Docker does.
	c.addTask(old[0], batch, c.node("swx-m1"), "complete", "complete")["JobIteration"] = nil
	rep := report.Build(c.snapshot(), report.DefaultOptions())
	checkCounts(t, rep, map[string]counts{
		"batch": {desired: 3, running: 1, completed: 2},
	})
	for i := range rep.Services {
		if s := &rep.Services[i]; s.Name == "batch" && (s.Tasks[swarm.TaskComplete] != 2 || s.Tasks[swarm.TaskRunning] != 1) {
			t.Errorf("batch tasks by state: %d complete, %d running; want 2 and 1", s.Tasks[swarm.TaskComplete], s.Tasks[swarm.TaskRunning])
		}
	}
}

// A node in state disconnected is, like unknown, a node looking for the
// leader's dispatcher: Docker's orchestrators keep its tasks (only down
// nodes are invalid), so its tasks count as running and the node counts as
// alive. Two disconnected workers make the cluster WARNING, never KO.
func TestDisconnectedNodesAreAliveAndKeepTheirTasks(t *testing.T) {
	c := loadCase(t, "healthy-3m2w")
	for _, host := range []string{"swx-w1", "swx-w2"} {
		st := obj(c.node(host), "Status")
		st["State"] = "disconnected"
		st["Message"] = "node is currently trying to find new manager"
	}
	rep := report.Build(c.snapshot(), report.DefaultOptions())
	cl := &rep.Cluster
	if cl.Status != health.Warning || !cl.Conditions.Has(health.NodeNotReady) || cl.Conditions.Has(health.NoReadyWorker) {
		t.Errorf("cluster %v %v, want WARNING with node_not_ready and not no_ready_worker", cl.Status, cl.Conditions.Active())
	}
	if got := cl.Workers.ByState[swarm.NodeDisconnected]; got != 2 {
		t.Errorf("%d disconnected workers, want 2", got)
	}
	checkCounts(t, rep, map[string]counts{
		"web":   {desired: 6, running: 6, status: health.OK},
		"agent": {desired: 5, running: 5, status: health.OK},
	})
}
