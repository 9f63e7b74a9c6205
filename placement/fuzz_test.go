package placement

// Fuzz targets for the placement evaluator. Any list of expressions, any
// node: no panic, and the same answer as a straightforward port of Docker's
// own evaluator (swarmkit's manager/constraint package), including for
// malformed lists, which match every node because Docker's global
// orchestrator ignores a failed parse.
//
// To fuzz: go test ./placement -run '^$' -fuzz '^FuzzConstraints$' -parallel 1 -fuzztime 5m

import (
	"errors"
	"net"
	"regexp"
	"strings"
	"testing"
)

// --- reference: swarmkit's constraint package, as written there ---

var (
	refAlphaNumeric = regexp.MustCompile(`^(?i)[a-z_][a-z0-9\-_.]+$`)
	refValuePattern = regexp.MustCompile(`^(?i)[a-z0-9:\-_\s\.\*\(\)\?\+\[\]\\\^\$\|\/]+$`)
	refOperators    = []string{"==", "!="}
)

type refConstraint struct {
	key      string
	operator int
	exp      string
}

func refParse(env []string) ([]refConstraint, error) {
	exprs := []refConstraint{}
	for _, e := range env {
		found := false
		for i, op := range refOperators {
			if !strings.Contains(e, op) {
				continue
			}
			parts := strings.SplitN(e, op, 2)
			if len(parts) < 2 {
				return nil, errors.New("invalid expr: " + e)
			}
			part0 := strings.TrimSpace(parts[0])
			if !refAlphaNumeric.MatchString(part0) {
				return nil, errors.New("key is invalid")
			}
			part1 := strings.TrimSpace(parts[1])
			if !refValuePattern.MatchString(part1) {
				return nil, errors.New("value is invalid")
			}
			exprs = append(exprs, refConstraint{key: part0, operator: i, exp: part1})
			found = true
			break
		}
		if !found {
			return nil, errors.New("constraint expected one operator from ==, !=")
		}
	}
	return exprs, nil
}

func (c *refConstraint) match(whats ...string) bool {
	var match bool
	for _, what := range whats {
		if strings.EqualFold(c.exp, what) {
			match = true
			break
		}
	}
	switch c.operator {
	case 0:
		return match
	case 1:
		return !match
	}
	return false
}

