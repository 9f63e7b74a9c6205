package swarmtest

import (
	"fmt"
	"net/netip"
	"strings"
)

// setupBridge creates the host bridge, gives it the first address of the
// subnet and lets bridged traffic through the host FORWARD chain.
func (s *Swarm) setupBridge() error {
	steps := [][]string{
		{"ip", "link", "add", s.bridge, "type", "bridge", "forward_delay", "0"},
		{"ip", "addr", "add", s.hostIP + "/24", "dev", s.bridge},
		{"ip", "link", "set", s.bridge, "up"},
		// Once any dockerd has set the FORWARD policy to DROP (and
		// br_netfilter makes bridged frames traverse it), traffic between
		// the namespaces is dropped and `swarm join` times out.
		iptablesRule("-I", s.bridge),
	}
	for _, st := range steps {
		if err := mustRun(st[0], st[1:]...); err != nil {
			return fmt.Errorf("swarmtest: bridge: %w", err)
		}
	}
	return nil
}

// iptablesRule is the FORWARD rule for the bridge, inserted first with -I
// and removed with -D.
func iptablesRule(op, bridge string) []string {
	r := []string{"iptables", "-w", op, "FORWARD"}
	if op == "-I" {
		r = append(r, "1")
	}
	return append(r, "-i", bridge, "-o", bridge, "-m", "comment", "--comment", IptablesComment, "-j", "ACCEPT")
}

// setupNode creates the node's network namespace and wires it to the bridge.
// Inside, the node's interface is eth0 with the node's address; there is no
// default route, so nothing a node does can leave the subnet.
func (s *Swarm) setupNode(n *Node) error {
	unlock := netnsLock()
	err := mustRun("ip", "netns", "add", n.Netns)
	unlock()
	if err != nil {
		return fmt.Errorf("swarmtest: node %s network: %w", n.Name, err)
	}
	steps := [][]string{
		{"ip", "link", "add", n.Netns, "type", "veth", "peer", "name", "eth0", "netns", n.Netns},
		{"ip", "link", "set", n.Netns, "master", s.bridge, "up"},
		{"ip", "-n", n.Netns, "addr", "add", n.IP + "/24", "dev", "eth0"},
		{"ip", "-n", n.Netns, "link", "set", "eth0", "up"},
		{"ip", "-n", n.Netns, "link", "set", "lo", "up"},
	}
	for _, st := range steps {
		if err := mustRun(st[0], st[1:]...); err != nil {
			return fmt.Errorf("swarmtest: node %s network: %w", n.Name, err)
		}
	}
	return nil
}

// prefixedLinks lists host links whose name starts with prefix+"-".
func prefixedLinks(prefix string) ([]string, error) {
	out, err := run(bg(), "ip", "-o", "link", "show")
	if err != nil {
		return nil, err
	}
	var links []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name := strings.TrimSuffix(f[1], ":")
		if i := strings.IndexByte(name, '@'); i >= 0 {
			name = name[:i]
		}
		if strings.HasPrefix(name, prefix+"-") {
			links = append(links, name)
		}
	}
	return links, nil
}

// prefixedIptables lists the harness's FORWARD rules (by comment) for
// bridges of this prefix, as printed by iptables -S.
func prefixedIptables(prefix string) ([]string, error) {
	out, err := run(bg(), "iptables", "-w", "-S", "FORWARD")
	if err != nil {
		return nil, err
	}
	var rules []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "--comment "+IptablesComment) && strings.Contains(line, "-i "+prefix+"-") {
			rules = append(rules, line)
		}
	}
	return rules, nil
}

// subnetUser returns the host interface that already has an address in
// subnet (the bridge of another prefix's swarm, say), or "".
func subnetUser(subnet netip.Prefix) (string, error) {
	out, err := run(bg(), "ip", "-o", "-4", "addr", "show")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[2] != "inet" {
			continue
		}
		if p, err := netip.ParsePrefix(f[3]); err == nil && subnet.Contains(p.Addr()) {
			return f[1], nil
		}
	}
	return "", nil
}
