package collector

import (
	"github.com/swarm-exporter/swarm_exporter/report"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

func init() {
	register("nodes", "one set of series per node (info, state, availability, manager reachability, leader)", true,
		func() Subcollector { return nodesCollector{} })
}

var (
	nodeInfoFamily = newFamily("docker_swarm_node_info",
		"A swarm node and its static properties; always 1.",
		"node_id", "hostname", "role", "engine_version", "address", "os", "architecture")
	nodeStateFamily = newFamily("docker_swarm_node_state",
		"A node's state, one series per state (ready, down, unknown, disconnected) with the current one at 1.",
		"node_id", "hostname", "state")
	nodeAvailabilityFamily = newFamily("docker_swarm_node_availability",
		"A node's availability, one series per availability (active, pause, drain) with the current one at 1.",
		"node_id", "hostname", "availability")
	nodeReachabilityFamily = newFamily("docker_swarm_node_manager_reachability",
		"A manager's reachability, one series per value (reachable, unreachable, unknown) with the current one at 1.",
		"node_id", "hostname", "reachability")
	nodeLeaderFamily = newFamily("docker_swarm_node_leader",
		"1 when the manager is the swarm's leader, 0 for the other managers.",
		"node_id", "hostname")
)

type nodesCollector struct{}

func (nodesCollector) Update(r *report.Report, out *emitter) error {
	if !r.Up || r.NoLeader {
		return ErrNoData
	}
	for i := range r.Nodes {
		n := &r.Nodes[i]
		out.gauge(nodeInfoFamily, 1, n.ID, n.Hostname, n.Role(), n.EngineVersion, n.Addr, n.OS, n.Architecture)
		for _, s := range swarm.NodeStates {
			out.gauge(nodeStateFamily, boolValue(s == n.State), n.ID, n.Hostname, s.String())
		}
		for _, a := range swarm.Availabilities {
			out.gauge(nodeAvailabilityFamily, boolValue(a == n.Availability), n.ID, n.Hostname, a.String())
		}
		if !n.Manager {
			continue
		}
		for _, re := range swarm.Reachabilities {
			out.gauge(nodeReachabilityFamily, boolValue(re == n.Reachability), n.ID, n.Hostname, re.String())
		}
		out.gauge(nodeLeaderFamily, boolValue(n.Leader), n.ID, n.Hostname)
	}
	return nil
}