func refNodeMatches(constraints []refConstraint, n *Node) bool {
	for _, constraint := range constraints {
		switch {
		case strings.EqualFold(constraint.key, "node.id"):
			if !constraint.match(n.ID) {
				return false
			}
		case strings.EqualFold(constraint.key, "node.hostname"):
			if !constraint.match(n.Hostname) {
				return false
			}
		case strings.EqualFold(constraint.key, "node.ip"):
			nodeIP := net.ParseIP(n.Addr)
			if ip := net.ParseIP(constraint.exp); ip != nil {
				ipEq := ip.Equal(nodeIP)
				if (ipEq && constraint.operator != 0) || (!ipEq && constraint.operator == 0) {
					return false
				}
				continue
			}
			if _, subnet, err := net.ParseCIDR(constraint.exp); err == nil {
				within := subnet.Contains(nodeIP)
				if (within && constraint.operator != 0) || (!within && constraint.operator == 0) {
					return false
				}
				continue
			}
			return false
		case strings.EqualFold(constraint.key, "node.role"):
			// swarmkit compares with api.NodeRole's name (MANAGER, WORKER).
			if !constraint.match(strings.ToUpper(n.Role)) {
				return false
			}
		case strings.EqualFold(constraint.key, "node.platform.os"):
			if !constraint.match(n.OS) {
				return false
			}
		case strings.EqualFold(constraint.key, "node.platform.arch"):
			if !constraint.match(n.Architecture) {
				return false
			}
		case len(constraint.key) > len(nodeLabelPrefix) && strings.EqualFold(constraint.key[:len(nodeLabelPrefix)], nodeLabelPrefix):
			if n.Labels == nil {
				if !constraint.match("") {
					return false
				}
				continue
			}
			if !constraint.match(n.Labels[constraint.key[len(nodeLabelPrefix):]]) {
				return false
			}
		case len(constraint.key) > len(engineLabelPrefix) && strings.EqualFold(constraint.key[:len(engineLabelPrefix)], engineLabelPrefix):
			if n.EngineLabels == nil {
				if !constraint.match("") {
					return false
				}
				continue
			}
			if !constraint.match(n.EngineLabels[constraint.key[len(engineLabelPrefix):]]) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// --- targets ---

// sep separates the expressions of one fuzz input: it is neither a space nor
// allowed in a key or value.
const sep = "\x1f"

var fixedNodes = []*Node{
	manager, worker,
	{ID: "n3", Hostname: "NODE-3", Role: "manager", Addr: "2001:db8::7", OS: "windows", Architecture: "arm64",
		Labels: map[string]string{"": "empty-name", "zone": "", "a.b": "x==y"}},
	{}, // a node with nothing known
}

func FuzzConstraints(f *testing.F) {
	for _, s := range []string{
		"node.role==manager", "node.role != worker", "node.hostname==w1" + sep + "node.id!=m1id",
		"node.labels.zone==east", "NODE.LABELS.zone==EAST", "node.labels.Disk==ssd", "engine.labels.tier==gold",
		"node.ip==10.0.0.1", "node.ip!=10.0.0.0/24", "node.ip==2001:db8::/32", "node.ip==not-an-ip",
		"node.platform.os==linux", "node.platform.arch==x86_64", "node.colour==blue",
		"node.role", "node.role>manager", "1node==x", "node.role==a<b", "==x", "", sep, "a!=b==c", "a==b!=c",
		"node.labels.==x", "node.labels.a b==c", "node.labels.zone== ", "node.labels.zone==\t east \n",
		"node.role==manager" + sep + "node.role", "node.labelſ.zone==east", "node.labels.zone==ſ",
		"node.id==(a|b)*", "node.id==\\", "node.labels.a.b==x", "k==v" + sep + "k!=v",
	} {
		f.Add(s, "h", true, "10.0.0.1", "zone", "east")
	}
	f.Add("node.ip==::ffff:10.0.0.1", "h", false, "10.0.0.1", "", "")
	f.Add("node.ip!=not-an-ip", "h", false, "10.0.0.1", "", "")
	f.Add("node.ip!=10.0.0.0/8", "h", false, "not-an-ip", "", "")
	f.Add("node.role==worker", "h", false, "", "arm64", "linux")       // platform arm64 on an aarch64 node
	f.Add("node.role==worker", "h", false, "", "amd64", "")            // platform amd64 on an x86_64 node
	f.Add("node.platform.arch==aarch64", "h", false, "", "x86_64", "") // no normalisation in constraints
	f.Add("node.labels.K==v", "h", false, "", "k", "V")
	f.Fuzz(func(t *testing.T, list, hostname string, isManager bool, addr, label, value string) {
		exprs := strings.Split(list, sep)
		role := "worker"
		if isManager {
			role = "manager"
		}
		fuzzed := &Node{ID: hostname + "-id", Hostname: hostname, Role: role, Addr: addr, OS: value, Architecture: label,
			Labels: map[string]string{label: value}, EngineLabels: map[string]string{value: label}}
		nodes := append([]*Node{fuzzed}, fixedNodes...)

		cs, err := Parse(exprs)
		ref, refErr := refParse(exprs)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("Parse(%q): err = %v, Docker's parser: err = %v", exprs, err, refErr)
		}
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Error() == "" {
				t.Fatalf("Parse(%q): error %v is not a *SyntaxError", exprs, err)
			}
			// Docker's orchestrator ignores the error: no constraint at all.
			ref = nil
		}
		for i, n := range nodes {
			got := cs.Match(n)
			if want := refNodeMatches(ref, n); got != want {
				t.Fatalf("Parse(%q).Match(node %d %+v) = %v, Docker: %v", exprs, i, n, got, want)
			}
			if err != nil && !got {
				t.Fatalf("a malformed list %q must match every node", exprs)
			}
			// A list matches when each of its constraints does.
			if err == nil {
				all := true
				for _, e := range exprs {
					one, _ := Parse([]string{e})
					all = all && one.Match(n)
				}
				if all != got {
					t.Fatalf("%q on node %d: list %v, conjunction of its constraints %v", exprs, i, got, all)
				}
			}
		}
	})
}

// TestReferenceAgreesOnTable makes sure the reference is not vacuous: it
// gives the documented answers of TestMatch.
func TestReferenceAgreesOnTable(t *testing.T) {
	for _, tt := range []struct {
		expr            string
		manager, worker bool
	}{
		{"node.role==manager", true, false},
		{"node.labels.zone!=east", false, true},
		{"node.labels.disk==ssd", false, false},
		{"node.ip!=10.0.0.0/24", false, true},
		{"node.colour==blue", false, false},
	} {
		ref, err := refParse([]string{tt.expr})
		if err != nil {
			t.Fatal(err)
		}
		if refNodeMatches(ref, manager) != tt.manager || refNodeMatches(ref, worker) != tt.worker {
			t.Errorf("reference disagrees on %q", tt.expr)
		}
	}
}
