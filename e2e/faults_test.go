package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// Scenarios 2 to 5 of issue #3, one 3-manager, 2-worker swarm walking
// through them in order: a worker crashes, then a manager, then a second
// manager (quorum lost), then everything is restarted. The exporter reads
// through m1, which is never killed.
func TestNodeFaults(t *testing.T) { swarmtest.OnEachEngine(t, testNodeFaults) }

func testNodeFaults(t *testing.T, eng swarmtest.Engine) {
	s := swarmtest.StartForTest(t, swarmtest.Options{Engine: eng})
	img := swarmtest.WorkloadImage
	// api runs on the workers only, 2 tasks on each (spread), so that a
	// crashed worker takes tasks with it; agent runs everywhere.
	for _, args := range [][]string{
		{"--name", "api", "--replicas", "4", "--constraint", "node.role==worker", "--restart-delay", "1s", img},
		{"--name", "agent", "--mode", "global", "--restart-delay", "1s", img},
	} {
		if _, err := s.CreateService(args...); err != nil {
			t.Fatal(err)
		}
	}
	m1 := s.Node("m1")
	e := StartExporter(t, m1.Host())
	e.WaitFor(t, 90*time.Second, "cluster and services OK", func(m Metrics) bool {
		return m.Is(1, "docker_swarm_up") &&
			m.Is(1, "docker_swarm_status", "status", "ok") &&
			m.Is(4, "docker_swarm_service_replicas_running", "service_name", "api") &&
			m.Is(5, "docker_swarm_service_replicas_running", "service_name", "agent")
	})

	// The managers to kill in scenarios 3 and 4: not m1, and the leader
	// last, so that scenario 3 loses a manager without an election.
	leader, err := s.Leader()
	faultMust(t, err)
	victims := []*swarmtest.Node{s.Node("m3"), s.Node("m2")}
	if leader == victims[0] {
		victims[0], victims[1] = victims[1], victims[0]
	}
	t.Logf("leader %s; managers to kill: %s then %s", leader, victims[0], victims[1])

	ok := t.Run("2 kill a worker", func(t *testing.T) {
		faultKillWorker(t, s, e)
	})
	ok = ok && t.Run("3 kill a manager", func(t *testing.T) {
		faultKillManager(t, s, e, victims[0])
	})
	ok = ok && t.Run("4 kill a second manager: quorum lost", func(t *testing.T) {
		faultLoseQuorum(t, s, e, victims[1])
	})
	if !ok {
		t.FailNow() // scenario 5 restores the state the earlier ones made
	}
	t.Run("5 restart everything", func(t *testing.T) {
		faultRestartAll(t, s, e, victims[0], victims[1])
	})
}

