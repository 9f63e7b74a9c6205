package e2e

import (
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// Topologies below the default thresholds (3
// managers, 2 workers). One manager and one worker is WARNING (not fault
// tolerant, but working); three managers without a worker are KO by default
// (no worker to run tasks) and OK with --health.min-workers=0.
func TestTopologyThresholds(t *testing.T) {
	t.Run("7 one manager, one worker: WARNING", func(t *testing.T) {
		s := swarmtest.StartForTest(t, swarmtest.Options{Managers: 1, Workers: 1, NoWorkloadImage: true})
		e := StartExporter(t, s.Node("m1").Host())
		m := e.WaitFor(t, 60*time.Second, "cluster WARNING", func(m Metrics) bool {
			return m.Is(1, "docker_swarm_up") && m.Is(1, "docker_swarm_cluster_status", "status", "warning")
		})
		faultExpect(t, m, []faultSeries{
			{1, "docker_swarm_nodes", []string{"role", "manager", "state", "ready"}},
			{1, "docker_swarm_nodes", []string{"role", "worker", "state", "ready"}},
			{1, "docker_swarm_managers_reachable", nil},
			{1, "docker_swarm_managers_quorum", nil},
			{1, "docker_swarm_cluster_condition", []string{"condition", "below_min_managers"}},
			{1, "docker_swarm_cluster_condition", []string{"condition", "below_min_workers"}},
			{0, "docker_swarm_cluster_condition", []string{"condition", "quorum_lost"}},
			{0, "docker_swarm_cluster_condition", []string{"condition", "no_ready_worker"}},
			{0, "docker_swarm_cluster_condition", []string{"condition", "node_not_ready"}},
			{1, "docker_swarm_status", []string{"status", "warning"}},
		})
	})

	t.Run("7 three managers, no worker: KO, OK with --health.min-workers=0", func(t *testing.T) {
		s := swarmtest.StartForTest(t, swarmtest.Options{Managers: 3, Workers: 0, NoWorkloadImage: true})
		m1 := s.Node("m1")
		e := StartExporter(t, m1.Host())
		eNoWorkers := StartExporter(t, m1.Host(), "--health.min-workers=0")
		m := e.WaitFor(t, 60*time.Second, "cluster KO without workers", func(m Metrics) bool {
			return m.Is(1, "docker_swarm_up") && m.Is(1, "docker_swarm_cluster_status", "status", "ko")
		})
		faultExpect(t, m, []faultSeries{
			{3, "docker_swarm_nodes", []string{"role", "manager", "state", "ready"}},
			{0, "docker_swarm_nodes_total", []string{"role", "worker"}},
			{3, "docker_swarm_managers_reachable", nil},
			{1, "docker_swarm_cluster_condition", []string{"condition", "no_ready_worker"}},
			{1, "docker_swarm_cluster_condition", []string{"condition", "below_min_workers"}},
			{0, "docker_swarm_cluster_condition", []string{"condition", "quorum_lost"}},
			{0, "docker_swarm_cluster_condition", []string{"condition", "below_min_managers"}},
		})
		m = eNoWorkers.WaitFor(t, 60*time.Second, "cluster OK with --health.min-workers=0", func(m Metrics) bool {
			return m.Is(1, "docker_swarm_up") && m.Is(1, "docker_swarm_cluster_status", "status", "ok")
		})
		faultExpect(t, m, []faultSeries{
			{0, "docker_swarm_cluster_condition", []string{"condition", "no_ready_worker"}},
			{0, "docker_swarm_cluster_condition", []string{"condition", "below_min_workers"}},
			{1, "docker_swarm_status", []string{"status", "ok"}},
		})
	})
}
