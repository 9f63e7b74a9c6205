// Package placement decides which nodes a global service's placement
// constraints ("node.role==manager", "node.labels.zone!=edge", …) let it
// run on, the way Docker's global orchestrators evaluate them. The exporter
// needs it to count how many tasks a global service should run: Docker's
// own DesiredTasks leaves out nodes whose task keeps being rejected, which
// hides exactly the failures operators want to see. A service's platforms
// do not take part: the orchestrators create a task on a node of any
// platform, which the scheduler then leaves pending.
package placement

import (
	"net"
	"regexp"
	"strings"
)

// Node is what constraints and platforms are evaluated against.
type Node struct {
	ID           string
	Hostname     string
	Role         string // "manager" or "worker"
	Addr         string // the node's IP address (Status.Addr)
	OS           string
	Architecture string
	Labels       map[string]string // node labels (Spec.Labels)
	EngineLabels map[string]string // engine labels (Description.Engine.Labels)
}

type operator uint8

const (
	equal operator = iota
	notEqual
)

type constraint struct {
	key   string
	op    operator
	value string
}

// The same syntax Docker accepts when a service is created: anything else is
// refused by the daemon, so malformed expressions only reach us through old
// or hand-edited state.
var (
	keyPattern   = regexp.MustCompile(`^(?i)[a-z_][a-z0-9\-_.]+$`)
	valuePattern = regexp.MustCompile(`^(?i)[a-z0-9:\-_\s.*()?+\[\]\\^$|/]+$`)
)

// Constraints is a parsed list of placement constraints. The zero value
// matches every node.
type Constraints struct {
	list []constraint
}

// Parse parses placement constraints. Like Docker's orchestrator, which
// ignores the result of a failed parse, a list holding any malformed
// expression is returned as "no constraints" (every node matches) together
// with the error, so that callers can report it.
func Parse(exprs []string) (Constraints, error) {
	var out Constraints
	for _, e := range exprs {
		c, err := parseOne(e)
		if err != nil {
			return Constraints{}, err
		}
		out.list = append(out.list, c)
	}
	return out, nil
}

func parseOne(e string) (constraint, error) {
	// "==" is tried before "!=", as Docker does: "a!=b==c" splits on "==".
	for _, op := range [...]struct {
		text string
		op   operator
	}{{"==", equal}, {"!=", notEqual}} {
		key, value, found := strings.Cut(e, op.text)
		if !found {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !keyPattern.MatchString(key) {
			return constraint{}, &SyntaxError{Expr: e, Reason: "invalid key " + quote(key)}
		}
		if !valuePattern.MatchString(value) {
			return constraint{}, &SyntaxError{Expr: e, Reason: "invalid value " + quote(value)}
		}
		return constraint{key: key, op: op.op, value: value}, nil
	}
	return constraint{}, &SyntaxError{Expr: e, Reason: "expected one operator from ==, !="}
}

func quote(s string) string { return "'" + s + "'" }

// SyntaxError reports a constraint Docker would have refused.
type SyntaxError struct {
	Expr   string
	Reason string
}

func (e *SyntaxError) Error() string {
	return "placement constraint " + quote(e.Expr) + ": " + e.Reason
}

const (
	nodeLabelPrefix   = "node.labels."
	engineLabelPrefix = "engine.labels."
)

// Match reports whether the node satisfies every constraint. Values compare
// case-insensitively; label names are case-sensitive; a missing label
// compares as the empty string; an unknown key matches no node. These are
// Docker's rules.
func (cs Constraints) Match(n *Node) bool {
	for _, c := range cs.list {
		if !c.match(n) {
			return false
		}
	}
	return true
}

func (c constraint) match(n *Node) bool {
	key := c.key
	switch {
	case strings.EqualFold(key, "node.id"):
		return c.compare(n.ID)
	case strings.EqualFold(key, "node.hostname"):
		return c.compare(n.Hostname)
	case strings.EqualFold(key, "node.role"):
		return c.compare(n.Role)
	case strings.EqualFold(key, "node.platform.os"):
		return c.compare(n.OS)
	case strings.EqualFold(key, "node.platform.arch"):
		return c.compare(n.Architecture)
	case strings.EqualFold(key, "node.ip"):
		return c.matchIP(n.Addr)
	case hasPrefixFold(key, nodeLabelPrefix):
		return c.compare(n.Labels[key[len(nodeLabelPrefix):]])
	case hasPrefixFold(key, engineLabelPrefix):
		return c.compare(n.EngineLabels[key[len(engineLabelPrefix):]])
	default:
		return false
	}
}

func (c constraint) compare(actual string) bool {
	return strings.EqualFold(c.value, actual) == (c.op == equal)
}

// matchIP accepts a single address or a CIDR subnet; a malformed address
// matches no node, whatever the operator.
func (c constraint) matchIP(addr string) bool {
	nodeIP := net.ParseIP(addr)
	if ip := net.ParseIP(c.value); ip != nil {
		return ip.Equal(nodeIP) == (c.op == equal)
	}
	if _, subnet, err := net.ParseCIDR(c.value); err == nil {
		return subnet.Contains(nodeIP) == (c.op == equal)
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) > len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
