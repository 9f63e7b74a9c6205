package statusapi

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/swarm-exporter/swarm_exporter/report"
)

// WriteTable prints a part of the report as `docker node ls` and
// `docker service ls` do, with the statuses.
func WriteTable(w io.Writer, r *report.Report, part string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	if !r.Up {
		fmt.Fprintf(tw, "SWARM UNREADABLE\t%v\n", r.Err)
		if e := readError(r.Err); e != nil && e.Hint != "" {
			fmt.Fprintf(tw, "HINT\t%s\n", e.Hint)
		}
		return tw.Flush()
	}
	if part == "" || part == "cluster" {
		writeCluster(tw, r)
	}
	if r.NoLeader && part != "cluster" {
		fmt.Fprintln(tw, "\nThe swarm has no leader: nodes and services cannot be listed until quorum is restored.")
		return tw.Flush()
	}
	if part == "" || part == "nodes" {
		if part == "" {
			fmt.Fprintln(tw)
		}
		writeNodes(tw, r)
	}
	if part == "" || part == "services" {
		if part == "" {
			fmt.Fprintln(tw)
		}
		writeServices(tw, r)
	}
	return tw.Flush()
}

func writeCluster(w io.Writer, r *report.Report) {
	c := &r.Cluster
	conds := make([]string, 0, 4)
	for _, cond := range c.Conditions.Active() {
		conds = append(conds, cond.String())
	}
	fmt.Fprintf(w, "STATUS\t%s\n", r.Overall)
	fmt.Fprintf(w, "CLUSTER\t%s\t%s\n", c.Status, strings.Join(conds, ","))
	if r.ServicesKnown {
		fmt.Fprintf(w, "SERVICES\t%s\n", r.ServicesStatus)
	}
	if c.StatesKnown {
		fmt.Fprintf(w, "MANAGERS\t%d/%d ready\t%d reachable, quorum %d\n", c.Managers.Ready(), c.Managers.Total, c.ReachableManagers, c.Quorum)
		fmt.Fprintf(w, "WORKERS\t%d/%d ready\n", c.Workers.Ready(), c.Workers.Total)
	} else {
		fmt.Fprintf(w, "MANAGERS\t%d\tquorum %d, no leader\n", c.Managers.Total, c.Quorum)
	}
}

func writeNodes(w io.Writer, r *report.Report) {
	fmt.Fprintln(w, "ID\tHOSTNAME\tSTATUS\tAVAILABILITY\tMANAGER STATUS\tENGINE VERSION")
	for i := range r.Nodes {
		n := &r.Nodes[i]
		mgr := ""
		switch {
		case n.Leader:
			mgr = "Leader"
		case n.Manager:
			mgr = capitalise(n.Reachability.String())
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, n.Hostname, capitalise(n.State.String()),
			capitalise(n.Availability.String()), mgr, n.EngineVersion)
	}
}

func writeServices(w io.Writer, r *report.Report) {
	fmt.Fprintln(w, "ID\tNAME\tMODE\tREPLICAS\tSTATUS\tIMAGE")
	for i := range r.Services {
		s := &r.Services[i]
		replicas := fmt.Sprintf("%d/%d", s.Running, s.Desired)
		status := s.Status.String()
		if !s.HasStatus() {
			replicas += fmt.Sprintf(" (%d completed)", s.Completed)
			status = "-"
		}
		if s.UpdateState.InProgress() {
			status += " (" + s.UpdateState.String() + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", shortID(s.ID), s.Name, s.Mode, replicas, status, s.Image)
	}
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