// Scenario 2: a worker crashes. The exporter shows one worker down and the
// cluster WARNING; from the first scrape that shows the node down, the
// running count of api never includes the tasks left on it, although
// Docker's own ServiceStatus.RunningTasks does (those tasks still say
// running).
func faultKillWorker(t *testing.T, s *swarmtest.Swarm, e *Exporter) {
	m1 := s.Node("m1")
	tasks, err := s.Tasks("api")
	faultMust(t, err)
	var victim *swarmtest.Node
	for _, w := range s.Workers() {
		n := 0
		for _, tk := range tasks {
			if tk.NodeID == w.ID() && tk.State == "running" && tk.DesiredState == "running" {
				n++
			}
		}
		if n > 0 {
			victim = w
			break
		}
	}
	if victim == nil {
		t.Fatalf("no worker runs an api task: %v", faultTaskCounts(s, tasks))
	}
	t.Logf("api tasks before the crash: %v", faultTaskCounts(s, tasks))
	faultMust(t, s.Kill(victim))
	killedAt := time.Now()

	// liveRunning counts the api tasks that really run: state and desired
	// state running, on a node that is not the dead one.
	liveRunning := func(tasks []swarmtest.Task) (live, onDead int) {
		for _, tk := range tasks {
			switch {
			case tk.State != "running":
			case tk.NodeID == victim.ID():
				onDead++
			case tk.DesiredState == "running":
				live++
			}
		}
		return live, onDead
	}

	seenDown := false
	faultPoll(t, e, faultPollOpts{What: "api back to 4 running tasks with " + victim.Name + " down", Timeout: 90 * time.Second},
		func(sc faultScrape) bool {
			if sc.Err != nil {
				t.Errorf("scrape %d at %v: %v", sc.N, sc.At, sc.Err)
				return false
			}
			m := sc.M
			down := m.Is(1, "docker_swarm_node_state", "hostname", victim.Hostname, "state", "down")
			if !down {
				if seenDown {
					t.Errorf("scrape %d: %s is no longer down:\n%s", sc.N, victim.Hostname, m.Summary())
				}
				return false
			}
			running := faultValue(m, "docker_swarm_service_replicas_running", "service_name", "api")
			// The task list is read after the scrape: in between, tasks only
			// start (replacements on the live worker), so what really runs
			// now is at least what really ran during the scrape.
			tasks, err := s.Tasks("api")
			if err != nil {
				t.Errorf("listing api tasks: %v", err)
				return false
			}
			live, onDead := liveRunning(tasks)
			if running < 0 || running > float64(live) {
				t.Errorf("scrape %d (%v after the kill): the exporter says api runs %v tasks, only %d run on live nodes (%d still say running on the dead %s): %v",
					sc.N, time.Since(killedAt).Round(time.Millisecond), running, live, onDead, victim.Name, faultTaskCounts(s, tasks))
			}
			if !seenDown {
				seenDown = true
				docker, err := faultDockerServices(m1)
				faultMust(t, err)
				ds := docker["api"].ServiceStatus
				t.Logf("first scrape showing %s down, %v after the kill: exporter api running %v; Docker: RunningTasks %d of DesiredTasks %d; tasks: %v",
					victim.Name, time.Since(killedAt).Round(time.Millisecond), running, ds.RunningTasks, ds.DesiredTasks, faultTaskCounts(s, tasks))
				if onDead == 0 {
					t.Errorf("no api task on the dead %s says running: %v", victim.Name, faultTaskCounts(s, tasks))
				}
				// RunningTasks was read after the scrape and only grows
				// meanwhile: the difference is Docker counting the dead node.
				if ds.RunningTasks < uint64(running)+uint64(onDead) {
					t.Errorf("Docker's RunningTasks %d does not count the %d tasks on the dead node on top of the exporter's %v",
						ds.RunningTasks, onDead, running)
				}
			}
			return m.Is(1, "docker_swarm_cluster_status", "status", "warning") &&
				m.Is(1, "docker_swarm_nodes", "role", "worker", "state", "down") &&
				m.Is(1, "docker_swarm_nodes", "role", "worker", "state", "ready") &&
				m.Is(4, "docker_swarm_service_replicas_running", "service_name", "api") &&
				m.Is(1, "docker_swarm_service_status", "service_name", "api", "status", "ok") &&
				m.Is(4, "docker_swarm_service_replicas_desired", "service_name", "agent") &&
				m.Is(1, "docker_swarm_service_status", "service_name", "agent", "status", "ok")
		})
	// Once api is whole again, Docker counts more running tasks than
	// replicas: the tasks on the dead node still say running.
	docker, err := faultDockerServices(m1)
	faultMust(t, err)
	ds := docker["api"].ServiceStatus
	tasks, _ = s.Tasks("api")
	t.Logf("api whole again %v after the kill: exporter 4 running of 4; Docker: RunningTasks %d of DesiredTasks %d; tasks: %v",
		time.Since(killedAt).Round(time.Millisecond), ds.RunningTasks, ds.DesiredTasks, faultTaskCounts(s, tasks))
	if ds.RunningTasks <= 4 {
		t.Errorf("Docker's RunningTasks is %d: expected it to over-count the 4 replicas with the dead node's tasks", ds.RunningTasks)
	}

	// The worker comes back, so that the next scenario starts from OK.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	faultMust(t, s.Restart(ctx, victim))
	faultPoll(t, e, faultPollOpts{What: "cluster OK with " + victim.Name + " back", Every: 500 * time.Millisecond, Timeout: 90 * time.Second},
		func(sc faultScrape) bool {
			return sc.Err == nil && sc.M.Is(1, "docker_swarm_status", "status", "ok") &&
				sc.M.Is(2, "docker_swarm_nodes", "role", "worker", "state", "ready") &&
				sc.M.Is(5, "docker_swarm_service_replicas_running", "service_name", "agent")
		})
	t.Logf("OK again %v after the kill", time.Since(killedAt).Round(time.Millisecond))
}

