package swarmtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCaptureFixtures regenerates testdata/docker/<scenario>/ from real
// daemons. It runs only with SWARMTEST=1 and SWARMTEST_CAPTURE set to "all"
// or a comma-separated list of scenario names:
//
//	SWARMTEST=1 SWARMTEST_CAPTURE=all go test -run TestCaptureFixtures -timeout 30m ./internal/swarmtest
//
// Scenarios that share a swarm are captured in one go, in order.
func TestCaptureFixtures(t *testing.T) {
	want := os.Getenv("SWARMTEST_CAPTURE")
	if want == "" {
		t.Skip("set SWARMTEST_CAPTURE=all (or scenario names) to capture Docker API fixtures")
	}
	RequireSwarmTest(t)
	sel := func(names ...string) bool {
		if want == "all" {
			return true
		}
		for _, n := range names {
			for _, w := range strings.Split(want, ",") {
				if w == n {
					return true
				}
			}
		}
		return false
	}
	OnEachEngine(t, func(t *testing.T, eng Engine) {
		out := captureTarget{root: filepath.Join("..", "..", "testdata", "docker"), eng: eng}
		if sel("healthy-3m2w", "worker-down", "manager-down", "quorum-lost") {
			t.Run("swarm A", func(t *testing.T) { captureA(t, out, sel) })
		}
		if sel("missing-image", "worker-node", "no-swarm") {
			t.Run("swarm B", func(t *testing.T) { captureB(t, out, sel) })
		}
		if sel("locked") {
			t.Run("swarm C", func(t *testing.T) { captureC(t, out) })
		}
		if sel("drained-paused") {
			t.Run("swarm D", func(t *testing.T) { captureD(t, out) })
		}
	})
}

// captureTarget says where the scenarios of one engine go: 20.10's in
// testdata/docker/<scenario>, Docker 29's in
// testdata/docker/<scenario>-docker29.
type captureTarget struct {
	root string
	eng  Engine
}

// scenarioSuffix returns what the name of a scenario captured on an engine
// ends with: "" for 20.10, "-docker29" for 29.
func scenarioSuffix(engine string) string {
	if engine == EngineDebian {
		return ""
	}
	return "-docker" + engine
}

func (c captureTarget) dir(scenario string) string {
	return filepath.Join(c.root, scenario+scenarioSuffix(c.eng.Name))
}

// producedBy is the first line of a scenario's README.
func (c captureTarget) producedBy(scenario, from, what string, n *Node) string {
	origin := "Debian docker.io"
	if c.eng.Name != EngineDebian {
		origin = "built from Go modules by scripts/build-engine.sh"
	}
	return fmt.Sprintf("Captured from dockerd %s (%s) at Engine API %s by TestCaptureFixtures in internal/swarmtest "+
		"(SWARMTEST=1 SWARMTEST_CAPTURE=%s SWARMTEST_ENGINE=%s), from the socket of %s (%s); every node is a real dockerd in its own netns.",
		c.eng.Version, origin, n.APIVersion(), scenario, c.eng.Name, from, what)
}

// tasksFilter is the query of tasks.json.
var tasksFilter = `{"desired-state":["running","ready","complete"]}`

// capture writes the fixture files of one scenario from node n.
func capture(t *testing.T, dir string, n *Node, readme []string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	status, headers, err := rawHeadPing(n.Socket)
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "ping.headers", []byte(headers))
	if status != http.StatusOK {
		write(t, dir, "ping.status", []byte(strconv.Itoa(status)+"\n"))
	}
	v := "/v" + n.APIVersion()
	endpoints := []struct{ name, path string }{
		{"info", v + "/info"},
		{"nodes", v + "/nodes"},
		{"services", v + "/services?status=true"},
		{"tasks", v + "/tasks?filters=" + url.QueryEscape(tasksFilter)},
		{"tasks-all", v + "/tasks"},
	}
	var summary []string
	for _, e := range endpoints {
		st, body, err := n.Get(ctx, e.path)
		if err != nil {
			t.Fatal(err)
		}
		write(t, dir, e.name+".json", body)
		if st != http.StatusOK {
			write(t, dir, e.name+".status", []byte(strconv.Itoa(st)+"\n"))
		}
		summary = append(summary, fmt.Sprintf("%s=%d", e.name, st))
	}
	t.Logf("%s from %s: %s", filepath.Base(dir), n.Name, strings.Join(summary, " "))
	if line := taskSummary(dir); line != "" {
		readme = append(readme, line)
	}
	readme = append(readme, fmt.Sprintf("HTTP status: %s.", strings.Join(summary, ", ")))
	write(t, dir, "README.md", []byte(strings.Join(readme, "\n")+"\n"))
}

