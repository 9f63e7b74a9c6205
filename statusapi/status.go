// Package statusapi renders a report in the JSON shape of py-docker's
// SummaryInfo (generic_status(), cluster_status(), services_status(),
// nodes_info()), whose users script against it, and as human tables. It
// serves the JSON under /api/v1/status and backs the `status` command.
package statusapi

import (
	"time"

	"github.com/swarm-exporter/swarm_exporter/report"
)

// Generic is generic_status(): the cluster, its nodes and its services.
// The keys of the original are kept as they were; the ones it lacked are
// additions (see docs/status-api.md).
type Generic struct {
	ClusterPart
	NodesPart
	ServicesPart
	// StatusOverall is the worse of the cluster and services statuses.
	StatusOverall *string `json:"status_overall"`
	ReadAt        string  `json:"read_at"`
	// Error says why the swarm could not be read; the other keys are then
	// null. While the swarm has no leader, only status_cluster (from the
	// manager's totals) and status_overall are set.
	Error *ReadError `json:"error,omitempty"`
}

// ClusterPart is cluster_status().
type ClusterPart struct {
	StatusCluster *ClusterStatus `json:"status_cluster"`
}

// ClusterStatus is the original's status_cluster object.
type ClusterStatus struct {
	TotalNodes  *int      `json:"total_nodes"`  // null while the swarm has no leader
	TotalReadys *int      `json:"total_readys"` // null while the swarm has no leader
	Workers     RoleCount `json:"workers"`      // total null while the swarm has no leader
	Managers    RoleCount `json:"managers"`
	Status      string    `json:"status"`
	// Additions.
	Conditions        []string `json:"conditions"`
	ManagersReachable *int     `json:"managers_reachable"`
	Quorum            int      `json:"quorum"`
}

// RoleCount is the original's {"total", "ready"}.
type RoleCount struct {
	Total *int `json:"total"`
	Ready *int `json:"ready"`
}

// NodesPart is nodes_info().
type NodesPart struct {
	Nodes []Node `json:"nodes"`
}

// Node is the original's node summary; manager_status and manager_addr are
// present for managers only, as in the original.
type Node struct {
	ID            string `json:"id"`
	Hostname      string `json:"hostname"`
	EngineVersion string `json:"engine_version"`
	Status        string `json:"status"`
	ManagerStatus string `json:"manager_status,omitempty"`
	ManagerAddr   string `json:"manager_addr,omitempty"`
	// Additions.
	Role         string `json:"role"`
	Availability string `json:"availability"`
	Leader       bool   `json:"leader"`
	Address      string `json:"address"`
}

// ServicesPart is services_status(): the services and their aggregate
// status, plus the jobs the original could not handle.
type ServicesPart struct {
	Services []Service `json:"services"`
	Status   *string   `json:"status"`
	Jobs     []Job     `json:"jobs"`
}

// Service is the original's service summary.
type Service struct {
	IDService string `json:"id_service"`
	Replicas  int    `json:"replicas"`
	Running   int    `json:"running"`
	Status    string `json:"status"`
	// Additions.
	Name        string `json:"name"`
	Mode        string `json:"mode"`
	Stack       string `json:"stack"`
	UpdateState string `json:"update_state,omitempty"`
}

// Job is a replicated or global job: no status, its completions instead.
type Job struct {
	IDService string `json:"id_service"`
	Name      string `json:"name"`
	Mode      string `json:"mode"`
	Stack     string `json:"stack"`
	Replicas  int    `json:"replicas"`
	Running   int    `json:"running"`
	Completed int    `json:"completed"`
}

// ReadError explains a failed read.
type ReadError struct {
	Message string `json:"message"`
	Reason  string `json:"reason,omitempty"`
	Hint    string `json:"hint,omitempty"`
}

// Render builds the generic status of a report.
func Render(r *report.Report) *Generic {
	g := &Generic{ReadAt: r.ReadAt.UTC().Format(time.RFC3339Nano)}
	if !r.Up {
		g.Error = readError(r.Err)
		return g
	}
	overall := r.Overall.String()
	g.StatusOverall = &overall
	g.ClusterPart = renderCluster(r)
	if !r.NoLeader {
		g.NodesPart = renderNodes(r)
		g.ServicesPart = renderServices(r)
	}
	return g
}

func renderCluster(r *report.Report) ClusterPart {
	c := &r.Cluster
	managers := c.Managers.Total
	cs := &ClusterStatus{
		Managers:   RoleCount{Total: &managers},
		Status:     c.Status.String(),
		Conditions: []string{},
		Quorum:     c.Quorum,
	}
	for _, cond := range c.Conditions.Active() {
		cs.Conditions = append(cs.Conditions, cond.String())
	}
	if c.WorkersKnown {
		workers, total := c.Workers.Total, c.Managers.Total+c.Workers.Total
		cs.Workers.Total, cs.TotalNodes = &workers, &total
	}
	if c.StatesKnown {
		wr, mr, total, reach := c.Workers.Ready(), c.Managers.Ready(), c.Workers.Ready()+c.Managers.Ready(), c.ReachableManagers
		cs.Workers.Ready, cs.Managers.Ready, cs.TotalReadys, cs.ManagersReachable = &wr, &mr, &total, &reach
	}
	return ClusterPart{StatusCluster: cs}
}

func renderNodes(r *report.Report) NodesPart {
	p := NodesPart{Nodes: make([]Node, 0, len(r.Nodes))}
	for i := range r.Nodes {
		n := &r.Nodes[i]
		out := Node{
			ID: n.ID, Hostname: n.Hostname, EngineVersion: n.EngineVersion, Status: n.State.String(),
			Role: n.Role(), Availability: n.Availability.String(), Leader: n.Leader, Address: n.Addr,
		}
		if n.Manager {
			out.ManagerStatus = n.Reachability.String()
			out.ManagerAddr = n.ManagerAddr
		}
		p.Nodes = append(p.Nodes, out)
	}
	return p
}

func renderServices(r *report.Report) ServicesPart {
	status := r.ServicesStatus.String()
	p := ServicesPart{Services: []Service{}, Jobs: []Job{}, Status: &status}
	for i := range r.Services {
		s := &r.Services[i]
		if !s.HasStatus() {
			p.Jobs = append(p.Jobs, Job{
				IDService: s.ID, Name: s.Name, Mode: s.Mode.String(), Stack: s.Stack,
				Replicas: s.Desired, Running: s.Running, Completed: s.Completed,
			})
			continue
		}
		p.Services = append(p.Services, Service{
			IDService: s.ID, Replicas: s.Desired, Running: s.Running, Status: s.Status.String(),
			Name: s.Name, Mode: s.Mode.String(), Stack: s.Stack, UpdateState: s.UpdateState.String(),
		})
	}
	return p
}
