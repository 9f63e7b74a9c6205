package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// Scenario 13 of issue #3: the leader of a 5-manager, 3-worker swarm
// crashes. The survivors keep their quorum and elect a new leader; the
// exporter, reading through a surviving manager, may say WARNING while
// nodes pass through unknown, and must never say KO. A scrape starts every
// 250 ms (they overlap while the daemon hangs), from the crash until a new
// leader is reported and the dead one is shown unreachable.
//
// Known bug (reported): when the survivor answers "the swarm does not have
// a leader" during the election, the exporter says KO with quorum_lost.
// Whether that happens depends on the election's timing; such scrapes are
// logged, and fail the test with -tags knownbugs.
func TestLeaderChange(t *testing.T) { swarmtest.OnEachEngine(t, testLeaderChange) }

func testLeaderChange(t *testing.T, eng swarmtest.Engine) {
	s := swarmtest.StartForTest(t, swarmtest.Options{Managers: 5, Workers: 3, NoWorkloadImage: true, Engine: eng})
	leader, err := s.Leader()
	faultMust(t, err)
	var reader *swarmtest.Node
	for _, m := range s.Managers() {
		if m != leader {
			reader = m
			break
		}
	}
	t.Logf("leader %s; the exporter reads through %s", leader, reader)
	e := StartExporter(t, reader.Host())
	e.WaitFor(t, 60*time.Second, "cluster OK", func(m Metrics) bool {
		return m.Is(1, "docker_swarm_cluster_status", "status", "ok") &&
			m.Is(1, "docker_swarm_node_leader", "hostname", leader.Hostname)
	})

	const scrapeTimeout = 5 * time.Second
	faultMust(t, s.Kill(leader))
	var ko, unread []string
	lastState, newLeader := "", ""
	scrapes := 0
	faultTick(t, e, faultPollOpts{What: "a new leader reported, the old one unreachable", Every: 250 * time.Millisecond,
		ScrapeTimeout: scrapeTimeout, Timeout: 2 * time.Minute},
		func(sc faultScrape) bool {
			scrapes++
			m := sc.M
			if sc.Took >= scrapeTimeout {
				t.Errorf("the scrape started %v after the crash took %v, beyond its %v timeout", sc.At.Round(time.Millisecond), sc.Took.Round(time.Millisecond), scrapeTimeout)
			}
			state := ""
			if sc.Err != nil {
				state = "scrape error: " + sc.Err.Error()
			} else {
				leaderNow := ""
				for _, mgr := range s.Managers() {
					if mgr != leader && m.Is(1, "docker_swarm_node_leader", "hostname", mgr.Hostname) {
						leaderNow = mgr.Name
					}
				}
				if leaderNow != "" {
					newLeader = leaderNow
				}
				sum := func(state string) float64 {
					return max(faultValue(m, "docker_swarm_nodes", "role", "worker", "state", state), 0) +
						max(faultValue(m, "docker_swarm_nodes", "role", "manager", "state", state), 0)
				}
				state = fmt.Sprintf("up %v, cluster %q, leader %q, nodes ready %v unknown %v down %v, managers reachable %v",
					faultValue(m, "docker_swarm_up"), faultStatus(m, "docker_swarm_cluster_status"), leaderNow,
					sum("ready"), sum("unknown"), sum("down"), faultValue(m, "docker_swarm_managers_reachable"))
			}
			if state != lastState {
				t.Logf("scrape started %v after the crash, took %v: %s", sc.At.Round(time.Millisecond), sc.Took.Round(time.Millisecond), state)
				lastState = state
			}
			switch {
			case sc.Err != nil:
				t.Errorf("the scrape started %v after the crash failed: %v", sc.At.Round(time.Millisecond), sc.Err)
			case m.Is(1, "docker_swarm_cluster_status", "status", "ko") || m.Is(1, "docker_swarm_status", "status", "ko"):
				ko = append(ko, fmt.Sprintf("%v: %s", sc.At.Round(time.Millisecond), state))
			case !m.Is(1, "docker_swarm_up"):
				unread = append(unread, sc.At.Round(time.Millisecond).String())
			}
			return newLeader != "" &&
				m.Is(1, "docker_swarm_node_manager_reachability", "hostname", leader.Hostname, "reachability", "unreachable")
		})
	t.Logf("new leader %s; %d scrapes, %d could not read the swarm in time (started at %v)", newLeader, scrapes, len(unread), unread)
	if len(ko) > 0 {
		t.Errorf("%d of %d scrapes said KO during the leader change, although 4 of 5 managers were alive:\n%v\nexporter logs:\n%s",
			len(ko), scrapes, ko, e.Logs())
	}
	// After the change: a leader, never KO, WARNING at worst.
	m, _, err := e.Scrape(10 * time.Second)
	faultMust(t, err)
	if st := faultStatus(m, "docker_swarm_cluster_status"); st != "ok" && st != "warning" {
		t.Errorf("cluster %q after the leader change:\n%s", st, m.Summary())
	}
	faultExpect(t, m, []faultSeries{
		{1, "docker_swarm_up", nil},
		{5, "docker_swarm_nodes_total", []string{"role", "manager"}},
		{4, "docker_swarm_managers_reachable", nil},
		{3, "docker_swarm_managers_quorum", nil},
	})
}
