package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// Issue #6, high availability: deploy/exporter.yml runs one exporter per
// manager. When a manager that hosts one crashes (the whole node: dockerd,
// containerd and the exporter's container), the instances on the other
// managers keep answering every scrape, see the crash (cluster WARNING, the
// node down) and keep giving identical cluster and node answers; the
// instance on the new leader takes over the services (deploy/exporter.yml
// passes --read.services=leader), so that Prometheus loses nothing but the
// dead instance's target.

// stackCheckHA runs the crash on the stack of TestExporterStack. The victim
// is the raft leader, the harder case: the survivors also go through an
// election. The victim is then restarted and its instance must come back.
func stackCheckHA(t *testing.T, st *ExporterStack) {
	s := st.Swarm
	victim, err := s.Leader()
	if err != nil {
		t.Fatal(err)
	}
	var survivors []*swarmtest.Node
	var survivorURLs []string
	for _, m := range s.Managers() {
		if m != victim {
			survivors = append(survivors, m)
			survivorURLs = append(survivorURLs, st.InstanceURL(m))
		}
	}

	// Scrape the survivors every 250 ms from before the crash until they
	// agree on its outcome: every scrape must be an HTTP 200 exposition.
	watch := stackWatch(survivorURLs, 250*time.Millisecond)
	time.Sleep(time.Second)
	t0 := time.Now()
	if err := s.Kill(victim); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %s (the leader, hosting %s) ", victim.Name, st.InstanceURL(victim))

	ms := stackWaitAgreement(t, survivorURLs, 90*time.Second, 3, "the crash of "+victim.Name, func(m Metrics) bool {
		return m.Is(1, "docker_swarm_up") &&
			m.Is(1, "docker_swarm_cluster_status", "status", "warning") &&
			m.OneHot("docker_swarm_node_state", "state", "hostname", victim.Hostname) == "down" &&
			m.Is(1, "docker_swarm_nodes", "role", "manager", "state", "down")
	}, func(m Metrics) bool {
		// The instance on the new leader: the victim's replica of web is
		// rescheduled; global services no longer count it; the exporter's
		// own service runs on 2 of 2.
		return m.Is(4, "docker_swarm_service_replicas_running", "service_name", "web") &&
			m.Is(4, "docker_swarm_service_replicas_desired", "service_name", "agent") &&
			m.Is(4, "docker_swarm_service_replicas_running", "service_name", "agent") &&
			m.Is(2, "docker_swarm_service_replicas_desired", "service_name", st.Service) &&
			m.Is(2, "docker_swarm_service_replicas_running", "service_name", st.Service)
	})
	failover := time.Since(t0)
	stats := watch.stop()
	t.Logf("the survivors agree on the crash %v after the kill (t=0 is 1 s before it); during the failover they answered:\n%s",
		failover.Round(100*time.Millisecond), stats)
	// While the leader is being replaced, the survivors' daemons hold API
	// requests until a new leader is elected (raft election timeout 10-20 s
	// with dockerd's defaults): scrapes then answer up 0 by their deadline.
	// Right after the election the instances read the cluster again; the
	// bound allows the slowest election plus one read stuck for
	// --docker.timeout (10 s) and a margin.
	const maxBlind = 45 * time.Second
	for _, u := range survivorURLs {
		at, ok := stats.firstAfter(u, "up=1 cluster=warning", t0)
		switch {
		case !ok:
			t.Errorf("%s never answered up 1 with a WARNING cluster", u)
		case at.Sub(t0) > maxBlind:
			t.Errorf("%s answered up 1 again %v after the kill, want within %v", u, at.Sub(t0).Round(100*time.Millisecond), maxBlind)
		default:
			t.Logf("%s reads the cluster again %v after the kill", u, at.Sub(t0).Round(100*time.Millisecond))
		}
	}
	for _, u := range survivorURLs {
		if stats.failed[u] > 0 {
			t.Errorf("%s failed %d of %d scrapes during the failover: %v", u, stats.failed[u], stats.scrapes[u], stats.errs[u])
		}
		if stats.scrapes[u] == 0 {
			t.Errorf("%s was never scraped during the failover", u)
		}
	}
	// Services stayed reported through the crash: as soon as a survivor
	// says which survivor leads, the instance on it reads the services,
	// after at most max-age, during which its scrapes reuse its read from
	// before the crash. One instance at most reports them at any time.
	_, maxAge, _, _ := deployReadSettings(t)
	stats.checkServicesTakeover(t, victim.Hostname, t0, maxAge)

	type series struct {
		want   float64
		name   string
		labels []string
	}
	for _, m := range ms {
		checks := []series{
			{2, "docker_swarm_managers_reachable", nil},
			{2, "docker_swarm_managers_quorum", nil},
		}
		if m.Is(1, "docker_swarm_local_node_leader") {
			checks = append(checks,
				series{1, "docker_swarm_services_status", []string{"status", "ok"}},
				series{1, "docker_swarm_status", []string{"status", "warning"}},
				series{1, "docker_swarm_service_status", []string{"service_name", st.Service, "status", "ok"}})
		}
		for _, c := range checks {
			if !m.Is(c.want, c.name, c.labels...) {
				v, ok := m.Value(c.name, c.labels...)
				t.Errorf("after the crash: %s%v = %v (found %v), want %v", c.name, c.labels, v, ok, c.want)
			}
		}
	}

	// A new leader, and exactly one survivor reads through it.
	leader, err := s.Leader()
	if err != nil {
		t.Fatal(err)
	}
	leaders := 0
	for i, n := range survivors {
		if ms[i].Is(1, "docker_swarm_local_node_leader") {
			leaders++
			if n != leader {
				t.Errorf("the instance on %s says it reads the leader; the leader is %s", n.Name, leader.Name)
			}
		}
		if !ms[i].Is(1, "docker_swarm_local_node_info", "hostname", n.Hostname, "node_id", n.ID()) {
			t.Errorf("the instance on %s: %s", n.Name, stackFamily(ms[i], "docker_swarm_local_node_info"))
		}
	}
	if leaders != 1 {
		t.Errorf("%d surviving instances report docker_swarm_local_node_leader 1, want 1 (new leader %s)", leaders, leader.Name)
	}

	// The dead instance is gone from the live list; it does not answer.
	if got := st.LiveInstanceURLs(); fmt.Sprint(got) != fmt.Sprint(survivorURLs) {
		t.Errorf("LiveInstanceURLs() = %v after the crash, want %v", got, survivorURLs)
	}
	if resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(st.InstanceURL(victim) + "/metrics"); err == nil {
		resp.Body.Close()
		t.Errorf("the crashed node's instance still answers: HTTP %d", resp.StatusCode)
	}
	// On the overlay network, where the stack's Prometheus resolves the
	// instances, both survivors answer.
	name := stackPrometheusTarget(t)
	scrapes, resolved := stackProbeOverlay(t, st, survivors[0], name)
	t.Logf("after the crash, on the overlay network: %s resolves to %v; scrapes: %v", name, resolved[name], scrapes)
	for _, n := range survivors {
		found := false
		for _, h := range scrapes {
			found = found || h == n.Hostname
		}
		if !found {
			t.Errorf("after the crash, the instance on %s is not reachable at %s on the overlay network: %v", n.Name, name, scrapes)
		}
	}

	// The node comes back: so does its instance, reporting itself, and all
	// three agree on a healthy cluster again.
	t1 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.Restart(ctx, victim); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitNodeState(victim, "ready", time.Minute); err != nil {
		t.Fatal(err)
	}
	st.WaitInstances(t, []*swarmtest.Node{victim}, 90*time.Second)
	var all []string
	for _, m := range s.Managers() {
		all = append(all, st.InstanceURL(m))
	}
	ms = stackWaitAgreement(t, all, 90*time.Second, 2, "the recovery of "+victim.Name, func(m Metrics) bool {
		return m.Is(1, "docker_swarm_up") &&
			m.Is(1, "docker_swarm_cluster_status", "status", "ok")
	}, func(m Metrics) bool {
		return m.Is(3, "docker_swarm_service_replicas_running", "service_name", st.Service) &&
			m.Is(5, "docker_swarm_service_replicas_running", "service_name", "agent") &&
			m.Is(4, "docker_swarm_service_replicas_running", "service_name", "web")
	})
	for i, n := range s.Managers() {
		if n == victim && !ms[i].Is(1, "docker_swarm_local_node_info", "hostname", victim.Hostname, "node_id", victim.ID()) {
			t.Errorf("the restarted instance on %s: %s", n.Name, stackFamily(ms[i], "docker_swarm_local_node_info"))
		}
	}
	if got := st.LiveInstanceURLs(); fmt.Sprint(got) != fmt.Sprint(all) {
		t.Errorf("LiveInstanceURLs() = %v after the restart, want %v", got, all)
	}
	t.Logf("%s restarted; its instance serves and the 3 instances agree on OK %v after the restart",
		victim.Name, time.Since(t1).Round(100*time.Millisecond))
}

