package swarmtest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSwarm boots the default 3 managers + 2 workers on each engine and
// exercises the harness on it: roles and hostnames, socket isolation, a
// worker crash and restart, and a teardown that leaves nothing behind.
func TestSwarm(t *testing.T) { OnEachEngine(t, testSwarm) }

func testSwarm(t *testing.T, eng Engine) {
	t0 := time.Now()
	s := StartForTest(t, Options{Engine: eng})
	t.Logf("boot of 3M+2W took %v", time.Since(t0).Round(time.Millisecond))

	t.Run("nodes", func(t *testing.T) {
		nodes, err := s.ListNodes()
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes) != 5 {
			t.Fatalf("got %d nodes, want 5: %+v", len(nodes), nodes)
		}
		for _, n := range s.Nodes() {
			sn, err := s.SwarmNode(n)
			if err != nil {
				t.Fatal(err)
			}
			if sn.State != "ready" {
				t.Errorf("%s: state %q, want ready", n.Name, sn.State)
			}
			if sn.Role != string(n.Role()) {
				t.Errorf("%s: role %q, want %q", n.Name, sn.Role, n.Role())
			}
			if sn.Hostname != n.Hostname || n.Hostname != "swx-"+n.Name {
				t.Errorf("%s: hostname %q, want %q", n.Name, sn.Hostname, n.Hostname)
			}
			if sn.Addr != n.IP {
				t.Errorf("%s: addr %q, want %q", n.Name, sn.Addr, n.IP)
			}
		}
		if l, err := s.Leader(); err != nil || l.Role() != RoleManager {
			t.Errorf("Leader() = %v, %v", l, err)
		}
		if got := len(s.Managers()); got != 3 {
			t.Errorf("%d managers", got)
		}
		for _, n := range s.Nodes() {
			var v struct{ ServerVersion string }
			if err := n.GetJSON(context.Background(), "/v"+n.APIVersion()+"/info", &v); err != nil || v.ServerVersion != eng.Version {
				t.Errorf("%s reports version %q (%v), want %q", n.Name, v.ServerVersion, err, eng.Version)
			}
		}
	})

	t.Run("socket isolation", func(t *testing.T) {
		for _, n := range []*Node{s.Node("w1"), s.Node("m2")} {
			out, err := n.Docker("run", "--rm", "-v", "/var/run/docker.sock:/var/run/docker.sock",
				WorkloadImage, "dockerinfo")
			if err != nil {
				t.Fatal(err)
			}
			if out != n.Hostname {
				t.Errorf("container on %s reached the daemon of %q", n.Name, out)
			}
		}
		// A swarm task on a worker sees its own node too.
		w2 := s.Node("w2")
		if _, err := s.CreateService("--name", "sockcheck", "--mode", "replicated-job",
			"--constraint", "node.hostname=="+w2.Hostname,
			"--mount", "type=bind,source=/var/run/docker.sock,target=/var/run/docker.sock",
			WorkloadImage, "dockerinfo"); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitTasks("sockcheck", "complete", 1, time.Minute); err != nil {
			t.Fatal(err)
		}
		out, err := w2.Docker("ps", "-a", "--filter", "label=com.docker.swarm.service.name=sockcheck", "-q")
		if err != nil || out == "" {
			t.Fatalf("no sockcheck container on w2: %q %v", out, err)
		}
		logs, err := w2.Docker("logs", strings.Fields(out)[0])
		if err != nil {
			t.Fatal(err)
		}
		if logs != w2.Hostname {
			t.Errorf("task on w2 reached the daemon of %q", logs)
		}
	})

	t.Run("kill and restart a worker", func(t *testing.T) {
		w1 := s.Node("w1")
		t1 := time.Now()
		if err := s.Kill(w1); err != nil {
			t.Fatal(err)
		}
		if w1.Running() {
			t.Fatal("w1 still running after Kill")
		}
		if err := s.WaitNodeState(w1, "down", time.Minute); err != nil {
			t.Fatal(err)
		}
		t.Logf("w1 down after %v", time.Since(t1).Round(time.Millisecond))
		t2 := time.Now()
		if err := s.Restart(context.Background(), w1); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitNodeState(w1, "ready", time.Minute); err != nil {
			t.Fatal(err)
		}
		t.Logf("w1 ready again after %v", time.Since(t2).Round(time.Millisecond))
	})

	t.Run("teardown leaves nothing", func(t *testing.T) {
		t1 := time.Now()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("teardown took %v", time.Since(t1).Round(time.Millisecond))
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		assertClean(t, "swx")
	})
}