// Scenario 3: one of three managers crashes: WARNING, 2 managers
// reachable, quorum 2, and never KO on the way.
func faultKillManager(t *testing.T, s *swarmtest.Swarm, e *Exporter, victim *swarmtest.Node) {
	faultMust(t, s.Kill(victim))
	killedAt := time.Now()
	var okWhileUnreachable []string
	faultPoll(t, e, faultPollOpts{What: "WARNING with 2 managers reachable", Every: 500 * time.Millisecond, Timeout: 60 * time.Second},
		func(sc faultScrape) bool {
			if sc.Err != nil {
				t.Errorf("scrape %d at %v: %v", sc.N, sc.At, sc.Err)
				return false
			}
			m := sc.M
			if !m.Is(1, "docker_swarm_up") || m.Is(1, "docker_swarm_cluster_status", "status", "ko") {
				t.Errorf("scrape %d at %v: one manager down of three made the cluster %q (up %v):\n%s",
					sc.N, sc.At, faultStatus(m, "docker_swarm_cluster_status"), faultValue(m, "docker_swarm_up"), m.Summary())
			}
			if m.Is(1, "docker_swarm_cluster_status", "status", "ok") && m.Is(2, "docker_swarm_managers_reachable") {
				okWhileUnreachable = append(okWhileUnreachable, time.Since(killedAt).Round(time.Millisecond).String())
			}
			return m.Is(1, "docker_swarm_cluster_status", "status", "warning") &&
				m.Is(2, "docker_swarm_managers_reachable") &&
				m.Is(2, "docker_swarm_managers_quorum") &&
				m.Is(3, "docker_swarm_nodes_total", "role", "manager") &&
				m.Is(1, "docker_swarm_nodes", "role", "manager", "state", "down") &&
				m.Is(2, "docker_swarm_nodes", "role", "worker", "state", "ready") &&
				m.Is(1, "docker_swarm_node_manager_reachability", "hostname", victim.Hostname, "reachability", "unreachable")
		})
	t.Logf("WARNING %v after the kill", time.Since(killedAt).Round(time.Millisecond))
	if len(okWhileUnreachable) > 0 {
		// A dead manager turns unreachable at once and down only when its
		// heartbeat expires: the cluster is not fault tolerant from the
		// start, so WARNING from the start.
		t.Errorf("%d scrapes said cluster OK with only 2 of 3 managers reachable (the dead one still ready), at %v after the kill",
			len(okWhileUnreachable), okWhileUnreachable)
	}
}

