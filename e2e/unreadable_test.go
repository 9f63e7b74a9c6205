package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// Scenarios 10 and 11 of issue #3: the exporter pointed at a daemon that
// cannot serve cluster state (a worker, a daemon outside any swarm, a
// socket that does not exist, a locked manager) says so with
// docker_swarm_up 0 and no status, keeps serving, and logs one line that
// says what to do, not one per scrape.
func TestUnreadableDaemon(t *testing.T) { swarmtest.OnEachEngine(t, testUnreadableDaemon) }

func testUnreadableDaemon(t *testing.T, eng swarmtest.Engine) {
	s := swarmtest.StartForTest(t, swarmtest.Options{Managers: 1, Workers: 1, Standalone: 1, NoWorkloadImage: true, Engine: eng})

	t.Run("10 worker", func(t *testing.T) {
		w1 := s.Node("w1")
		e := StartExporter(t, w1.Host())
		m := faultUnreadable(t, e, "not_manager", "worker", "manager", "--docker.host")
		faultExpect(t, m, []faultSeries{
			{1, "docker_swarm_local_node_state", []string{"state", "active"}},
			{1, "docker_swarm_local_node_info", []string{"hostname", w1.Hostname, "role", "worker"}},
		})
	})

	t.Run("10 daemon outside any swarm", func(t *testing.T) {
		s1 := s.Node("s1")
		e := StartExporter(t, s1.Host())
		m := faultUnreadable(t, e, "not_in_swarm", "not part of a swarm", "manager", "--docker.host", "docker swarm init")
		faultExpect(t, m, []faultSeries{
			{1, "docker_swarm_local_node_state", []string{"state", "inactive"}},
		})
	})

	t.Run("10 missing socket", func(t *testing.T) {
		// No proxy here: there is no daemon to forward to, and the
		// exporter must see the missing socket itself.
		sock := filepath.Join(t.TempDir(), "docker.sock")
		e := StartExporterEnv(t, []string{"PATH=/usr/bin:/bin"}, "--docker.host=unix://"+sock)
		m := faultUnreadable(t, e, "unreachable", "no Docker socket at unix://"+sock, "--docker.host")
		if m.Has("docker_swarm_local_node_state") {
			t.Errorf("a local node state without a daemon:\n%s", m.Summary())
		}
	})

	t.Run("11 locked manager", func(t *testing.T) {
		m1 := s.Node("m1")
		key, err := s.EnableAutolock()
		faultMust(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		faultMust(t, s.Restart(ctx, m1))
		faultMust(t, s.WaitLocalState(m1, "locked", time.Minute))
		e := StartExporter(t, m1.Host())
		m := faultUnreadable(t, e, "locked", "locked", "docker swarm unlock")
		faultExpect(t, m, []faultSeries{
			{1, "docker_swarm_local_node_state", []string{"state", "locked"}},
			{0, "docker_swarm_local_node_state", []string{"state", "active"}},
		})
		// Unlocked, the same exporter reads the swarm again.
		faultMust(t, s.Unlock(m1, key))
		e.WaitFor(t, time.Minute, "the unlocked manager read", func(m Metrics) bool {
			return m.Is(1, "docker_swarm_up") && m.Is(1, "docker_swarm_local_node_state", "state", "active")
		})
		if n := len(faultAwaitLogLines(e, "reading the swarm again")); n != 1 {
			t.Errorf("%d log lines about reading the swarm again after the unlock, want 1:\n%s", n, e.Logs())
		}
	})
}

// faultUnreadable scrapes e several times and checks that every scrape
// answers with docker_swarm_up 0 and no status, that the process stays
// alive, and that it logged exactly one error line, with the reason and
// the words of its advice. It returns the last scrape.
func faultUnreadable(t *testing.T, e *Exporter, reason string, advice ...string) Metrics {
	t.Helper()
	const scrapes = 6
	last := faultPoll(t, e, faultPollOpts{What: "scrapes of an unreadable daemon", Every: 300 * time.Millisecond, Timeout: time.Minute},
		func(sc faultScrape) bool {
			if sc.Err != nil {
				t.Errorf("scrape %d: %v", sc.N, sc.Err)
				return false
			}
			if !sc.M.Is(0, "docker_swarm_up") {
				t.Errorf("scrape %d: docker_swarm_up %v, want 0", sc.N, faultValue(sc.M, "docker_swarm_up"))
			}
			for _, f := range []string{"docker_swarm_cluster_status", "docker_swarm_status", "docker_swarm_services_status", "docker_swarm_nodes"} {
				if sc.M.Has(f) {
					t.Errorf("scrape %d: %s present while the swarm cannot be read:\n%s", sc.N, f, sc.M.Summary())
				}
			}
			return sc.N+1 >= scrapes
		})
	if !e.Running() {
		t.Fatalf("the exporter exited:\n%s", e.Logs())
	}
	lines := faultAwaitLogLines(e, `msg="cannot read the swarm"`)
	errorLines := faultLogLines(e, "level=error")
	if len(lines) != 1 || len(errorLines) != 1 {
		t.Fatalf("after the read at start and %d scrapes: %d lines say the swarm cannot be read and %d error lines, want 1 of each:\n%s",
			scrapes, len(lines), len(errorLines), e.Logs())
	}
	line := lines[0]
	t.Logf("the log line: %s", line)
	if !strings.Contains(line, "reason="+reason+" ") {
		t.Errorf("the line does not give reason %s: %s", reason, line)
	}
	hint := line[strings.Index(line, " err="):]
	for _, a := range advice {
		if !strings.Contains(hint, a) {
			t.Errorf("the line does not say %q: %s", a, line)
		}
	}
	return last.M
}