func assertClean(t *testing.T, prefix string) {
	t.Helper()
	left, err := Leftovers(Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Fatalf("leftovers: %q", left)
	}
	// Independent checks with the system tools.
	for _, c := range [][]string{{"ip", "netns", "list"}, {"ip", "-o", "link", "show"}, {"iptables", "-S", "FORWARD"}} {
		out, err := run(context.Background(), c[0], c[1:]...)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, prefix+"-") {
			t.Errorf("%s still shows %s:\n%s", strings.Join(c, " "), prefix, out)
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), "/netns/"+prefix+"-") || strings.Contains(string(mi), DefaultBaseDir+"/"+prefix) {
		t.Errorf("mounts of the harness remain")
	}
	if pids := prefixPids(DefaultBaseDir, prefix); len(pids) > 0 {
		t.Errorf("processes remain: %v", pids)
	}
}

// TestLeftoversOfCrashedRun simulates what a crashed run leaves (a network
// namespace, a bridge and veth, the iptables rule, a cgroup with a process,
// a run directory) and checks that Start clears it.
func TestLeftoversOfCrashedRun(t *testing.T) {
	RequireSwarmTest(t)
	const p = "swy"
	// Whatever step fails, nothing of the simulation stays behind: the run
	// directory goes first, so that a killed run's cleanup finds the prefix.
	if err := os.MkdirAll(DefaultBaseDir+"/"+p+"/m1/root", 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cleanupPrefix(DefaultBaseDir, p, t.Logf); err != nil {
			t.Error(err)
		}
		assertClean(t, p)
	})
	steps := [][]string{
		{"ip", "netns", "add", p + "-m1"},
		{"ip", "link", "add", p + "-br0", "type", "bridge"},
		{"ip", "link", "add", p + "-m1", "type", "veth", "peer", "name", "eth0", "netns", p + "-m1"},
		{"ip", "link", "set", p + "-m1", "master", p + "-br0"},
		iptablesRule("-I", p+"-br0"),
	}
	for _, st := range steps {
		if err := mustRun(st[0], st[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	// A "daemon" that survived: a sleeping process in the node's cgroup.
	cg := "/sys/fs/cgroup/pids/swarmtest-" + p + "/m1/daemon"
	if err := os.MkdirAll(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mustRun("sh", "-c", "echo $$ > "+cg+"/cgroup.procs; exec setsid sleep 600 >/dev/null 2>&1 < /dev/null &"); err != nil {
		t.Fatal(err)
	}
	left, err := Leftovers(Options{Prefix: p})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("simulated leftovers: %q", left)
	if len(left) < 6 {
		t.Fatalf("Leftovers found only %d things", len(left))
	}
	s := StartForTest(t, Options{Prefix: p, Managers: 1, Workers: 1, NoWorkloadImage: true})
	if n := len(s.Nodes()); n != 2 {
		t.Fatalf("%d nodes", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	assertClean(t, p)
}

// TestRefusesUnclearableLeftovers checks that Start refuses, with an error
// naming the leftover, when it cannot clear what an earlier run left.
func TestRefusesUnclearableLeftovers(t *testing.T) {
	RequireSwarmTest(t)
	// In CI the check must run: a missing chattr fails it there.
	skip := t.Skipf
	if os.Getenv("CI") == "true" {
		skip = t.Fatalf
	}
	if _, err := os.Stat("/usr/bin/chattr"); err != nil {
		skip("needs chattr (e2fsprogs) to make an undeletable leftover")
	}
	const p = "swz"
	f := DefaultBaseDir + "/" + p + "/m1/stuck"
	t.Cleanup(func() {
		_ = mustRun("chattr", "-i", f)
		if err := cleanupPrefix(DefaultBaseDir, p, t.Logf); err != nil {
			t.Error(err)
		}
		assertClean(t, p)
	})
	if err := os.MkdirAll(DefaultBaseDir+"/"+p+"/m1", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := mustRun("chattr", "+i", f); err != nil {
		skip("filesystem does not support chattr +i: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{Prefix: p, Managers: 1, NoWorkloadImage: true, Logf: t.Logf})
	if err == nil {
		s.Close()
		t.Fatal("Start succeeded despite an undeletable leftover")
	}
	if !strings.Contains(err.Error(), "refusing to start") || !strings.Contains(err.Error(), "directory "+DefaultBaseDir+"/"+p) {
		t.Errorf("unexpected error: %v", err)
	}
	t.Logf("Start: %v", err)
}