// taskSummary counts the tasks of tasks-all.json by service, desired
// state and state, for the README.
func taskSummary(dir string) string {
	var services []struct {
		ID   string
		Spec struct{ Name string }
	}
	var tasks []struct {
		ServiceID, DesiredState string
		Status                  struct{ State string }
	}
	sb, err1 := os.ReadFile(filepath.Join(dir, "services.json"))
	tb, err2 := os.ReadFile(filepath.Join(dir, "tasks-all.json"))
	if err1 != nil || err2 != nil || json.Unmarshal(sb, &services) != nil || json.Unmarshal(tb, &tasks) != nil {
		return ""
	}
	names := map[string]string{}
	for _, sv := range services {
		names[sv.ID] = sv.Spec.Name
	}
	counts := map[string]map[string]int{}
	for _, tk := range tasks {
		n := names[tk.ServiceID]
		if counts[n] == nil {
			counts[n] = map[string]int{}
		}
		counts[n][tk.DesiredState+"/"+tk.Status.State]++
	}
	var parts []string
	for n, c := range counts {
		var cs []string
		for k, v := range c {
			cs = append(cs, fmt.Sprintf("%s %d", k, v))
		}
		sort.Strings(cs)
		parts = append(parts, n+": "+strings.Join(cs, ", "))
	}
	sort.Strings(parts)
	return "Tasks in tasks-all.json by service, DesiredState/Status.State: " + strings.Join(parts, "; ") + "."
}

func write(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// rawHeadPing sends HEAD /_ping over the unix socket by hand and returns
// the status and the header lines exactly as the daemon sent them. It asks
// for nothing special (no "Connection: close", which the daemon would echo);
// a HEAD answer has no body, so reading stops at the blank line.
func rawHeadPing(sock string) (int, string, error) {
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprint(c, "HEAD /_ping HTTP/1.1\r\nHost: docker\r\nUser-Agent: swarmtest\r\n\r\n"); err != nil {
		return 0, "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, "", err
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, "", fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, "", err
	}
	var b strings.Builder
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return 0, "", err
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			break
		}
		b.WriteString(l + "\n")
	}
	return status, b.String(), nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wl(args ...string) []string { return append([]string{WorkloadImage}, args...) }

func svc(t *testing.T, s *Swarm, args ...string) {
	t.Helper()
	_, err := s.CreateService(args...)
	must(t, err)
}

// updateState returns the UpdateStatus.State of a service ("" when none).
func updateState(s *Swarm, name string) string {
	ctx, cancel := ctxTimeout(10 * time.Second)
	defer cancel()
	m, err := s.liveManager(ctx)
	if err != nil {
		return ""
	}
	var sv struct{ UpdateStatus *struct{ State string } }
	if err := m.GetJSON(ctx, "/v"+m.APIVersion()+"/services/"+name, &sv); err != nil || sv.UpdateStatus == nil {
		return ""
	}
	return sv.UpdateStatus.State
}

// leaderAndOthers returns the leader and the other managers.
func leaderAndOthers(t *testing.T, s *Swarm) (*Node, []*Node) {
	t.Helper()
	l, err := s.Leader()
	must(t, err)
	var others []*Node
	for _, m := range s.Managers() {
		if m != l {
			others = append(others, m)
		}
	}
	return l, others
}

func tasksOn(t *testing.T, s *Swarm, service string, n *Node, state string) int {
	tasks, err := s.Tasks(service)
	must(t, err)
	c := 0
	for _, tk := range tasks {
		if tk.NodeID == n.ID() && tk.State == state {
			c++
		}
	}
	return c
}

