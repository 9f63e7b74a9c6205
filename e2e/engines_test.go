package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// Tests of what differs between the engines: the API versions each serves
// and a swarm of both (an upgrade under way). The scenarios that run on
// each engine (swarmtest.OnEachEngine) are in the files of their own.

// On each engine the exporter negotiates the daemon's API version and logs
// it with the engine's version; a DOCKER_API_VERSION outside the daemon's
// range (above its version; on Docker 29 also below a minimum raised with
// DOCKER_MIN_API_VERSION, as Docker 29.0 shipped) makes docker_swarm_up 0
// and one log line that says which setting to change.
func TestEngineAPIVersions(t *testing.T) {
	swarmtest.OnEachEngine(t, func(t *testing.T, eng swarmtest.Engine) {
		s := swarmtest.StartForTest(t, swarmtest.Options{Engine: eng, Managers: 1, NoWorkloadImage: true})
		m1 := s.Node("m1")
		api := m1.APIVersion()
		e := StartExporter(t, m1.Host())
		e.WaitFor(t, time.Minute, "the swarm read", func(m Metrics) bool { return m.Is(1, "docker_swarm_up") })
		engineLogged(t, e, "reading the swarm", eng, api)

		t.Run("DOCKER_API_VERSION above the daemon's", func(t *testing.T) {
			pinned := startPinnedExporter(t, m1, "1.56")
			faultUnreadable(t, pinned, "api_version", "DOCKER_API_VERSION=1.56", "newer than the daemon's API version "+api, "or older")
		})

		if eng.Name == swarmtest.EngineDebian {
			return // 20.10 has no DOCKER_MIN_API_VERSION
		}
		t.Run("DOCKER_API_VERSION below the daemon's minimum", func(t *testing.T) {
			// The daemon goes away (the exporter sees it), and comes back
			// with a raised minimum.
			faultMust(t, s.Kill(m1))
			e.WaitFor(t, time.Minute, "the daemon unreachable", func(m Metrics) bool { return m.Is(0, "docker_swarm_up") })
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			faultMust(t, s.RestartEnv(ctx, m1, "DOCKER_MIN_API_VERSION=1.44"))
			faultMust(t, s.WaitLocalState(m1, "active", time.Minute))
			// Negotiated, the exporter reads on at the daemon's version.
			e.WaitFor(t, time.Minute, "the swarm read again after the restart", func(m Metrics) bool { return m.Is(1, "docker_swarm_up") })
			engineLogged(t, e, "reading the swarm again", eng, api)
			// Pinned to 20.10's version, it is refused.
			pinned := startPinnedExporter(t, m1, swarmtest.APIVersion)
			faultUnreadable(t, pinned, "api_version", "DOCKER_API_VERSION="+swarmtest.APIVersion, "minimum API version 1.44", "1.44 or newer")
		})
	})
}

// engineLogged checks that the exporter logged a line with msg that names
// the engine's version and the API version.
func engineLogged(t *testing.T, e *Exporter, msg string, eng swarmtest.Engine, api string) {
	t.Helper()
	lines := faultAwaitLogLines(e, `msg="`+msg+`"`)
	if len(lines) == 0 {
		t.Fatalf("no %q line:\n%s", msg, e.Logs())
	}
	last := lines[len(lines)-1]
	if !strings.Contains(last, "engine_version="+eng.Version+" ") || !strings.Contains(last, "api_version="+api+" ") {
		t.Errorf("the line does not say engine_version=%s api_version=%s: %s", eng.Version, api, last)
	}
}

// startPinnedExporter starts the exporter against n through the filtering
// proxy with DOCKER_API_VERSION=version.
func startPinnedExporter(t *testing.T, n *swarmtest.Node, version string) *Exporter {
	t.Helper()
	e := &Exporter{}
	e.Proxy = StartProxy(t, n.Host())
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_") {
			env = append(env, kv)
		}
	}
	return startExporter(t, e, []string{"--docker.host=" + e.Proxy.Host}, append(env, "DOCKER_API_VERSION="+version))
}

