package e2e

import (
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// Scenario 1: a healthy 3-manager, 2-worker swarm with a replicated service
// of 6 replicas, a global service and a replicated job.
func TestHealthySwarm(t *testing.T) { swarmtest.OnEachEngine(t, testHealthySwarm) }

func testHealthySwarm(t *testing.T, eng swarmtest.Engine) {
	s := swarmtest.StartForTest(t, swarmtest.Options{Engine: eng})
	img := swarmtest.WorkloadImage
	for _, args := range [][]string{
		{"--name", "web", "--replicas", "6", "--label", "com.docker.stack.namespace=shop", img},
		{"--name", "agent", "--mode", "global", img},
		{"--name", "batch", "--mode", "replicated-job", "--replicas", "3", "--restart-condition", "none", img, "exit", "0", "1"},
	} {
		if _, err := s.CreateService(args...); err != nil {
			t.Fatal(err)
		}
	}
	e := StartExporter(t, s.Managers()[0].Host())
	m := e.WaitFor(t, 90*time.Second, "cluster and services OK", func(m Metrics) bool {
		return m.Is(1, "docker_swarm_up") &&
			m.Is(1, "docker_swarm_cluster_status", "status", "ok") &&
			m.Is(1, "docker_swarm_services_status", "status", "ok") &&
			m.Is(1, "docker_swarm_status", "status", "ok") &&
			m.Is(6, "docker_swarm_service_replicas_running", "service_name", "web") &&
			m.Is(5, "docker_swarm_service_replicas_running", "service_name", "agent") &&
			m.Is(3, "docker_swarm_service_tasks_completed", "service_name", "batch")
	})
	checks := []struct {
		want   float64
		name   string
		labels []string
	}{
		{3, "docker_swarm_nodes", []string{"role", "manager", "state", "ready"}},
		{2, "docker_swarm_nodes", []string{"role", "worker", "state", "ready"}},
		{0, "docker_swarm_nodes", []string{"role", "worker", "state", "down"}},
		{3, "docker_swarm_nodes_total", []string{"role", "manager"}},
		{2, "docker_swarm_nodes_total", []string{"role", "worker"}},
		{3, "docker_swarm_managers_reachable", nil},
		{2, "docker_swarm_managers_quorum", nil},
		{6, "docker_swarm_service_replicas_desired", []string{"service_name", "web", "stack", "shop", "mode", "replicated"}},
		{5, "docker_swarm_service_replicas_desired", []string{"service_name", "agent", "mode", "global"}},
		{3, "docker_swarm_service_replicas_desired", []string{"service_name", "batch", "mode", "replicated-job"}},
		{1, "docker_swarm_local_node_leader", nil},
	}
	for _, c := range checks {
		if !m.Is(c.want, c.name, c.labels...) {
			v, ok := m.Value(c.name, c.labels...)
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if m.Has("docker_swarm_service_status", "service_name", "batch") {
		t.Error("a job has a service status")
	}
	for _, n := range s.Nodes() {
		if got := m.OneHot("docker_swarm_node_state", "state", "hostname", n.Hostname); got != "ready" {
			t.Errorf("node %s state %q", n.Hostname, got)
		}
	}
	// One read per scrape, whatever the swarm: 1 ping + 4 GETs.
	before := e.Proxy.Requests()
	if _, _, err := e.Scrape(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	after := e.Proxy.Requests()
	total := 0
	for k, v := range after {
		total += v - before[k]
	}
	if total > 6 { // the ping may fall back from HEAD to GET
		t.Errorf("one scrape made %d requests: %v → %v", total, before, after)
	}
}