func captureA(t *testing.T, out captureTarget, sel func(...string) bool) {
	s := StartForTest(t, Options{Engine: out.eng})
	w2 := s.Node("w2")

	// healthy-3m2w
	svc(t, s, append([]string{"--name", "updating", "--replicas", "2"}, wl()...)...)
	must(t, s.WaitRunning("updating", 2, time.Minute))
	svc(t, s, append([]string{"--name", "web", "--replicas", "6",
		"--label", "com.docker.stack.namespace=shop", "--container-label", "com.docker.stack.namespace=shop"}, wl()...)...)
	svc(t, s, append([]string{"--name", "agent", "--mode", "global"}, wl()...)...)
	svc(t, s, append([]string{"--name", "batch", "--mode", "replicated-job", "--replicas", "3"}, wl("exit", "0", "2")...)...)
	svc(t, s, append([]string{"--name", "pinned", "--replicas", "2", "--constraint", "node.role==worker"}, wl()...)...)
	svc(t, s, append([]string{"--name", "mgr-global", "--mode", "global", "--constraint", "node.role==manager"}, wl()...)...)
	svc(t, s, append([]string{"--name", "zero", "--replicas", "1"}, wl()...)...)
	must(t, s.WaitRunning("zero", 1, time.Minute))
	must(t, s.Scale("zero", 0))
	must(t, s.WaitRunning("web", 6, time.Minute))
	must(t, s.WaitRunning("agent", 5, time.Minute))
	must(t, s.WaitRunning("pinned", 2, time.Minute))
	must(t, s.WaitRunning("mgr-global", 3, time.Minute))
	must(t, s.WaitRunning("zero", 0, time.Minute))
	must(t, s.WaitTasks("batch", "complete", 3, time.Minute))
	must(t, s.UpdateService("--update-delay", "60s", "--update-parallelism", "1", "--env-add", "X=1", "updating"))
	// One task replaced, the second waits for the 60 s delay.
	must(t, s.WaitFor(time.Minute, "updating in its update delay", func() (bool, error) {
		tasks, err := s.Tasks("updating")
		if err != nil {
			return false, nil
		}
		running, shutdown := 0, 0
		for _, tk := range tasks {
			if tk.State == "running" && tk.DesiredState == "running" {
				running++
			}
			if tk.State == "shutdown" {
				shutdown++
			}
		}
		return updateState(s, "updating") == "updating" && running == 2 && shutdown == 1, nil
	}))
	leader, others := leaderAndOthers(t, s)
	if sel("healthy-3m2w") {
		capture(t, out.dir("healthy-3m2w"), leader, []string{
			out.producedBy("healthy-3m2w", "manager "+leader.Hostname, "the leader", leader),
			"Topology: 3 managers (swx-m1..m3) + 2 workers (swx-w1, swx-w2), all Ready/Active, managers Reachable.",
			"Services and expected running tasks: web 6 (replicated, labels com.docker.stack.namespace=shop), agent 5 (global), " +
				"pinned 2 (replicated, node.role==worker), mgr-global 3 (global, node.role==manager), zero 0 (replicated, scaled 1->0), " +
				"updating 2 (UpdateStatus.State updating: 1 of 2 tasks replaced, 60 s update delay), batch 0 (replicated-job, 3 of 3 tasks complete).",
		})
	}

	// worker-down
	must(t, s.Kill(w2))
	t0 := time.Now()
	must(t, s.WaitNodeState(w2, "down", 2*time.Minute))
	t.Logf("w2 down after %v", time.Since(t0).Round(time.Second))
	if sel("worker-down") {
		capture(t, out.dir("worker-down"), leader, []string{
			out.producedBy("worker-down", "manager "+leader.Hostname, "the leader", leader),
			"The healthy-3m2w swarm after worker swx-w2 was SIGKILLed (dockerd and all its processes), captured as soon as swx-w2 showed Status.State down (Status.Message \"heartbeat failure\").",
			"Tasks on swx-w2 keep Status.State running with DesiredState shutdown (ServiceStatus.RunningTasks still counts them: agent 5 of 4 desired); " +
				"their replacements may still be in the 5 s restart delay (DesiredState ready, Status.State pending or assigned). Really running: web 4-6, agent 4, pinned 1-2, mgr-global 3, updating 2, zero 0; batch 3 complete.",
		})
	}
	must(t, s.Restart(context.Background(), w2))
	must(t, s.WaitNodeState(w2, "ready", 2*time.Minute))
	must(t, s.WaitRunning("agent", 5, time.Minute))
	must(t, s.WaitRunning("pinned", 2, time.Minute))

	// manager-down: kill a manager that is not the leader, capture from the leader.
	victim := others[len(others)-1]
	must(t, s.Kill(victim))
	must(t, s.WaitNodeState(victim, "down", 2*time.Minute))
	must(t, s.WaitReachability(victim, "unreachable", time.Minute))
	must(t, s.WaitRunning("mgr-global", 2, time.Minute))
	if sel("manager-down") {
		capture(t, out.dir("manager-down"), leader, []string{
			out.producedBy("manager-down", "manager "+leader.Hostname, "the leader", leader),
			fmt.Sprintf("The swarm of worker-down after swx-w2 came back (its old tasks now failed, \"task: non-zero exit (255)\") and then manager %s was SIGKILLed: "+
				"it shows Status.State down and ManagerStatus.Reachability unreachable; the other 2 managers keep quorum.", victim.Hostname),
			"Tasks on the dead manager keep Status.State running with DesiredState shutdown, still counted in ServiceStatus.RunningTasks (agent 5 of 4, mgr-global 3 of 2 desired); " +
				"web's replacements may still be in the restart delay (DesiredState ready). Really running: web 4-6, agent 4, pinned 2, mgr-global 2, updating 2, zero 0; batch 3 complete.",
		})
	}

	// quorum-lost: kill the second non-leader manager as well; the former
	// leader survives without quorum.
	victim2 := others[0]
	must(t, s.Kill(victim2))
	must(t, s.WaitFor(2*time.Minute, "leader to lose quorum", func() (bool, error) {
		ctx, cancel := ctxTimeout(10 * time.Second)
		defer cancel()
		st, _, err := leader.Get(ctx, "/v"+leader.APIVersion()+"/nodes")
		return err == nil && st != http.StatusOK, nil
	}))
	if sel("quorum-lost") {
		capture(t, out.dir("quorum-lost"), leader, []string{
			out.producedBy("quorum-lost", "manager "+leader.Hostname, "the only manager left", leader),
			fmt.Sprintf("The swarm of manager-down after the second manager %s was SIGKILLed too: 2 of 3 managers down, no leader. /info still answers; /nodes, /services and /tasks answer HTTP 500 (see *.status).", victim2.Hostname),
		})
	}
	// The swarm comes back when the managers do.
	t0 = time.Now()
	must(t, parallel([]*Node{victim, victim2}, func(n *Node) error { return s.Restart(context.Background(), n) }))
	must(t, s.WaitReady(3*time.Minute))
	t.Logf("quorum back, all nodes ready %v after restarting the 2 managers", time.Since(t0).Round(time.Second))
}

