package collector

import (
	"github.com/swarm-exporter/swarm_exporter/health"
	"github.com/swarm-exporter/swarm_exporter/report"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

// The cluster-level metrics are always emitted: they carry the statuses
// and the aggregate counts, which must not depend on the enabled collectors.
var (
	upFamily = newFamily("docker_swarm_up",
		"1 when this scrape could read cluster state (a swarm without leader counts as read: its KO is the answer), 0 otherwise.")
	clusterStatusFamily = newFamily("docker_swarm_cluster_status",
		"Cluster status, one series per status with the current one at 1: ok (at least --health.min-managers managers and --health.min-workers workers, all ready, every manager reachable), warning (not fault tolerant, or a node not ready), ko (quorum lost, or no ready node of a required role).",
		"status")
	servicesStatusFamily = newFamily("docker_swarm_services_status",
		"Worst status of the replicated and global services (jobs excluded), ok when there is none; one series per status with the current one at 1. Absent while the swarm has no leader, and when the services were not read (--read.services=leader on a manager that is not the leader).",
		"status")
	statusFamily = newFamily("docker_swarm_status",
		"Overall status, the worse of the cluster and services statuses; one series per status with the current one at 1. Absent when the services were not read (--read.services=leader on a manager that is not the leader).",
		"status")
	conditionFamily = newFamily("docker_swarm_cluster_condition",
		"1 when a reason for a non-OK cluster status holds, 0 otherwise; every condition is always emitted and any number may hold.",
		"condition")
	localNodeInfoFamily = newFamily("docker_swarm_local_node_info",
		"The node whose Docker API this exporter reads through.",
		"node_id", "hostname", "role")
	localNodeStateFamily = newFamily("docker_swarm_local_node_state",
		"Swarm state of the node this exporter reads through, one series per state with the current one at 1.",
		"state")
	localNodeLeaderFamily = newFamily("docker_swarm_local_node_leader",
		"1 when the node this exporter reads through is the swarm's leader.")
	nodesFamily = newFamily("docker_swarm_nodes",
		"Number of nodes by role and state. Absent while the swarm has no leader.",
		"role", "state")
	nodesTotalFamily = newFamily("docker_swarm_nodes_total",
		"Number of nodes by role, whatever their state. While the swarm has no leader only the managers are known (the Raft members the manager knows of).",
		"role")
	managersReachableFamily = newFamily("docker_swarm_managers_reachable",
		"Number of managers whose reachability is reachable. Absent while the swarm has no leader.")
	managersQuorumFamily = newFamily("docker_swarm_managers_quorum",
		"Number of reachable managers the swarm needs to have a leader: a majority of all managers.")
)

func collectCluster(r *report.Report, out *emitter) {
	out.gauge(upFamily, boolValue(r.Up))
	if l := r.Local; l != nil {
		out.gauge(localNodeInfoFamily, 1, l.NodeID, l.Name, l.Role())
		for _, s := range swarm.LocalNodeStates {
			out.gauge(localNodeStateFamily, boolValue(s == l.LocalNodeState), s.String())
		}
		out.gauge(localNodeLeaderFamily, boolValue(r.LocalLeader))
	}
	if !r.Up {
		// A node that cannot see the cluster must not vote: no status.
		return
	}

	c := &r.Cluster
	statusSet(out, clusterStatusFamily, c.Status)
	if r.ServicesKnown {
		statusSet(out, servicesStatusFamily, r.ServicesStatus)
	}
	if r.OverallKnown() {
		statusSet(out, statusFamily, r.Overall)
	}
	for _, cond := range health.Conditions {
		out.gauge(conditionFamily, boolValue(c.Conditions.Has(cond)), cond.String())
	}

	out.gauge(nodesTotalFamily, float64(c.Managers.Total), "manager")
	if c.WorkersKnown {
		out.gauge(nodesTotalFamily, float64(c.Workers.Total), "worker")
	}
	out.gauge(managersQuorumFamily, float64(c.Quorum))
	if c.StatesKnown {
		for _, st := range swarm.NodeStates {
			out.gauge(nodesFamily, float64(c.Managers.ByState[st]), "manager", st.String())
			out.gauge(nodesFamily, float64(c.Workers.ByState[st]), "worker", st.String())
		}
		out.gauge(managersReachableFamily, float64(c.ReachableManagers))
	}
}

// statusSet emits a one-hot state set of statuses.
func statusSet(out *emitter, f *family, current health.Status, labels ...string) {
	var buf [4]string
	for _, s := range health.Statuses {
		out.gauge(f, boolValue(s == current), append(append(buf[:0], labels...), s.Label())...)
	}
}
