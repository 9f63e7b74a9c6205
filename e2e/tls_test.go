package e2e

import (
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// Issue #7: the Docker endpoint over TLS. The exporter reaches a manager
// on tcp://IP:2376 with --tlsverify through DOCKER_HOST, DOCKER_TLS_VERIFY
// and DOCKER_CERT_PATH; with a CA that did not sign the daemon's
// certificate, or a client certificate the daemon does not trust, it says
// docker_swarm_up 0 and logs one line with reason tls, and never crashes.
func TestDockerTLS(t *testing.T) { swarmtest.OnEachEngine(t, testDockerTLS) }

func testDockerTLS(t *testing.T, eng swarmtest.Engine) {
	s := swarmtest.StartForTest(t, swarmtest.Options{Managers: 1, TLSNodes: []string{"m1"}, NoWorkloadImage: true, Engine: eng})
	m1, certs := s.Node("m1"), s.TLS()

	t.Run("trusted certificates", func(t *testing.T) {
		e := StartExporterEnv(t, certs.Env(m1, certs.ClientDir), "--health.min-managers=1", "--health.min-workers=0")
		m := e.WaitFor(t, 30*time.Second, "the manager read over TLS", func(m Metrics) bool {
			return m.Is(1, "docker_swarm_up")
		})
		faultExpect(t, m, []faultSeries{
			{1, "docker_swarm_local_node_info", []string{"hostname", m1.Hostname, "role", "manager"}},
			{1, "docker_swarm_cluster_status", []string{"status", "ok"}},
			{1, "docker_swarm_nodes", []string{"role", "manager", "state", "ready"}},
		})
		if n := len(faultLogLines(e, "level=error")); n != 0 {
			t.Errorf("%d error lines:\n%s", n, e.Logs())
		}
	})

	t.Run("wrong CA", func(t *testing.T) {
		e := StartExporterEnv(t, certs.Env(m1, certs.WrongCADir))
		faultUnreadable(t, e, "tls", "TLS", "DOCKER_CERT_PATH")
	})

	t.Run("client certificate not trusted by the daemon", func(t *testing.T) {
		e := StartExporterEnv(t, certs.Env(m1, certs.BadClientDir))
		faultUnreadable(t, e, "tls", "TLS", "DOCKER_CERT_PATH", "trusts the client certificate")
	})
}