// stackWatcher scrapes a set of instances on a period and records, per
// instance, the scrapes, the failures and the sequence of distinct answers.
type stackWatcher struct {
	stopc chan struct{}
	done  chan struct{}
	stats stackWatchStats
}

// stackTransition is when an instance's answer changed, and to what.
type stackTransition struct {
	at     time.Time
	answer string
}

type stackWatchStats struct {
	mu      sync.Mutex
	urls    []string
	scrapes map[string]int
	failed  map[string]int
	errs    map[string][]string
	seen    map[string][]stackTransition // distinct consecutive answers
	rounds  []stackRound
	start   time.Time
}

// stackRound is who reported the services, and who the leader is, in one
// round of scrapes.
type stackRound struct {
	at time.Time
	// reporters are the instances whose scrape has series about the
	// services; onLeader the one that says it reads through the leader.
	reporters []string
	onLeader  string
	// leaders are the hostnames the instances report as the leader
	// (docker_swarm_node_leader).
	leaders []string
}

func stackWatch(urls []string, every time.Duration) *stackWatcher {
	w := &stackWatcher{stopc: make(chan struct{}), done: make(chan struct{})}
	w.stats = stackWatchStats{urls: urls, scrapes: map[string]int{}, failed: map[string]int{},
		errs: map[string][]string{}, seen: map[string][]stackTransition{}, start: time.Now()}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			ms, errs := stackScrapeAll(urls)
			w.stats.mu.Lock()
			round := stackRound{at: time.Now()}
			for i, u := range urls {
				if errs[i] != nil {
					continue
				}
				if stackReportsServices(ms[i]) {
					round.reporters = append(round.reporters, u)
				}
				if ms[i].Is(1, "docker_swarm_local_node_leader") {
					round.onLeader = u
				}
				if h := ms[i].OneHot("docker_swarm_node_leader", "hostname"); h != "" {
					round.leaders = append(round.leaders, h)
				}
			}
			w.stats.rounds = append(w.stats.rounds, round)
			for i, u := range urls {
				w.stats.scrapes[u]++
				if errs[i] != nil {
					w.stats.failed[u]++
					if len(w.stats.errs[u]) < 5 {
						w.stats.errs[u] = append(w.stats.errs[u], errs[i].Error())
					}
					continue
				}
				a := stackAnswer(ms[i])
				if seen := w.stats.seen[u]; len(seen) == 0 || seen[len(seen)-1].answer != a {
					w.stats.seen[u] = append(seen, stackTransition{time.Now(), a})
				}
			}
			w.stats.mu.Unlock()
			select {
			case <-w.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *stackWatcher) stop() *stackWatchStats {
	close(w.stopc)
	<-w.done
	return &w.stats
}

// checkServicesTakeover checks, over the rounds from t0 (the crash of the
// leader, whose hostname is victim), that at most one instance reported the
// services in any round; that the instance on the new leader reported them
// at most maxAge (plus a second for the rounds) after an instance first
// said which survivor leads; and that it kept reporting them from then on.
func (s *stackWatchStats) checkServicesTakeover(t *testing.T, victim string, t0 time.Time, maxAge time.Duration) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var known, took time.Time
	for _, r := range s.rounds {
		if len(r.reporters) > 1 {
			t.Errorf("[%.1fs] %d instances report the services at once: %v", r.at.Sub(s.start).Seconds(), len(r.reporters), r.reporters)
		}
		if r.at.Before(t0) {
			continue
		}
		for _, l := range r.leaders {
			if known.IsZero() && l != victim {
				known = r.at
			}
		}
		// After the crash, an instance that says it reads through the
		// leader is on the new one.
		onNewLeader := r.onLeader != ""
		switch {
		case onNewLeader && (len(r.reporters) != 1 || r.reporters[0] != r.onLeader):
			// The read that finds the manager leading fetches the services.
			t.Errorf("[%.1fs] the instance on the new leader (%s) does not report the services (reporters %v)",
				r.at.Sub(s.start).Seconds(), r.onLeader, r.reporters)
		case onNewLeader && took.IsZero():
			took = r.at
		}
	}
	switch {
	case known.IsZero():
		t.Error("no survivor ever reported a new leader")
	case took.IsZero():
		t.Errorf("the instance on the new leader never reported the services (a new leader was reported %v after the kill)", known.Sub(t0).Round(100*time.Millisecond))
	case took.Sub(known) > maxAge+time.Second:
		t.Errorf("the instance on the new leader reported the services %v after a survivor first reported the new leader, want within max-age %v",
			took.Sub(known).Round(100*time.Millisecond), maxAge)
	default:
		t.Logf("a survivor reported the new leader %v after the kill; the instance on it reported the services %v after the kill",
			known.Sub(t0).Round(100*time.Millisecond), took.Sub(t0).Round(100*time.Millisecond))
	}
}

