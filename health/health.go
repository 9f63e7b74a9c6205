// Package health holds the OK / WARNING / KO decision tables for a swarm and
// its services. It is pure: no I/O, no clock, no Docker types, so that every
// row of the tables is table-tested directly and the exporter's metrics, its
// status API and its CLI all share one definition of "healthy".
package health

// Status is the three-valued verdict inherited from py-docker's SummaryInfo.
// The order matters: a larger value is a worse status (see Worst).
type Status uint8

const (
	OK Status = iota
	Warning
	KO
)

// Statuses lists every status, best first. Metrics emit one series per entry
// (a one-hot state set).
var Statuses = [...]Status{OK, Warning, KO}

// String returns the status as the original library spelled it in its JSON.
func (s Status) String() string {
	switch s {
	case OK:
		return "OK"
	case Warning:
		return "WARNING"
	default:
		return "KO"
	}
}

// Label returns the status as used in metric label values.
func (s Status) Label() string {
	switch s {
	case OK:
		return "ok"
	case Warning:
		return "warning"
	default:
		return "ko"
	}
}

// Worst returns the worse of two statuses.
func Worst(a, b Status) Status {
	if a > b {
		return a
	}
	return b
}

// Quorum is the number of reachable managers that Raft needs to elect a
// leader and accept writes: a strict majority of all managers.
func Quorum(managers int) int {
	return managers/2 + 1
}
