package placement

import (
	"errors"
	"testing"
)

var (
	manager = &Node{ID: "m1id", Hostname: "m1", Role: "manager", Addr: "10.0.0.1", OS: "linux", Architecture: "x86_64",
		Labels: map[string]string{"zone": "east", "Disk": "ssd"}, EngineLabels: map[string]string{"tier": "gold"}}
	worker = &Node{ID: "w1id", Hostname: "w1", Role: "worker", Addr: "10.0.1.7", OS: "linux", Architecture: "aarch64"}
)

func TestMatch(t *testing.T) {
	tests := []struct {
		exprs           []string
		manager, worker bool
	}{
		{nil, true, true},
		{[]string{"node.role==manager"}, true, false},
		{[]string{"node.role == MANAGER"}, true, false},
		{[]string{"node.role!=manager"}, false, true},
		{[]string{"node.hostname==w1"}, false, true},
		{[]string{"node.id==m1id"}, true, false},
		{[]string{"node.platform.os==linux", "node.platform.arch==x86_64"}, true, false},
		{[]string{"node.labels.zone==east"}, true, false},
		{[]string{"node.labels.zone!=east"}, false, true}, // a missing label compares as ""
		{[]string{"node.labels.zone==EAST"}, true, false}, // values compare case-insensitively
		{[]string{"node.labels.disk==ssd"}, false, false}, // label names are case-sensitive
		{[]string{"NODE.LABELS.zone==east"}, true, false},
		{[]string{"engine.labels.tier==gold"}, true, false},
		{[]string{"node.ip==10.0.0.1"}, true, false},
		{[]string{"node.ip!=10.0.0.0/24"}, false, true},
		{[]string{"node.ip==10.0.0.0/16"}, true, true},
		{[]string{"node.ip==not-an-ip"}, false, false},
		{[]string{"node.colour==blue"}, false, false}, // unknown keys match no node
		{[]string{"node.role==manager", "node.labels.zone==west"}, false, false},
	}
	for _, tt := range tests {
		cs, err := Parse(tt.exprs)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.exprs, err)
		}
		if got := cs.Match(manager); got != tt.manager {
			t.Errorf("%q on manager = %v, want %v", tt.exprs, got, tt.manager)
		}
		if got := cs.Match(worker); got != tt.worker {
			t.Errorf("%q on worker = %v, want %v", tt.exprs, got, tt.worker)
		}
	}
}

func TestParseErrorsMatchEveryNode(t *testing.T) {
	for _, bad := range []string{"node.role", "node.role>manager", "1node==x", "node.role==a<b", "==x", ""} {
		cs, err := Parse([]string{"node.role==worker", bad})
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) error = %v, want a SyntaxError", bad, err)
		}
		if !cs.Match(manager) || !cs.Match(worker) {
			t.Errorf("Parse(%q): a malformed list must match every node, as Docker's orchestrator does", bad)
		}
	}
}