func captureB(t *testing.T, out captureTarget, sel func(...string) bool) {
	s := StartForTest(t, Options{Managers: 3, Workers: 2, Standalone: 1, Engine: out.eng})
	w1, w2 := s.Node("w1"), s.Node("w2")
	must(t, s.RemoveImage(w2, WorkloadImage))
	t0 := time.Now()
	svc(t, s, append([]string{"--name", "partial", "--mode", "global"}, wl()...)...)
	svc(t, s, "--name", "ghost", "--replicas", "2", "nosuchimage:1")
	must(t, s.WaitRunning("partial", 4, time.Minute))
	must(t, s.WaitFor(time.Minute, "rejected tasks", func() (bool, error) {
		return tasksOn(t, s, "partial", w2, "rejected") > 0, nil
	}))
	if d := 20*time.Second - time.Since(t0); d > 0 {
		time.Sleep(d)
	}
	leader, _ := leaderAndOthers(t, s)
	if sel("missing-image") {
		capture(t, out.dir("missing-image"), leader, []string{
			out.producedBy("missing-image", "manager "+leader.Hostname, "the leader", leader),
			"Topology: 3 managers + 2 workers, all Ready (plus a standalone daemon outside the swarm). " + WorkloadImage + " was removed from worker swx-w2 before the services were created; no registry is reachable.",
			"Services, ~20 s after creation: partial (global) runs on the 4 other nodes; on swx-w2 its tasks are rejected (\"No such image: swarmtest/workload:latest\") over and over, " +
				"the current one with DesiredState ready (restart delay), so ServiceStatus says 4 running of 4 desired. " +
				"ghost (replicated 2, image nosuchimage:1, --no-resolve-image) runs nowhere: 0 of 2, every task rejected, retries land on any node.",
		})
	}
	if sel("worker-node") {
		capture(t, out.dir("worker-node"), w1, []string{
			out.producedBy("worker-node", "worker "+w1.Hostname, "a worker", w1),
			"The swarm of missing-image, seen from a worker: /info answers (Swarm.ControlAvailable false); /nodes, /services and /tasks answer HTTP 503 \"This node is not a swarm manager…\" (see *.status).",
		})
	}
	if sel("no-swarm") {
		s1 := s.Node("s1")
		capture(t, out.dir("no-swarm"), s1, []string{
			out.producedBy("no-swarm", "standalone daemon "+s1.Hostname, "never in a swarm", s1),
			"A daemon that never joined a swarm: /info answers with Swarm.LocalNodeState inactive; /nodes, /services and /tasks answer HTTP 503 (see *.status).",
		})
	}
}