// Scenario 4: a second manager crashes, the survivor has no quorum. The
// cluster is KO with condition quorum_lost, docker_swarm_up stays 1, the
// per-node and per-service series disappear, and every scrape answers
// within the scrape timeout Prometheus sends, while the survivor first
// hangs on to its lost leader and then answers HTTP 500.
func faultLoseQuorum(t *testing.T, s *swarmtest.Swarm, e *Exporter, victim *swarmtest.Node) {
	const scrapeTimeout = 3 * time.Second
	faultMust(t, s.Kill(victim))
	killedAt := time.Now()
	var worst time.Duration
	scrapes, upZero := 0, 0
	lastState := ""
	check := func(sc faultScrape) {
		scrapes++
		worst = max(worst, sc.Took)
		if sc.Took >= scrapeTimeout {
			t.Errorf("scrape %d, %v after the kill, took %v: not within the %v scrape timeout it was sent",
				sc.N, time.Since(killedAt).Round(time.Millisecond), sc.Took.Round(time.Millisecond), scrapeTimeout)
		}
		if sc.Err != nil {
			t.Errorf("scrape %d, %v after the kill, failed after %v: %v", sc.N, time.Since(killedAt).Round(time.Millisecond), sc.Took.Round(time.Millisecond), sc.Err)
			return
		}
		if !sc.M.Is(1, "docker_swarm_up") {
			upZero++
		}
		state := fmt.Sprintf("up %v, cluster %q, per-node series %v", faultValue(sc.M, "docker_swarm_up"),
			faultStatus(sc.M, "docker_swarm_cluster_status"), sc.M.Has("docker_swarm_node_state"))
		if state != lastState {
			t.Logf("%v after the kill (scrape took %v): %s", time.Since(killedAt).Round(time.Millisecond), sc.Took.Round(time.Millisecond), state)
			lastState = state
		}
	}
	first := faultPoll(t, e, faultPollOpts{What: "KO with quorum_lost, without per-node series", Every: 500 * time.Millisecond,
		ScrapeTimeout: scrapeTimeout, Timeout: 150 * time.Second},
		func(sc faultScrape) bool {
			check(sc)
			m := sc.M
			return sc.Err == nil &&
				m.Is(1, "docker_swarm_up") &&
				m.Is(1, "docker_swarm_cluster_status", "status", "ko") &&
				m.Is(1, "docker_swarm_cluster_condition", "condition", "quorum_lost") &&
				m.Is(1, "docker_swarm_status", "status", "ko") &&
				!m.Has("docker_swarm_node_state") &&
				!m.Has("docker_swarm_service_replicas_running") &&
				!m.Has("docker_swarm_managers_reachable")
		})
	t.Logf("leaderless form after %v (%d scrapes, %d with up 0, slowest %v)",
		first.At.Round(time.Millisecond), scrapes, upZero, worst.Round(time.Millisecond))
	m := first.M
	for _, c := range []struct {
		want   float64
		name   string
		labels []string
	}{
		{3, "docker_swarm_nodes_total", []string{"role", "manager"}},
		{2, "docker_swarm_managers_quorum", nil},
		{1, "docker_swarm_local_node_state", []string{"state", "active"}},
	} {
		if !m.Is(c.want, c.name, c.labels...) {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, faultValue(m, c.name, c.labels...), c.want)
		}
	}
	// It stays so, and scrapes stay fast.
	faultPoll(t, e, faultPollOpts{What: "5 more scrapes", Every: 500 * time.Millisecond, ScrapeTimeout: scrapeTimeout, Timeout: time.Minute},
		func(sc faultScrape) bool {
			check(sc)
			if sc.Err == nil && !(sc.M.Is(1, "docker_swarm_up") && sc.M.Is(1, "docker_swarm_cluster_status", "status", "ko")) {
				t.Errorf("scrape %d after quorum loss: up %v, cluster %q", sc.N, faultValue(sc.M, "docker_swarm_up"), faultStatus(sc.M, "docker_swarm_cluster_status"))
			}
			return sc.N >= 4
		})
	t.Logf("%d scrapes since the kill, slowest %v (scrape timeout %v)", scrapes, worst.Round(time.Millisecond), scrapeTimeout)
	if n := len(faultAwaitLogLines(e, "the swarm has no leader")); n != 1 {
		t.Errorf("%d log lines about the lost leader, want 1:\n%s", n, e.Logs())
	}
}

// Scenario 5: the crashed nodes come back and the cluster is OK again.
func faultRestartAll(t *testing.T, s *swarmtest.Swarm, e *Exporter, nodes ...*swarmtest.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() {
			t0 := time.Now()
			err := s.Restart(ctx, n)
			t.Logf("%s answers again after %v", n, time.Since(t0).Round(time.Millisecond))
			errs <- err
		}()
	}
	for range nodes {
		faultMust(t, <-errs)
	}
	t.Logf("daemons restarted after %v", time.Since(start).Round(time.Millisecond))
	m := faultPoll(t, e, faultPollOpts{What: "cluster and services OK", Every: time.Second, Timeout: 3 * time.Minute},
		func(sc faultScrape) bool {
			m := sc.M
			return sc.Err == nil &&
				m.Is(1, "docker_swarm_up") &&
				m.Is(1, "docker_swarm_cluster_status", "status", "ok") &&
				m.Is(1, "docker_swarm_status", "status", "ok") &&
				m.Is(3, "docker_swarm_managers_reachable") &&
				m.Is(3, "docker_swarm_nodes", "role", "manager", "state", "ready") &&
				m.Is(2, "docker_swarm_nodes", "role", "worker", "state", "ready") &&
				m.Is(4, "docker_swarm_service_replicas_running", "service_name", "api") &&
				m.Is(5, "docker_swarm_service_replicas_running", "service_name", "agent")
		}).M
	t.Logf("OK again %v after the restarts", time.Since(start).Round(time.Millisecond))
	for _, c := range []string{"quorum_lost", "node_not_ready", "no_ready_worker", "no_ready_manager"} {
		if !m.Is(0, "docker_swarm_cluster_condition", "condition", c) {
			t.Errorf("condition %s still holds", c)
		}
	}
	if len(faultAwaitLogLines(e, "reading the swarm again")) == 0 {
		t.Errorf("no log line says the swarm is read again:\n%s", e.Logs())
	}
	t.Logf("exporter logs:\n%s", e.Logs())
}