// Swarms of both engines, as an upgrade goes through them: workers of one
// version under managers of the other, and managers of both. Each runs a
// replicated, a global service and a job on every node, and the exporter
// reads it OK with each node's engine version. With managers of both, the
// 20.10 leader is killed: a Docker 29 manager takes over, the exporter on it
// says WARNING, and OK again once the old leader is back as a follower.
func TestMixedEngines(t *testing.T) {
	if os.Getenv(swarmtest.EngineEnv) != "" {
		t.Skipf("%s names one engine; mixed swarms need both", swarmtest.EngineEnv)
	}
	swarmtest.RequireSwarmTest(t)
	old := swarmtest.DebianEngine()
	cur, err := swarmtest.CurrentEngine()
	faultMust(t, err)
	for _, mix := range []struct {
		name    string
		engine  swarmtest.Engine
		others  map[string]swarmtest.Engine
		reader  string
		killOld bool
	}{
		{name: "managers 20.10, workers 29", engine: old,
			others: map[string]swarmtest.Engine{"w1": cur, "w2": cur}, reader: "m1"},
		{name: "managers 29, workers 20.10", engine: cur,
			others: map[string]swarmtest.Engine{"w1": old, "w2": old}, reader: "m1"},
		{name: "managers of both", engine: cur,
			others: map[string]swarmtest.Engine{"m1": old, "w1": old}, reader: "m2", killOld: true},
	} {
		t.Run(mix.name, func(t *testing.T) {
			s := swarmtest.StartForTest(t, swarmtest.Options{Engine: mix.engine, NodeEngines: mix.others})
			for _, args := range [][]string{
				{"--name", "web", "--replicas", "4", "--restart-delay", "1s", swarmtest.WorkloadImage},
				{"--name", "agent", "--mode", "global", swarmtest.WorkloadImage},
				{"--name", "batch", "--mode", "global-job", swarmtest.WorkloadImage, "exit", "0", "1"},
			} {
				if _, err := s.CreateService(args...); err != nil {
					t.Fatal(err)
				}
			}
			e := StartExporter(t, s.Node(mix.reader).Host())
			m := e.WaitFor(t, 90*time.Second, "cluster and services OK", func(m Metrics) bool {
				return m.Is(1, "docker_swarm_status", "status", "ok") &&
					m.Is(4, "docker_swarm_service_replicas_running", "service_name", "web") &&
					m.Is(5, "docker_swarm_service_replicas_running", "service_name", "agent") &&
					m.Is(5, "docker_swarm_service_tasks_completed", "service_name", "batch")
			})
			for _, n := range s.Nodes() {
				if !m.Is(1, "docker_swarm_node_info", "hostname", n.Hostname, "engine_version", n.Engine().Version) {
					t.Errorf("%s runs %s, the exporter does not say so:\n%s", n, n.Engine().Version, m.Summary())
				}
			}
			tasks, err := s.Tasks("agent")
			faultMust(t, err)
			t.Logf("agent tasks: %v", faultTaskCounts(s, tasks))
			if !mix.killOld {
				return
			}
			leader, err := s.Leader()
			faultMust(t, err)
			if leader.Engine().Name != swarmtest.EngineDebian {
				t.Fatalf("the leader %s runs %s; the test kills a 20.10 leader", leader, leader.Engine().Version)
			}
			faultMust(t, s.Kill(leader))
			killedAt := time.Now()
			m = e.WaitFor(t, 90*time.Second, "WARNING with a Docker 29 leader", func(m Metrics) bool {
				return m.Is(1, "docker_swarm_cluster_status", "status", "warning") &&
					m.Is(1, "docker_swarm_node_manager_reachability", "hostname", leader.Hostname, "reachability", "unreachable") &&
					m.Is(0, "docker_swarm_node_leader", "hostname", leader.Hostname) &&
					m.Is(4, "docker_swarm_service_replicas_running", "service_name", "web")
			})
			newLeader, err := s.Leader()
			faultMust(t, err)
			t.Logf("%s (%s) leads %v after the kill", newLeader, newLeader.Engine().Version, time.Since(killedAt).Round(time.Millisecond))
			if newLeader.Engine().Name == swarmtest.EngineDebian || !m.Is(1, "docker_swarm_node_leader", "hostname", newLeader.Hostname) {
				t.Errorf("the new leader %s runs %s; the exporter says:\n%s", newLeader, newLeader.Engine().Version, m.Summary())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			faultMust(t, s.Restart(ctx, leader))
			e.WaitFor(t, 2*time.Minute, "OK with the 20.10 manager back as a follower", func(m Metrics) bool {
				return m.Is(1, "docker_swarm_status", "status", "ok") &&
					m.Is(3, "docker_swarm_managers_reachable") &&
					m.Is(0, "docker_swarm_node_leader", "hostname", leader.Hostname) &&
					m.Is(5, "docker_swarm_service_replicas_running", "service_name", "agent")
			})
		})
	}
}
