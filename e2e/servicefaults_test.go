package e2e

import (
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// Scenarios 8, 9 and 6 of issue #3 on one healthy 3-manager, 2-worker
// swarm: services whose image is missing, a service scaled to zero, then a
// drained and a paused node. The exporters read through m1.
func TestServiceFaults(t *testing.T) { swarmtest.OnEachEngine(t, testServiceFaults) }

func testServiceFaults(t *testing.T, eng swarmtest.Engine) {
	s := swarmtest.StartForTest(t, swarmtest.Options{Engine: eng})
	m1 := s.Node("m1")
	e := StartExporter(t, m1.Host())
	eZero := StartExporter(t, m1.Host(), "--health.allow-zero-replicas")

	t.Run("8 missing image", func(t *testing.T) { faultMissingImage(t, s, e) })
	t.Run("9 scaled to zero", func(t *testing.T) { faultScaledToZero(t, s, e, eZero) })
	t.Run("6 drain and pause", func(t *testing.T) { faultDrainPause(t, s, e) })
}

// Scenario 8: a global service whose image is missing on one node is
// WARNING, its desired count being every eligible node, while Docker says
// it runs fully; a service whose image exists nowhere is KO and its tasks
// show as rejected.
func faultMissingImage(t *testing.T, s *swarmtest.Swarm, e *Exporter) {
	m1, w2 := s.Node("m1"), s.Node("w2")
	faultMust(t, s.RemoveImage(w2, swarmtest.WorkloadImage))
	for _, args := range [][]string{
		{"--name", "partial", "--mode", "global", swarmtest.WorkloadImage},
		{"--name", "ghost", "--replicas", "2", "nosuchimage:1"},
	} {
		if _, err := s.CreateService(args...); err != nil {
			t.Fatal(err)
		}
	}
	var docker faultDockerService
	faultPoll(t, e, faultPollOpts{What: "partial WARNING (4 of 5) while Docker says 4 of 4, ghost KO with rejected tasks", Every: 500 * time.Millisecond, Timeout: 90 * time.Second},
		func(sc faultScrape) bool {
			m := sc.M
			if sc.Err != nil || !(m.Is(5, "docker_swarm_service_replicas_desired", "service_name", "partial") &&
				m.Is(4, "docker_swarm_service_replicas_running", "service_name", "partial") &&
				m.Is(1, "docker_swarm_service_status", "service_name", "partial", "status", "warning") &&
				m.Is(2, "docker_swarm_service_replicas_desired", "service_name", "ghost") &&
				m.Is(0, "docker_swarm_service_replicas_running", "service_name", "ghost") &&
				m.Is(1, "docker_swarm_service_status", "service_name", "ghost", "status", "ko") &&
				faultValue(m, "docker_swarm_service_tasks", "service_name", "ghost", "state", "rejected") >= 1) {
				return false
			}
			// Docker's view, read right after the scrape.
			services, err := faultDockerServices(m1)
			if err != nil {
				t.Logf("reading Docker's services: %v", err)
				return false
			}
			docker = services["partial"]
			st := docker.ServiceStatus
			return st.DesiredTasks == 4 && st.RunningTasks == 4
		})
	tasks, _ := s.Tasks("partial")
	t.Logf("partial: exporter 4 running of 5 desired (WARNING); Docker: RunningTasks %d of DesiredTasks %d; tasks %v",
		docker.ServiceStatus.RunningTasks, docker.ServiceStatus.DesiredTasks, faultTaskCounts(s, tasks))
	rejectedOnW2 := false
	for _, tk := range tasks {
		if tk.NodeID == w2.ID() && tk.State == "rejected" {
			rejectedOnW2 = true
		}
	}
	if !rejectedOnW2 {
		t.Errorf("no task of partial was rejected on %s: %v", w2.Name, faultTaskCounts(s, tasks))
	}

	// The cluster itself is fine; the services make the overall status KO.
	m, _, err := e.Scrape(10 * time.Second)
	faultMust(t, err)
	for _, c := range []struct {
		want   string
		family string
		labels []string
	}{
		{"ok", "docker_swarm_cluster_status", nil},
		{"ko", "docker_swarm_services_status", nil},
		{"ko", "docker_swarm_status", nil},
	} {
		if got := faultStatus(m, c.family, c.labels...); got != c.want {
			t.Errorf("%s = %q, want %q", c.family, got, c.want)
		}
	}

	faultMust(t, s.RemoveService("partial", "ghost"))
	tar, ok := s.ImageTarball(swarmtest.WorkloadImage)
	if !ok {
		t.Fatal("no tarball of the workload image")
	}
	faultMust(t, w2.LoadImage(tar))
	e.WaitFor(t, 30*time.Second, "the services gone", func(m Metrics) bool {
		return m.Is(1, "docker_swarm_status", "status", "ok") && !m.Has("docker_swarm_service_info")
	})
}

// Scenario 9: a service scaled to 0 is KO by default and OK with
// --health.allow-zero-replicas.
func faultScaledToZero(t *testing.T, s *swarmtest.Swarm, e, eZero *Exporter) {
	if _, err := s.CreateService("--name", "zero", "--replicas", "1", swarmtest.WorkloadImage); err != nil {
		t.Fatal(err)
	}
	for _, ex := range []*Exporter{e, eZero} {
		ex.WaitFor(t, 60*time.Second, "zero running 1 of 1, OK", func(m Metrics) bool {
			return m.Is(1, "docker_swarm_service_replicas_running", "service_name", "zero") &&
				m.Is(1, "docker_swarm_service_status", "service_name", "zero", "status", "ok")
		})
	}
	faultMust(t, s.Scale("zero", 0))
	m := e.WaitFor(t, 60*time.Second, "zero scaled to 0: KO by default", func(m Metrics) bool {
		return m.Is(0, "docker_swarm_service_replicas_desired", "service_name", "zero") &&
			m.Is(0, "docker_swarm_service_replicas_running", "service_name", "zero") &&
			m.Is(1, "docker_swarm_service_status", "service_name", "zero", "status", "ko")
	})
	if got := faultStatus(m, "docker_swarm_services_status"); got != "ko" {
		t.Errorf("services status %q with a service scaled to 0, want ko", got)
	}
	m = eZero.WaitFor(t, 30*time.Second, "zero scaled to 0: OK with --health.allow-zero-replicas", func(m Metrics) bool {
		return m.Is(0, "docker_swarm_service_replicas_desired", "service_name", "zero") &&
			m.Is(0, "docker_swarm_service_replicas_running", "service_name", "zero") &&
			m.Is(1, "docker_swarm_service_status", "service_name", "zero", "status", "ok")
	})
	if got := faultStatus(m, "docker_swarm_status"); got != "ok" {
		t.Errorf("overall status %q with --health.allow-zero-replicas, want ok:\n%s", got, m.Summary())
	}
	faultMust(t, s.RemoveService("zero"))
}

// Scenario 6: draining a worker keeps the cluster OK, shows the
// availability, and the replicated service is rescheduled and OK again
// within 60 s; pausing a node keeps global services OK (the paused node
// keeps its task).
func faultDrainPause(t *testing.T, s *swarmtest.Swarm, e *Exporter) {
	for _, args := range [][]string{
		{"--name", "web", "--replicas", "6", "--restart-delay", "1s", swarmtest.WorkloadImage},
		{"--name", "agent", "--mode", "global", swarmtest.WorkloadImage},
	} {
		if _, err := s.CreateService(args...); err != nil {
			t.Fatal(err)
		}
	}
	e.WaitFor(t, 90*time.Second, "web and agent OK", func(m Metrics) bool {
		return m.Is(1, "docker_swarm_status", "status", "ok") &&
			m.Is(6, "docker_swarm_service_replicas_running", "service_name", "web") &&
			m.Is(5, "docker_swarm_service_replicas_running", "service_name", "agent")
	})
	tasks, err := s.Tasks("web")
	faultMust(t, err)
	var drained *swarmtest.Node
	for _, w := range s.Workers() {
		for _, tk := range tasks {
			if tk.NodeID == w.ID() && tk.State == "running" && drained == nil {
				drained = w
			}
		}
	}
	if drained == nil {
		t.Fatalf("no worker runs a web task: %v", faultTaskCounts(s, tasks))
	}
	t.Logf("web before draining %s: %v", drained, faultTaskCounts(s, tasks))

	clusterStaysOK := func(sc faultScrape) {
		if sc.Err != nil {
			t.Errorf("scrape %d at %v: %v", sc.N, sc.At, sc.Err)
		} else if got := faultStatus(sc.M, "docker_swarm_cluster_status"); got != "ok" {
			t.Errorf("scrape %d at %v: cluster %q:\n%s", sc.N, sc.At, got, sc.M.Summary())
		}
	}
	faultMust(t, s.Drain(drained))
	drainedAt := time.Now()
	// moved is set once Docker has taken web off the drained node (no task
	// there is meant to run any more); only a scrape that starts after that
	// can show web whole again from its replacement tasks.
	moved := false
	var statuses []string
	faultPoll(t, e, faultPollOpts{What: "web rescheduled off the drained " + drained.Name + " and OK", Every: 250 * time.Millisecond, Timeout: 60 * time.Second},
		func(sc faultScrape) bool {
			clusterStaysOK(sc)
			m := sc.M
			st := faultStatus(m, "docker_swarm_service_status", "service_name", "web")
			if len(statuses) == 0 || statuses[len(statuses)-1] != st {
				statuses = append(statuses, st)
			}
			done := moved &&
				m.Is(1, "docker_swarm_node_availability", "hostname", drained.Hostname, "availability", "drain") &&
				m.Is(6, "docker_swarm_service_replicas_running", "service_name", "web") &&
				m.Is(1, "docker_swarm_service_status", "service_name", "web", "status", "ok") &&
				m.Is(4, "docker_swarm_service_replicas_desired", "service_name", "agent") &&
				m.Is(4, "docker_swarm_service_replicas_running", "service_name", "agent") &&
				m.Is(1, "docker_swarm_service_status", "service_name", "agent", "status", "ok")
			if !moved {
				if tasks, err := s.Tasks("web"); err == nil {
					moved = true
					for _, tk := range tasks {
						if tk.NodeID == drained.ID() && tk.DesiredState == "running" {
							moved = false
						}
					}
				}
			}
			return done
		})
	tasks, _ = s.Tasks("web")
	t.Logf("web OK again %v after the drain (its status on the way: %v): %v", time.Since(drainedAt).Round(time.Millisecond), statuses, faultTaskCounts(s, tasks))
	for _, tk := range tasks {
		if tk.NodeID == drained.ID() && tk.DesiredState == "running" {
			t.Errorf("a web task is still meant to run on the drained %s: %v", drained, faultTaskCounts(s, tasks))
		}
	}

	faultMust(t, s.Activate(drained))
	e.WaitFor(t, 60*time.Second, "agent back on "+drained.Name, func(m Metrics) bool {
		return m.Is(1, "docker_swarm_node_availability", "hostname", drained.Hostname, "availability", "active") &&
			m.Is(5, "docker_swarm_service_replicas_running", "service_name", "agent") &&
			m.Is(1, "docker_swarm_status", "status", "ok")
	})

	// Pause the other worker: its agent task stays, so agent stays OK.
	paused := s.Node("w1")
	if drained == paused {
		paused = s.Node("w2")
	}
	faultMust(t, s.Pause(paused))
	seenPaused := 0
	faultPoll(t, e, faultPollOpts{What: paused.Name + " paused, agent still 5 of 5", Every: 500 * time.Millisecond, Timeout: 30 * time.Second},
		func(sc faultScrape) bool {
			clusterStaysOK(sc)
			m := sc.M
			if st := faultStatus(m, "docker_swarm_service_status", "service_name", "agent"); sc.Err == nil && st != "ok" {
				t.Errorf("scrape %d at %v: agent %q after pausing %s:\n%s", sc.N, sc.At, st, paused, m.Summary())
			}
			if m.Is(1, "docker_swarm_node_availability", "hostname", paused.Hostname, "availability", "pause") &&
				m.Is(5, "docker_swarm_service_replicas_desired", "service_name", "agent") &&
				m.Is(5, "docker_swarm_service_replicas_running", "service_name", "agent") &&
				m.Is(1, "docker_swarm_service_status", "service_name", "web", "status", "ok") {
				seenPaused++
			}
			// A few scrapes with the pause in effect: the task stays.
			return seenPaused >= 5
		})
	tasks, err = s.Tasks("agent")
	faultMust(t, err)
	kept := false
	for _, tk := range tasks {
		kept = kept || (tk.NodeID == paused.ID() && tk.State == "running" && tk.DesiredState == "running")
	}
	if !kept {
		t.Errorf("the paused %s has no running agent task: %v", paused, faultTaskCounts(s, tasks))
	}
	faultMust(t, s.Activate(paused))
}
