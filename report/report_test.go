package report_test

import (
	"context"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/health"
	"github.com/swarm-exporter/swarm_exporter/internal/testkit"
	"github.com/swarm-exporter/swarm_exporter/report"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

// read reads a captured scenario through the real reader and a fake API.
func read(t *testing.T, scenario string) *swarm.Snapshot {
	t.Helper()
	srv := testkit.FakeDocker(t, scenario)
	r, err := swarm.NewReader(swarm.Config{Host: srv.Host, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return r.Read(context.Background())
}

type svcWant struct {
	desired, running int
	status           health.Status
}

func checkServices(t *testing.T, rep *report.Report, want map[string]svcWant) {
	t.Helper()
	seen := 0
	for i := range rep.Services {
		s := &rep.Services[i]
		w, ok := want[s.Name]
		if !ok {
			continue
		}
		seen++
		if s.Desired != w.desired || s.Running != w.running {
			t.Errorf("%s: %d/%d running, want %d/%d", s.Name, s.Running, s.Desired, w.running, w.desired)
		}
		if s.HasStatus() && s.Status != w.status {
			t.Errorf("%s: status %v, want %v", s.Name, s.Status, w.status)
		}
	}
	if seen != len(want) {
		t.Errorf("found %d of the %d expected services", seen, len(want))
	}
}

func service(t *testing.T, rep *report.Report, name string) *report.Service {
	t.Helper()
	for i := range rep.Services {
		if rep.Services[i].Name == name {
			return &rep.Services[i]
		}
	}
	t.Fatalf("service %s not in the report", name)
	return nil
}

func TestHealthy(t *testing.T) {
	snap := read(t, "healthy-3m2w")
	rep := report.Build(snap, report.DefaultOptions())
	c := rep.Cluster
	if !rep.Up || rep.NoLeader || c.Status != health.OK || c.Conditions != 0 {
		t.Fatalf("cluster: up %v, no leader %v, %v %v", rep.Up, rep.NoLeader, c.Status, c.Conditions.Active())
	}
	if c.Managers.Total != 3 || c.Managers.Ready() != 3 || c.Workers.Total != 2 || c.Workers.Ready() != 2 || c.ReachableManagers != 3 || c.Quorum != 2 {
		t.Errorf("counts: %+v", c)
	}
	if !rep.LocalLeader {
		t.Error("the fixture was read from the leader")
	}
	checkServices(t, rep, map[string]svcWant{
		"web": {6, 6, health.OK}, "agent": {5, 5, health.OK}, "pinned": {2, 2, health.OK},
		"mgr-global": {3, 3, health.OK}, "updating": {2, 2, health.OK},
		// The original library: a service with no running container is KO.
		"zero": {0, 0, health.KO},
	})
	batch := service(t, rep, "batch")
	if batch.HasStatus() || batch.Desired != 3 || batch.Completed != 3 || batch.Running != 0 || batch.Tasks[swarm.TaskComplete] != 3 {
		t.Errorf("batch job: %+v", batch)
	}
	if web := service(t, rep, "web"); web.Tasks[swarm.TaskRunning] != 6 || web.Stack != "shop" {
		t.Errorf("web tasks by state: %v", web.Tasks)
	}
	if rep.ServicesStatus != health.KO || rep.Overall != health.KO {
		t.Errorf("services %v overall %v, want KO (zero runs nothing)", rep.ServicesStatus, rep.Overall)
	}

	// --health.allow-zero-replicas makes the scaled-to-zero service OK.
	opts := report.DefaultOptions()
	opts.Policy.AllowZeroReplicas = true
	rep = report.Build(snap, opts)
	if s := service(t, rep, "zero"); s.Status != health.OK || rep.ServicesStatus != health.OK || rep.Overall != health.OK {
		t.Errorf("with zero replicas allowed: zero %v, services %v, overall %v", s.Status, rep.ServicesStatus, rep.Overall)
	}
}

func TestWorkerDown(t *testing.T) {
	rep := report.Build(read(t, "worker-down"), report.DefaultOptions())
	c := rep.Cluster
	if c.Status != health.Warning || !c.Conditions.Has(health.NodeNotReady) || c.Workers.ByState[swarm.NodeDown] != 1 || c.Workers.Ready() != 1 {
		t.Errorf("cluster %v %v, workers %+v", c.Status, c.Conditions.Active(), c.Workers)
	}
	checkServices(t, rep, map[string]svcWant{
		// The down worker is not eligible: 4 nodes left for the global service.
		"agent":  {4, 4, health.OK},
		"pinned": {2, 1, health.Warning},
		"web":    {6, 5, health.Warning},
	})
	// Docker's own count still includes the task on the down node.
	if agent := service(t, rep, "agent"); agent.Reported.Running != 5 {
		t.Errorf("Docker reported %d running agent tasks; the fixture says 5", agent.Reported.Running)
	}
}

func TestManagerDown(t *testing.T) {
	rep := report.Build(read(t, "manager-down"), report.DefaultOptions())
	c := rep.Cluster
	if c.Status != health.Warning || c.ReachableManagers != 2 || c.Quorum != 2 || c.Managers.ByState[swarm.NodeDown] != 1 {
		t.Errorf("cluster %v, reachable %d, quorum %d, managers %+v", c.Status, c.ReachableManagers, c.Quorum, c.Managers)
	}
	checkServices(t, rep, map[string]svcWant{
		"mgr-global": {2, 2, health.OK},
		"agent":      {4, 4, health.OK},
		"web":        {6, 4, health.Warning},
	})
	if s := service(t, rep, "mgr-global"); s.Reported.Running != 3 {
		t.Errorf("Docker reported %d running mgr-global tasks; the fixture says 3", s.Reported.Running)
	}
}

func TestQuorumLost(t *testing.T) {
	rep := report.Build(read(t, "quorum-lost"), report.DefaultOptions())
	c := rep.Cluster
	if !rep.Up || !rep.NoLeader || c.Status != health.KO || !c.Conditions.Has(health.QuorumLost) {
		t.Fatalf("up %v, no leader %v, cluster %v %v", rep.Up, rep.NoLeader, c.Status, c.Conditions.Active())
	}
	if c.StatesKnown || c.WorkersKnown || c.Managers.Total != 3 || c.Quorum != 2 || rep.ServicesKnown || len(rep.Nodes) != 0 || rep.Overall != health.KO {
		t.Errorf("report: %+v", rep)
	}
}

func TestMissingImage(t *testing.T) {
	rep := report.Build(read(t, "missing-image"), report.DefaultOptions())
	checkServices(t, rep, map[string]svcWant{
		// Docker says 4/4: it leaves out the node whose task is rejected.
		"partial": {5, 4, health.Warning},
		"ghost":   {2, 0, health.KO},
	})
	if s := service(t, rep, "partial"); s.Reported.Desired != 4 || s.Reported.Running != 4 {
		t.Errorf("Docker's own counts for partial: %+v", s.Reported)
	}
	if s := service(t, rep, "ghost"); s.Tasks[swarm.TaskRejected] != 2 {
		t.Errorf("ghost tasks by state: %v, want 2 rejected", s.Tasks)
	}
}

func TestDrainedAndPaused(t *testing.T) {
	rep := report.Build(read(t, "drained-paused"), report.DefaultOptions())
	if rep.Cluster.Status != health.OK {
		t.Errorf("drained and paused nodes are ready: cluster %v %v", rep.Cluster.Status, rep.Cluster.Conditions.Active())
	}
	checkServices(t, rep, map[string]svcWant{
		// Not on the drained node; the paused node keeps its task.
		"agent": {4, 4, health.OK},
		"web":   {8, 8, health.OK},
	})
}

func TestUnreadable(t *testing.T) {
	for _, sc := range []string{"worker-node", "no-swarm", "locked"} {
		rep := report.Build(read(t, sc), report.DefaultOptions())
		if rep.Up || rep.Err == nil || rep.Local == nil || rep.ServicesKnown || rep.Cluster.Managers.Total != 0 {
			t.Errorf("%s: %+v", sc, rep)
		}
	}
}