// firstAfter returns when url first answered with prefix at or after t.
func (s *stackWatchStats) firstAfter(url, prefix string, t time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tr := range s.seen[url] {
		if !tr.at.Before(t) && strings.HasPrefix(tr.answer, prefix) {
			return tr.at, true
		}
	}
	return time.Time{}, false
}

func (s *stackWatchStats) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, u := range s.urls {
		var seen []string
		for _, tr := range s.seen[u] {
			seen = append(seen, fmt.Sprintf("[%.1fs] %s", tr.at.Sub(s.start).Seconds(), tr.answer))
		}
		out = append(out, fmt.Sprintf("  %s: %d scrapes, %d failed; answers: %s", u, s.scrapes[u], s.failed[u], strings.Join(seen, " → ")))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// stackAnswer summarises a scrape: up (with the reasons of the failed
// reads so far), cluster status, managers down.
func stackAnswer(m Metrics) string {
	up, _ := m.Value("docker_swarm_up")
	a := fmt.Sprintf("up=%g", up)
	if up == 0 {
		var reasons []string
		for _, s := range m["swarm_exporter_read_errors_total"].GetMetric() {
			for _, lp := range s.GetLabel() {
				reasons = append(reasons, fmt.Sprintf("%s:%g", lp.GetValue(), sampleValue(s)))
			}
		}
		sort.Strings(reasons)
		a += " (read errors " + strings.Join(reasons, ",") + ")"
	}
	if c := m.OneHot("docker_swarm_cluster_status", "status"); c != "" {
		a += " cluster=" + c
	}
	if down, ok := m.Value("docker_swarm_nodes", "role", "manager", "state", "down"); ok && down > 0 {
		a += fmt.Sprintf(" managers_down=%g", down)
	}
	return a
}
