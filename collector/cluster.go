package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarm-exporter/swarm_exporter/health"
	"github.com/swarm-exporter/swarm_exporter/report"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

// The cluster-level metrics are always emitted: they carry the statuses
// and the aggregate counts, which must not depend on the enabled collectors.
var (
	upDesc = prometheus.NewDesc("docker_swarm_up",
		"1 when this scrape could read cluster state (a swarm without leader counts as read: its KO is the answer), 0 otherwise.",
		nil, nil)
	clusterStatusDesc = prometheus.NewDesc("docker_swarm_cluster_status",
		"Cluster status, one series per status with the current one at 1: ok (at least --health.min-managers managers and --health.min-workers workers, all ready), warning (not fault tolerant, or a node not ready), ko (quorum lost, or no ready node of a required role).",
		[]string{"status"}, nil)
	servicesStatusDesc = prometheus.NewDesc("docker_swarm_services_status",
		"Worst status of the replicated and global services (jobs excluded), ok when there is none; one series per status with the current one at 1. Absent while the swarm has no leader.",
		[]string{"status"}, nil)
	statusDesc = prometheus.NewDesc("docker_swarm_status",
		"Overall status, the worse of the cluster and services statuses; one series per status with the current one at 1.",
		[]string{"status"}, nil)
	conditionDesc = prometheus.NewDesc("docker_swarm_cluster_condition",
		"1 when a reason for a non-OK cluster status holds, 0 otherwise; every condition is always emitted and any number may hold.",
		[]string{"condition"}, nil)
	localNodeInfoDesc = prometheus.NewDesc("docker_swarm_local_node_info",
		"The node whose Docker API this exporter reads through.",
		[]string{"node_id", "hostname", "role"}, nil)
	localNodeStateDesc = prometheus.NewDesc("docker_swarm_local_node_state",
		"Swarm state of the node this exporter reads through, one series per state with the current one at 1.",
		[]string{"state"}, nil)
	localNodeLeaderDesc = prometheus.NewDesc("docker_swarm_local_node_leader",
		"1 when the node this exporter reads through is the swarm's leader.",
		nil, nil)
	nodesDesc = prometheus.NewDesc("docker_swarm_nodes",
		"Number of nodes by role and state. Absent while the swarm has no leader.",
		[]string{"role", "state"}, nil)
	nodesTotalDesc = prometheus.NewDesc("docker_swarm_nodes_total",
		"Number of nodes by role, whatever their state. While the swarm has no leader only the managers are known (the Raft members the manager knows of).",
		[]string{"role"}, nil)
	managersReachableDesc = prometheus.NewDesc("docker_swarm_managers_reachable",
		"Number of managers whose reachability is reachable. Absent while the swarm has no leader.",
		nil, nil)
	managersQuorumDesc = prometheus.NewDesc("docker_swarm_managers_quorum",
		"Number of reachable managers the swarm needs to have a leader: a majority of all managers.",
		nil, nil)
)

func collectCluster(r *report.Report, ch chan<- prometheus.Metric) {
	ch <- gauge(upDesc, boolValue(r.Up))
	if l := r.Local; l != nil {
		role := "worker"
		if l.ControlAvailable {
			role = "manager"
		}
		ch <- gauge(localNodeInfoDesc, 1, l.NodeID, l.Name, role)
		for _, s := range swarm.LocalNodeStates {
			ch <- gauge(localNodeStateDesc, boolValue(s == l.LocalNodeState), s.String())
		}
		ch <- gauge(localNodeLeaderDesc, boolValue(r.LocalLeader))
	}
	if !r.Up {
		// A node that cannot see the cluster must not vote: no status.
		return
	}

	c := &r.Cluster
	statusSet(ch, clusterStatusDesc, c.Status)
	if r.ServicesKnown {
		statusSet(ch, servicesStatusDesc, r.ServicesStatus)
	}
	statusSet(ch, statusDesc, r.Overall)
	for _, cond := range health.Conditions {
		ch <- gauge(conditionDesc, boolValue(c.Conditions.Has(cond)), cond.String())
	}

	ch <- gauge(nodesTotalDesc, float64(c.Managers.Total), "manager")
	if c.WorkersKnown {
		ch <- gauge(nodesTotalDesc, float64(c.Workers.Total), "worker")
	}
	ch <- gauge(managersQuorumDesc, float64(c.Quorum))
	if c.StatesKnown {
		for _, st := range swarm.NodeStates {
			ch <- gauge(nodesDesc, float64(c.Managers.ByState[st]), "manager", st.String())
			ch <- gauge(nodesDesc, float64(c.Workers.ByState[st]), "worker", st.String())
		}
		ch <- gauge(managersReachableDesc, float64(c.ReachableManagers))
	}
}

// statusSet emits a one-hot state set of statuses.
func statusSet(ch chan<- prometheus.Metric, desc *prometheus.Desc, current health.Status, labels ...string) {
	for _, s := range health.Statuses {
		ch <- gauge(desc, boolValue(s == current), append(labels, s.Label())...)
	}
}
