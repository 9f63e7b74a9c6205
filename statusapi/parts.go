package statusapi

import (
	"errors"
	"fmt"

	"github.com/swarm-exporter/swarm_exporter/health"
	"github.com/swarm-exporter/swarm_exporter/report"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

// Parts are the sections a caller may ask for; "" is the whole report.
var Parts = []string{"cluster", "services", "nodes"}

// Exit codes of the status command, for cron jobs and shell scripts.
const (
	ExitOK         = 0
	ExitWarning    = 1
	ExitKO         = 2
	ExitUnreadable = 3
	ExitUsage      = 64 // EX_USAGE from sysexits.h
)

// Part returns the value to encode for a part of the report, as the
// original library's functions returned them.
func Part(g *Generic, part string) (any, error) {
	type meta struct {
		ReadAt string     `json:"read_at"`
		Error  *ReadError `json:"error,omitempty"`
	}
	m := meta{ReadAt: g.ReadAt, Error: g.Error}
	switch part {
	case "":
		return g, nil
	case "cluster":
		return struct {
			ClusterPart
			meta
		}{g.ClusterPart, m}, nil
	case "services":
		return struct {
			ServicesPart
			meta
		}{g.ServicesPart, m}, nil
	case "nodes":
		return struct {
			NodesPart
			meta
		}{g.NodesPart, m}, nil
	}
	return nil, fmt.Errorf("unknown part %q: want one of %v", part, Parts)
}

// ExitCode is the status command's exit code for a part: the overall
// status for the whole report, the cluster's or the services' own status
// for those parts (0 OK, 1 WARNING, 2 KO), 0 for the nodes, and 3 when the
// part could not be read.
func ExitCode(r *report.Report, part string) int {
	if !r.Up {
		return ExitUnreadable
	}
	switch part {
	case "":
		return statusCode(r.Overall)
	case "cluster":
		return statusCode(r.Cluster.Status)
	case "services":
		if !r.ServicesKnown {
			return ExitUnreadable
		}
		return statusCode(r.ServicesStatus)
	case "nodes":
		if r.NoLeader {
			return ExitUnreadable
		}
		return ExitOK
	}
	return ExitUsage
}

func statusCode(s health.Status) int {
	switch s {
	case health.OK:
		return ExitOK
	case health.Warning:
		return ExitWarning
	}
	return ExitKO
}

func readError(err error) *ReadError {
	if err == nil {
		return nil
	}
	re := &ReadError{Message: err.Error()}
	var e *swarm.Error
	if errors.As(err, &e) {
		re.Reason, re.Hint = string(e.Kind), e.Hint
	}
	return re
}
