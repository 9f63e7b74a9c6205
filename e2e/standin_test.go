package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// With deploy/exporter.yml's read flags, draining the leader (which then
// runs no instance of the global service) makes one follower stand in and
// read the services: the first ready, active, reachable manager by node ID.
// The other follower keeps reading the cluster only, and a status request
// served there does not make its scrapes report the services. When the
// leader is active again, the stand-in stops.
func TestDrainedLeaderStandIn(t *testing.T) {
	flags, maxAge, interval, _ := deployReadSettings(t)
	s := swarmtest.StartForTest(t, swarmtest.Options{})
	if _, err := s.CreateService("--name", "web", "--replicas", "2", swarmtest.WorkloadImage); err != nil {
		t.Fatal(err)
	}
	leader, err := s.Leader()
	faultMust(t, err)
	var followers []*swarmtest.Node
	for _, m := range s.Managers() {
		if m != leader {
			followers = append(followers, m)
		}
	}
	slices.SortFunc(followers, func(a, b *swarmtest.Node) int { return strings.Compare(a.ID(), b.ID()) })
	standIn, other := followers[0], followers[1]
	exp := map[*swarmtest.Node]*Exporter{}
	for _, m := range s.Managers() {
		exp[m] = StartExporter(t, m.Host(), flags...)
	}
	reportsWeb := func(m Metrics) bool {
		return m.Is(1, "docker_swarm_up") && m.Is(2, "docker_swarm_service_replicas_running", "service_name", "web")
	}
	readsClusterOnly := func(m Metrics) bool {
		return m.Is(1, "docker_swarm_up") && m.Has("docker_swarm_cluster_status") && !m.Has("docker_swarm_service_info")
	}
	settle := interval + maxAge + 30*time.Second
	exp[leader].WaitFor(t, time.Minute, "the leader's instance reports the services", reportsWeb)
	exp[standIn].WaitFor(t, time.Minute, "a follower's instance reads the cluster only", readsClusterOnly)

	faultMust(t, s.Drain(leader))
	t.Logf("drained the leader %s; %s (the first follower by node ID) stands in, %s does not", leader.Name, standIn.Name, other.Name)
	exp[standIn].WaitFor(t, settle, "the stand-in reports the services", reportsWeb)
	if !strings.Contains(exp[standIn].Logs(), "this manager stands in for it") {
		t.Errorf("the stand-in does not log it:\n%s", exp[standIn].Logs())
	}
	// A status request on the other follower reads the services there;
	// its scrapes still leave them out.
	resp, err := http.Get(exp[other].URL + "/api/v1/status")
	faultMust(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/api/v1/status on %s: %d", other.Name, resp.StatusCode)
	}
	for i := 0; i < 3; i++ {
		m, _, err := exp[other].Scrape(10 * time.Second)
		faultMust(t, err)
		if !readsClusterOnly(m) {
			t.Errorf("scrape %d of the instance on %s, neither leader nor stand-in, after a status request:\n%s", i, other.Name, m.Summary())
		}
		time.Sleep(time.Second)
	}

	faultMust(t, s.SetAvailability(leader, "active"))
	exp[standIn].WaitFor(t, settle, "the stand-in reads the cluster only again", readsClusterOnly)
	if !strings.Contains(exp[standIn].Logs(), "this manager no longer stands in for the leader") {
		t.Errorf("the end of the stand-in is not logged:\n%s", exp[standIn].Logs())
	}
	exp[leader].WaitFor(t, settle, "the leader's instance reports the services", reportsWeb)
}
