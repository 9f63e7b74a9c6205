package swarmtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTopologies boots the other supported topologies.
func TestTopologies(t *testing.T) {
	for _, tc := range []struct{ m, w int }{{1, 1}, {2, 0}, {3, 0}, {5, 3}} {
		t.Run(itoa(tc.m)+"M+"+itoa(tc.w)+"W", func(t *testing.T) {
			t0 := time.Now()
			s := StartForTest(t, Options{Managers: tc.m, Workers: tc.w, NoWorkloadImage: true})
			t.Logf("boot took %v", time.Since(t0).Round(time.Millisecond))
			nodes, err := s.ListNodes()
			if err != nil {
				t.Fatal(err)
			}
			managers := 0
			for _, n := range nodes {
				if n.State != "ready" {
					t.Errorf("%s: %s", n.Hostname, n.State)
				}
				if n.Role == "manager" {
					managers++
				}
			}
			if len(nodes) != tc.m+tc.w || managers != tc.m {
				t.Errorf("got %d nodes, %d managers", len(nodes), managers)
			}
		})
	}
}

// TestFaults exercises the fault verbs on 3 managers + 1 worker. Quorum loss
// comes before promote/demote and autolock: a worker that was once a manager,
// after autolock was switched on and off, came back LOCKED from a quorum loss
// (dockerd 20.10.24), which is not what this test is about.
func TestFaults(t *testing.T) {
	s := StartForTest(t, Options{Managers: 3, Workers: 1})
	ctx := context.Background()
	w1 := s.Node("w1")

	t.Run("services", func(t *testing.T) {
		if _, err := s.CreateService("--name", "web", "--replicas", "2", WorkloadImage); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateService("--name", "fail", "--replicas", "1", "--restart-max-attempts", "1", WorkloadImage, "exit", "3", "0.5"); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitRunning("web", 2, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.Scale("web", 4); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitRunning("web", 4, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitTasks("fail", "failed", 2, time.Minute); err != nil {
			t.Fatal(err)
		}
		tasks, _ := s.Tasks("fail")
		if len(tasks) == 0 || !strings.Contains(tasks[0].Err, "non-zero exit (3)") {
			t.Errorf("fail tasks: %+v", tasks)
		}
	})

	t.Run("drain, pause, activate", func(t *testing.T) {
		for _, a := range []struct {
			f    func(*Node) error
			want string
		}{{s.Drain, "drain"}, {s.Pause, "pause"}, {s.Activate, "active"}} {
			if err := a.f(w1); err != nil {
				t.Fatal(err)
			}
			sn, err := s.SwarmNode(w1)
			if err != nil || sn.Availability != a.want {
				t.Errorf("availability %q %v, want %s", sn.Availability, err, a.want)
			}
		}
	})

	t.Run("remove image", func(t *testing.T) {
		if err := s.RemoveImage(w1, WorkloadImage); err != nil {
			t.Fatal(err)
		}
		if _, err := w1.Docker("image", "inspect", WorkloadImage); err == nil {
			t.Error("image still on w1")
		}
		tar, ok := s.ImageTarball(WorkloadImage)
		if !ok {
			t.Fatal("no cached workload tarball")
		}
		if err := w1.LoadImage(tar); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("quorum loss and recovery", func(t *testing.T) {
		l, err := s.Leader()
		if err != nil {
			t.Fatal(err)
		}
		var others []*Node
		for _, m := range s.Managers() {
			if m != l {
				others = append(others, m)
			}
		}
		for _, m := range others {
			if err := s.Kill(m); err != nil {
				t.Fatal(err)
			}
		}
		t0 := time.Now()
		err = s.WaitFor(time.Minute, "no leader", func() (bool, error) {
			st, body, err := l.Get(ctx, "/v"+l.APIVersion()+"/nodes")
			return err == nil && st == http.StatusInternalServerError && strings.Contains(string(body), "does not have a leader"), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("/nodes answers 500 %v after killing 2 of 3 managers", time.Since(t0).Round(time.Millisecond))
		if _, err := l.Info(ctx); err != nil {
			t.Errorf("/info without quorum: %v", err)
		}
		t0 = time.Now()
		if err := parallel(others, func(n *Node) error { return s.Restart(ctx, n) }); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitReady(2 * time.Minute); err != nil {
			info, _ := w1.Info(ctx)
			t.Logf("w1 info: %+v\nw1 log:\n%s", info, w1.logTail(60))
			t.Fatal(err)
		}
		t.Logf("all nodes ready %v after restarting the 2 managers", time.Since(t0).Round(time.Millisecond))
		if err := s.WaitRunning("web", 4, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
		t.Logf("web back to 4 running tasks after %v", time.Since(t0).Round(time.Millisecond))
	})

	t.Run("promote and demote", func(t *testing.T) {
		if err := s.Promote(w1); err != nil {
			t.Fatal(err)
		}
		if w1.Role() != RoleManager || len(s.Managers()) != 4 {
			t.Errorf("after Promote: role %s, %d managers", w1.Role(), len(s.Managers()))
		}
		if err := s.Demote(w1); err != nil {
			t.Fatal(err)
		}
		if w1.Role() != RoleWorker {
			t.Errorf("after Demote: role %s", w1.Role())
		}
	})

	t.Run("autolock", func(t *testing.T) {
		key, err := s.EnableAutolock()
		if err != nil {
			t.Fatal(err)
		}
		l, err := s.Leader()
		if err != nil {
			t.Fatal(err)
		}
		var m *Node
		for _, x := range s.Managers() {
			if x != l {
				m = x
				break
			}
		}
		if err := s.Restart(ctx, m); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitLocalState(m, "locked", time.Minute); err != nil {
			t.Fatal(err)
		}
		st, _, err := m.Get(ctx, "/v"+m.APIVersion()+"/nodes")
		if err != nil || st != http.StatusServiceUnavailable {
			t.Errorf("locked manager /nodes: %d %v", st, err)
		}
		if err := s.Unlock(m, key); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitReachability(m, "reachable", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.DisableAutolock(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTLSAndStandalone checks a TLS manager, a TLS standalone daemon added
// later, and the three client setups.
func TestTLSAndStandalone(t *testing.T) {
	s := StartForTest(t, Options{Managers: 1, TLSNodes: []string{"m1"}, NoWorkloadImage: true})
	s1, err := s.AddNode(context.Background(), RoleStandalone, true)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.AddNode(context.Background(), RoleWorker, false)
	if err != nil {
		t.Fatal(err)
	}
	if w.Name != "w1" || w.ID() == "" {
		t.Errorf("added worker %s %q", w.Name, w.ID())
	}
	m := s.TLS()
	for _, n := range []*Node{s.Node("m1"), s1} {
		if n.TCPHost() != "tcp://"+n.IP+":2376" {
			t.Errorf("TCPHost %q", n.TCPHost())
		}
		// The docker CLI, configured only through the environment.
		cmd := exec.Command(DockerCLIPath, "info", "--format", "{{.Name}} {{.Swarm.LocalNodeState}}")
		cmd.Env = append(cliEnv(s.Dir()), m.Env(n, m.ClientDir)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker info over TLS: %v: %s", err, out)
		}
		t.Logf("%s over TLS: %s", n.Name, strings.TrimSpace(string(out)))
		// A Go client with each certificate directory.
		for dir, ok := range map[string]bool{m.ClientDir: true, m.BadClientDir: false, m.WrongCADir: false} {
			st, err := tlsGet(dir, "https://"+n.IP+":2376/_ping")
			if ok && (err != nil || st != 200) {
				t.Errorf("%s with %s: %d %v", n.Name, filepath.Base(dir), st, err)
			}
			if !ok && err == nil {
				t.Errorf("%s with %s: got through (%d)", n.Name, filepath.Base(dir), st)
			}
		}
	}
	info, err := s1.Info(context.Background())
	if err != nil || info.Swarm.LocalNodeState != "inactive" {
		t.Errorf("standalone: %+v %v", info, err)
	}
}

func tlsGet(dir, url string) (int, error) {
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return 0, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		return 0, err
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestLock checks that a second harness of the same prefix waits for the
// first one, that one of another prefix does not, and that an exclusive
// holder of the machine-wide lock (a tool that needs the whole machine, or
// a harness of an older version) makes every harness wait.
func TestLock(t *testing.T) {
	RequireSwarmTest(t)
	held, err := acquireLock(context.Background(), "swz", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = Start(ctx, Options{Prefix: "swz", NoWorkloadImage: true, Logf: t.Logf})
	if err == nil || !strings.Contains(err.Error(), "another harness holds "+prefixLockPath("swz")) {
		t.Errorf("Start of the same prefix while locked: %v", err)
	}
	other, err := acquireLock(ctx, "swy", t.Logf)
	if err != nil {
		t.Errorf("the lock of another prefix: %v", err)
	}
	releaseLock(other)

	// A run that waits gets the lock when the holder leaves. (Lock files
	// stay in /run: removing one would let a run that waits on the removed
	// file and one that creates a new file both hold the prefix.)
	got := make(chan *runLock, 1)
	go func() {
		wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l, err := acquireLock(wctx, "swz", t.Logf)
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	time.Sleep(time.Second)
	releaseLock(held)
	if l := <-got; l != nil {
		releaseLock(l)
	}

	// Every running swarm on the machine holds the machine lock shared:
	// outside CI, other people's swarms may keep it for long.
	mctx, mcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer mcancel()
	machine, err := flockWait(mctx, LockPath, syscall.LOCK_EX, t.Logf)
	if err != nil && os.Getenv("CI") != "true" {
		t.Skipf("other swarms run on this machine: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = Start(ctx, Options{Prefix: "swy", NoWorkloadImage: true, Logf: t.Logf})
	unflock(machine)
	if err == nil || !strings.Contains(err.Error(), "another harness holds "+LockPath) {
		t.Errorf("Start while the machine lock is held exclusively: %v", err)
	}
}

// TestSubnetInUse: a swarm waits while a host interface has an address in
// its subnet (a bridge of a harness that does not take the subnet lock, or
// what a crashed run left), and says which one when it gives up.
func TestSubnetInUse(t *testing.T) {
	RequireSwarmTest(t)
	// The bridge belongs to a prefix of its own, not swtq (Start would clear
	// it as a leftover of swtq), whose run directory makes the cleanup of a
	// killed test run (swarmup -cleanup) find and delete it.
	const owner = "swtqb"
	const link = owner + "-br0"
	if err := os.MkdirAll(DefaultBaseDir+"/"+owner, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cleanupPrefix(DefaultBaseDir, owner, t.Logf); err != nil {
			t.Error(err)
		}
		assertClean(t, owner)
	})
	if err := mustRun("ip", "link", "add", link, "type", "bridge"); err != nil {
		t.Fatal(err)
	}
	if err := mustRun("ip", "addr", "add", "10.213.22.1/24", "dev", link); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := Start(ctx, Options{Prefix: "swtq", Subnet: "10.213.22.0/24", Managers: 1, NoWorkloadImage: true, Logf: t.Logf})
	if err == nil {
		s.Close()
		t.Fatal("a swarm started on a subnet in use")
	}
	if !strings.Contains(err.Error(), "subnet 10.213.22.0/24 is in use on "+link) {
		t.Errorf("Start: %v", err)
	}
	assertClean(t, "swtq")
}

// TestTwoSwarmsAtOnce runs two swarms in one process, of different
// prefixes and subnets (and engines, when SWARMTEST_ENGINE does not name
// one), reads both, checks that a third one on a subnet in use waits, and
// that each teardown clears its own prefix only.
func TestTwoSwarmsAtOnce(t *testing.T) {
	RequireSwarmTest(t)
	engines := EngineNames()
	if len(engines) == 1 {
		engines = append(engines, engines[0])
	}
	var swarms []*Swarm
	for i, name := range engines {
		eng, err := LookupEngine(name)
		if err != nil {
			t.Fatal(err)
		}
		swarms = append(swarms, StartForTest(t, Options{
			Prefix: fmt.Sprintf("swt%d", i), Subnet: fmt.Sprintf("10.213.%d.0/24", 20+i),
			Managers: 1, Workers: 1, NoWorkloadImage: true, Engine: eng,
		}))
	}
	for _, s := range swarms {
		nodes, err := s.ListNodes()
		if err != nil || len(nodes) != 2 {
			t.Errorf("%s: %d nodes, %v", s.Prefix(), len(nodes), err)
		}
		m1 := s.Node("m1")
		info, err := m1.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s at %s runs %s, API %s", s.Prefix(), m1.Hostname, m1.IP, m1.Engine().Version, m1.APIVersion())
		if info.Swarm.LocalNodeState != "active" {
			t.Errorf("%s: m1 is %q", s.Prefix(), info.Swarm.LocalNodeState)
		}
	}
	// A third swarm on the first one's subnet waits for it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if s, err := Start(ctx, Options{Prefix: "swt9", Subnet: "10.213.20.0/24", Managers: 1, NoWorkloadImage: true, Logf: t.Logf}); err == nil {
		s.Close()
		t.Error("a third swarm on the first one's subnet started")
	} else if !strings.Contains(err.Error(), "another harness holds /run/swarmtest-subnet-10.213.20.0-24.lock") {
		t.Errorf("a third swarm on the first one's subnet: %v", err)
	}
	assertClean(t, "swt9")
	if err := swarms[0].Close(); err != nil {
		t.Fatal(err)
	}
	assertClean(t, "swt0")
	if nodes, err := swarms[1].ListNodes(); err != nil || len(nodes) != 2 {
		t.Errorf("the second swarm after the first one's teardown: %d nodes, %v", len(nodes), err)
	}
}
