package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
)

// The alert matrix takes what each row must notify from the runbook's
// "What pages when" table, so that the two cannot disagree: a row names
// its event (the table's first column) and which node, service or
// exporter the table's words ("for the worker", "for the service", "for
// that exporter") mean.

// mxNotified is one alert of the table's "Notified" column.
type mxNotified struct {
	Alert, Severity string
	Target          string // what it is "for": worker, manager, swarm, service, exporter…
}

var mxNotifiedRE = regexp.MustCompile("`(Swarm[A-Za-z]+)` \\((critical|warning|info)\\)(?: for (?:the|that|each) ([a-z]+))?")

// mxRunbookEvents parses the runbook's "What pages when" table: event →
// what is notified ("nothing" gives none).
func mxRunbookEvents() (map[string][]mxNotified, error) {
	b, err := os.ReadFile(monitoring.Path(monitoring.RunbookFile))
	if err != nil {
		return nil, err
	}
	events := map[string][]mxNotified{}
	inTable := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			inTable = strings.TrimSpace(line) == "## What pages when"
			continue
		case !inTable || !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| Event") || strings.HasPrefix(line, "| ---"):
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 2 {
			return nil, fmt.Errorf("runbook: a What pages when row without a Notified cell: %s", line)
		}
		event, notified := strings.TrimSpace(cells[0]), strings.TrimSpace(cells[1])
		list := []mxNotified{}
		for _, m := range mxNotifiedRE.FindAllStringSubmatch(notified, -1) {
			list = append(list, mxNotified{Alert: m[1], Severity: m[2], Target: m[3]})
		}
		if len(list) == 0 && notified != "nothing" {
			return nil, fmt.Errorf("runbook: %q: the Notified cell names no alert and does not say nothing: %s", event, notified)
		}
		events[event] = list
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("%s has no \"What pages when\" table", monitoring.RunbookFile)
	}
	return events, nil
}

// mxBind says what the runbook's words mean in a row: which node is "the
// worker" or "the manager", which service "the service", which exporter
// (by its node) "that exporter", and the fault and heal the latencies
// count from.
type mxBind struct {
	Node, Service, Instance string
	Fault, Heal             string
}

// Runbook expects what the runbook's table says the event notifies, each
// alert once firing and once resolved, and shows the event under the row.
func (x *mxRun) Runbook(event string, b mxBind) []mxExpect {
	x.t.Helper()
	list, ok := x.m.runbook[event]
	if !ok {
		x.t.Fatalf("the runbook's What pages when table has no event %q", event)
	}
	var out []mxExpect
	for _, n := range list {
		var obj mxObj
		switch n.Target {
		case "worker", "manager", "node":
			obj = nodeObj(b.Node)
		case "service":
			obj = serviceObj(b.Service)
		case "exporter":
			obj = instObj(b.Instance)
		case "swarm", "":
			obj = swarmObj()
		default:
			x.t.Fatalf("runbook event %q: %s is for %q: the matrix does not know which object that is", event, n.Alert, n.Target)
		}
		if obj.Kind != "swarm" && obj.Name == "" {
			x.t.Fatalf("runbook event %q: %s is for the %s, which the row does not bind", event, n.Alert, n.Target)
		}
		out = append(out, page(n.Alert, n.Severity, obj).after(b.Fault, b.Heal))
	}
	x.Expect(out...)
	x.Note("runbook: %s", event)
	return out
}

// TestAlertMatrixRunbook checks that every event the matrix's rows name is
// in the runbook's table (without a swarm).
func TestAlertMatrixRunbook(t *testing.T) {
	events, err := mxRunbookEvents()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range mxRowEvents {
		if _, ok := events[e]; !ok {
			t.Errorf("the matrix names the event %q, which the runbook's What pages when table does not have", e)
		}
	}
}