func captureC(t *testing.T, out captureTarget) {
	s := StartForTest(t, Options{Engine: out.eng})
	svc(t, s, append([]string{"--name", "web", "--replicas", "3"}, wl()...)...)
	must(t, s.WaitRunning("web", 3, time.Minute))
	key, err := s.EnableAutolock()
	must(t, err)
	_, others := leaderAndOthers(t, s)
	m := others[0]
	must(t, s.Restart(context.Background(), m))
	must(t, s.WaitLocalState(m, "locked", time.Minute))
	capture(t, out.dir("locked"), m, []string{
		out.producedBy("locked", "manager "+m.Hostname, "a locked manager", m),
		fmt.Sprintf("Topology: 3 managers + 2 workers with autolock enabled; manager %s was restarted and not unlocked, so its /info shows Swarm.LocalNodeState locked "+
			"and /nodes, /services and /tasks answer with an error (see *.status). Service web (replicated 3) runs on the rest of the swarm.", m.Hostname),
	})
	must(t, s.Unlock(m, key))
	must(t, s.WaitNodeState(m, "ready", time.Minute))
}

func captureD(t *testing.T, out captureTarget) {
	s := StartForTest(t, Options{Engine: out.eng})
	w1, w2 := s.Node("w1"), s.Node("w2")
	svc(t, s, append([]string{"--name", "web", "--replicas", "6"}, wl()...)...)
	svc(t, s, append([]string{"--name", "agent", "--mode", "global"}, wl()...)...)
	must(t, s.WaitRunning("web", 6, time.Minute))
	must(t, s.WaitRunning("agent", 5, time.Minute))
	must(t, s.Drain(w1))
	must(t, s.WaitFor(time.Minute, "w1 drained", func() (bool, error) {
		return tasksOn(t, s, "web", w1, "running") == 0 && tasksOn(t, s, "agent", w1, "running") == 0, nil
	}))
	must(t, s.WaitRunning("web", 6, time.Minute))
	must(t, s.Pause(w2))
	must(t, s.Scale("web", 8))
	must(t, s.WaitRunning("web", 8, time.Minute))
	leader, _ := leaderAndOthers(t, s)
	capture(t, out.dir("drained-paused"), leader, []string{
		out.producedBy("drained-paused", "manager "+leader.Hostname, "the leader", leader),
		"Topology: 3 managers + 2 workers, all Ready; swx-w1 Availability drain, swx-w2 Availability pause. web (replicated) ran 6 tasks, " +
			"w1 was drained (its web and agent tasks shut down, web rescheduled), w2 paused, then web scaled to 8: the 2 new tasks avoid w1 and w2.",
		"Expected running: web 8 (none on swx-w1), agent 4 (global: none on the drained swx-w1; the paused swx-w2 keeps its task).",
	})
}
