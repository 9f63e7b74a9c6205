package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// What Docker's orchestrators do, and the exporter must count the same way,
// on one healthy 3-manager, 2-worker swarm read through m1: a global
// service created after a node was paused, a global service whose platform
// no node runs, a job run again, and a service whose tasks keep failing.
func TestServiceSemantics(t *testing.T) {
	s := swarmtest.StartForTest(t, swarmtest.Options{})
	e := StartExporter(t, s.Node("m1").Host())

	t.Run("paused node", func(t *testing.T) { semPausedNode(t, s, e) })
	t.Run("unsupported platform", func(t *testing.T) { semPlatform(t, s, e) })
	t.Run("job run again", func(t *testing.T) { semJobRerun(t, s, e) })
	t.Run("crash loop", func(t *testing.T) { semCrashLoop(t, s, e) })
}

// semDockerDesired returns Docker's own DesiredTasks of a service.
func semDockerDesired(t *testing.T, s *swarmtest.Swarm, name string) uint64 {
	t.Helper()
	services, err := faultDockerServices(s.Node("m1"))
	if err != nil {
		t.Logf("reading Docker's services: %v", err)
		return 0
	}
	return services[name].ServiceStatus.DesiredTasks
}

// A paused node keeps the task of a global service created before the
// pause, and gets none of one created after it: the exporter wants 5 tasks
// of the first and 4 of the second, and both are OK.
func semPausedNode(t *testing.T, s *swarmtest.Swarm, e *Exporter) {
	w2 := s.Node("w2")
	if _, err := s.CreateService("--name", "early", "--mode", "global", swarmtest.WorkloadImage); err != nil {
		t.Fatal(err)
	}
	e.WaitFor(t, 60*time.Second, "early running on 5 nodes", func(m Metrics) bool {
		return m.Is(5, "docker_swarm_service_replicas_running", "service_name", "early") &&
			m.Is(1, "docker_swarm_service_status", "service_name", "early", "status", "ok")
	})
	faultMust(t, s.Pause(w2))
	if _, err := s.CreateService("--name", "late", "--mode", "global", swarmtest.WorkloadImage); err != nil {
		t.Fatal(err)
	}
	faultPoll(t, e, faultPollOpts{What: "early 5 of 5 and late 4 of 4 (none on the paused w2), both OK, as Docker counts them", Every: 500 * time.Millisecond, Timeout: 60 * time.Second},
		func(sc faultScrape) bool {
			m := sc.M
			return sc.Err == nil &&
				m.Is(1, "docker_swarm_node_availability", "hostname", w2.Hostname, "availability", "pause") &&
				m.Is(5, "docker_swarm_service_replicas_desired", "service_name", "early") &&
				m.Is(5, "docker_swarm_service_replicas_running", "service_name", "early") &&
				m.Is(4, "docker_swarm_service_replicas_desired", "service_name", "late") &&
				m.Is(4, "docker_swarm_service_replicas_running", "service_name", "late") &&
				m.Is(1, "docker_swarm_service_status", "service_name", "late", "status", "ok") &&
				m.Is(1, "docker_swarm_services_status", "status", "ok") &&
				semDockerDesired(t, s, "late") == 4 && semDockerDesired(t, s, "early") == 5
		})
	tasks, err := s.Tasks("late")
	faultMust(t, err)
	t.Logf("late, created after %s was paused: tasks %v; Docker's DesiredTasks 4", w2, faultTaskCounts(s, tasks))
	for _, tk := range tasks {
		if tk.NodeID == w2.ID() {
			t.Errorf("the paused %s got a task of late: %+v", w2, tk)
		}
	}

	// Active again, the node gets its task of late.
	faultMust(t, s.Activate(w2))
	e.WaitFor(t, 60*time.Second, "late 5 of 5 once w2 is active", func(m Metrics) bool {
		return m.Is(5, "docker_swarm_service_replicas_desired", "service_name", "late") &&
			m.Is(5, "docker_swarm_service_replicas_running", "service_name", "late") &&
			m.Is(1, "docker_swarm_services_status", "status", "ok")
	})
	faultMust(t, s.RemoveService("early", "late"))
}

// A global service for a platform no node runs (arm64 on amd64 nodes; the
// CLI fills Placement.Platforms from the image's manifest, so the API is
// used directly): the orchestrator still creates a task on every node, and
// the scheduler leaves each pending. The exporter wants 5 and sees none
// running: KO, with 5 pending tasks.
func semPlatform(t *testing.T, s *swarmtest.Swarm, e *Exporter) {
	spec := `{"Name":"armonly","Mode":{"Global":{}},"TaskTemplate":{"ContainerSpec":{"Image":"` + swarmtest.WorkloadImage + `"},` +
		`"Placement":{"Platforms":[{"Architecture":"arm64","OS":"linux"}]}}}`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://docker/v"+swarmtest.APIVersion+"/services/create", strings.NewReader(spec))
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.Node("m1").HTTPClient().Do(req)
	faultMust(t, err)
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating armonly: HTTP %d: %s", resp.StatusCode, body.String())
	}
	faultPoll(t, e, faultPollOpts{What: "armonly 0 of 5 with 5 pending tasks, KO", Every: 500 * time.Millisecond, Timeout: 60 * time.Second},
		func(sc faultScrape) bool {
			m := sc.M
			return sc.Err == nil &&
				m.Is(5, "docker_swarm_service_replicas_desired", "service_name", "armonly") &&
				m.Is(0, "docker_swarm_service_replicas_running", "service_name", "armonly") &&
				m.Is(5, "docker_swarm_service_tasks", "service_name", "armonly", "state", "pending") &&
				m.Is(1, "docker_swarm_service_status", "service_name", "armonly", "status", "ko")
		})
	// The orchestrator creates the tasks before the scheduler has looked at
	// them ("pending task scheduling"); the platform's reason comes with the
	// scheduler's first pass over them, so the test waits for it.
	var tasks []swarmtest.Task
	heldBack := func() (bool, error) {
		var err error
		if tasks, err = s.Tasks("armonly"); err != nil {
			return false, err
		}
		for _, tk := range tasks {
			if !strings.Contains(tk.Err, "unsupported platform") {
				return false, nil
			}
		}
		return len(tasks) > 0, nil
	}
	if err := s.WaitFor(30*time.Second, "the scheduler's reason on every armonly task", heldBack); err != nil {
		t.Log(err)
	}
	if len(tasks) == 0 {
		t.Fatalf("armonly: no task read from Docker")
	}
	errs := map[string]int{}
	for _, tk := range tasks {
		errs[tk.DesiredState+"/"+tk.State+": "+tk.Err]++
	}
	t.Logf("armonly: %d tasks: %v; Docker's DesiredTasks %d", len(tasks), errs, semDockerDesired(t, s, "armonly"))
	for _, tk := range tasks {
		if !strings.Contains(tk.Err, "unsupported platform") {
			t.Errorf("a task of armonly is not held back by its platform: %+v", tk)
		}
	}
	faultMust(t, s.RemoveService("armonly"))
}

// semJob is what the test reads of a job from Docker.
type semJob struct {
	ServiceStatus struct{ CompletedTasks uint64 }
	JobStatus     json.RawMessage
}

// A replicated job of 3 completions, run again with `docker service update
// --force`: the completed tasks of the first run stay in Docker's task
// list, and the exporter counts those of the current run only, never more
// than 3, as Docker does.
func semJobRerun(t *testing.T, s *swarmtest.Swarm, e *Exporter) {
	m1 := s.Node("m1")
	if _, err := s.CreateService("--name", "batch", "--mode", "replicated-job", "--replicas", "3", "--max-concurrent", "3",
		swarmtest.WorkloadImage, "exit", "0", "2"); err != nil {
		t.Fatal(err)
	}
	e.WaitFor(t, 60*time.Second, "batch: 3 completed", func(m Metrics) bool {
		return m.Is(3, "docker_swarm_service_tasks_completed", "service_name", "batch")
	})
	faultMust(t, s.UpdateService("--force", "batch"))
	maxCompleted, reruns := 0.0, 0
	faultPoll(t, e, faultPollOpts{What: "batch run again: 3 completed in the new run, as Docker counts them", Every: 300 * time.Millisecond, Timeout: 90 * time.Second},
		func(sc faultScrape) bool {
			if sc.Err != nil {
				return false
			}
			done := faultValue(sc.M, "docker_swarm_service_tasks_completed", "service_name", "batch")
			maxCompleted = max(maxCompleted, done)
			if done > 3 {
				t.Errorf("scrape %d at %v: batch has %v completed tasks, more than its 3 completions", sc.N, sc.At, done)
			}
			if done != 3 {
				reruns++ // the new run under way
				return false
			}
			tasks, err := s.Tasks("batch")
			if err != nil {
				return false
			}
			return reruns > 0 && len(tasks) >= 6 && sc.M.Is(3, "docker_swarm_service_tasks", "service_name", "batch", "state", "complete")
		})
	var svc []semJob
	faultMust(t, m1.GetJSON(context.Background(), "/v"+swarmtest.APIVersion+"/services?status=true&filters="+`%7B%22name%22%3A%5B%22batch%22%5D%7D`, &svc))
	var raw []struct {
		Slot         int
		DesiredState string
		Status       struct{ State string }
		JobIteration json.RawMessage
	}
	faultMust(t, m1.GetJSON(context.Background(), "/v"+swarmtest.APIVersion+"/tasks?filters="+`%7B%22service%22%3A%5B%22batch%22%5D%7D`, &raw))
	byIteration := map[string]int{}
	for _, r := range raw {
		byIteration[fmt.Sprintf("JobIteration %s, %s/%s", r.JobIteration, r.DesiredState, r.Status.State)]++
	}
	if len(svc) == 1 {
		t.Logf("batch after the re-run: Docker's JobStatus %s, CompletedTasks %d; tasks %v; the exporter's completed count peaked at %v",
			svc[0].JobStatus, svc[0].ServiceStatus.CompletedTasks, byIteration, maxCompleted)
	}
	faultMust(t, s.RemoveService("batch"))
}

// A service whose tasks exit after 2 seconds and are restarted after 1:
// its replacements counter keeps growing while a healthy service's stays
// at 0, and never goes down.
func semCrashLoop(t *testing.T, s *swarmtest.Swarm, e *Exporter) {
	for _, args := range [][]string{
		{"--name", "crashing", "--replicas", "2", "--restart-delay", "1s", swarmtest.WorkloadImage, "exit", "1", "2"},
		{"--name", "steady", "--replicas", "2", swarmtest.WorkloadImage},
	} {
		if _, err := s.CreateService(args...); err != nil {
			t.Fatal(err)
		}
	}
	e.WaitFor(t, 60*time.Second, "steady running 2, both counters present", func(m Metrics) bool {
		return m.Is(2, "docker_swarm_service_replicas_running", "service_name", "steady") &&
			m.Has("docker_swarm_service_task_replacements_total", "service_name", "crashing")
	})
	const counter = "docker_swarm_service_task_replacements_total"
	start, last := -1.0, -1.0
	statuses := map[string]int{}
	faultPoll(t, e, faultPollOpts{What: "crashing replaced at least 6 times while steady is never replaced", Every: 500 * time.Millisecond, Timeout: 90 * time.Second},
		func(sc faultScrape) bool {
			if sc.Err != nil {
				return false
			}
			v := faultValue(sc.M, counter, "service_name", "crashing")
			if v < last {
				t.Errorf("scrape %d at %v: the counter went down from %v to %v", sc.N, sc.At, last, v)
			}
			if start < 0 {
				start = v
			}
			last = v
			if st := faultValue(sc.M, counter, "service_name", "steady"); st != 0 {
				t.Errorf("scrape %d at %v: steady has %v replacements", sc.N, sc.At, st)
			}
			statuses[faultStatus(sc.M, "docker_swarm_service_status", "service_name", "crashing")]++
			return v-start >= 6
		})
	tasks, err := s.Tasks("crashing")
	faultMust(t, err)
	// Docker's own history: every task beyond the first of each slot is a
	// replacement (the task history retention limit, 5 per slot by
	// default, caps what it keeps).
	slots := map[int]int{}
	for _, tk := range tasks {
		slots[tk.Slot]++
	}
	kept := make([]string, 0, len(slots))
	for slot, n := range slots {
		kept = append(kept, fmt.Sprintf("slot %d: %d", slot, n))
	}
	sort.Strings(kept)
	t.Logf("crashing: the counter rose from %v to %v; statuses seen by the scrapes %v; Docker keeps %d tasks (%s)",
		start, last, statuses, len(tasks), strings.Join(kept, ", "))
	faultMust(t, s.RemoveService("crashing", "steady"))
}

// semNodeStates polls GET /nodes on a node every interval until stop is
// closed, and returns each node's states in order, with when they were
// first seen (since start).
func semNodeStates(n *swarmtest.Node, start time.Time, interval time.Duration, stop <-chan struct{}) <-chan map[string][]string {
	out := make(chan map[string][]string, 1)
	go func() {
		seen := map[string][]string{}
		last := map[string]string{}
		for {
			var nodes []struct {
				Description struct{ Hostname string }
				Status      struct{ State, Message string }
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := n.GetJSON(ctx, "/v"+swarmtest.APIVersion+"/nodes", &nodes)
			cancel()
			at := time.Since(start).Round(10 * time.Millisecond)
			if err != nil {
				msg := err.Error()
				if i := strings.Index(msg, "HTTP"); i >= 0 {
					msg = msg[i:]
				}
				if len(msg) > 60 {
					msg = msg[:60]
				}
				if last["(answer)"] != msg {
					seen["(answer)"] = append(seen["(answer)"], fmt.Sprintf("%v %s", at, msg))
					last["(answer)"] = msg
				}
			} else {
				if last["(answer)"] != "ok" {
					seen["(answer)"] = append(seen["(answer)"], fmt.Sprintf("%v ok", at))
					last["(answer)"] = "ok"
				}
				for _, nd := range nodes {
					h := nd.Description.Hostname
					if last[h] != nd.Status.State {
						seen[h] = append(seen[h], fmt.Sprintf("%v %s (%s)", at, nd.Status.State, nd.Status.Message))
						last[h] = nd.Status.State
					}
				}
			}
			select {
			case <-stop:
				out <- seen
				return
			case <-time.After(interval):
			}
		}
	}()
	return out
}

// The leader of a 3-manager, 2-worker swarm is killed. What the nodes go
// through is read from a surviving manager's /nodes every 100 ms and
// logged: every node passes through unknown (the new leader's dispatcher
// marks them so until they report in), the dead one ends down. swarmkit's
// dispatcher also has a state disconnected ("node is currently trying to
// find new manager") for a node whose session it drops; it counts, like
// unknown, as alive with its tasks running. Throughout, the exporter
// reading through the survivor never says KO, and the global service
// running on every node stays whole: its tasks on nodes that are not down
// count as running, and the nodes they run on as wanted.
func TestLeaderChangeNodeStates(t *testing.T) {
	s := swarmtest.StartForTest(t, swarmtest.Options{})
	for _, args := range [][]string{
		{"--name", "web", "--replicas", "4", swarmtest.WorkloadImage},
		{"--name", "agent", "--mode", "global", swarmtest.WorkloadImage},
	} {
		if _, err := s.CreateService(args...); err != nil {
			t.Fatal(err)
		}
	}
	leader, err := s.Leader()
	faultMust(t, err)
	var reader *swarmtest.Node
	for _, m := range s.Managers() {
		if m != leader {
			reader = m
			break
		}
	}
	e := StartExporter(t, reader.Host())
	e.WaitFor(t, 90*time.Second, "web and agent OK", func(m Metrics) bool {
		return m.Is(1, "docker_swarm_status", "status", "ok") &&
			m.Is(4, "docker_swarm_service_replicas_running", "service_name", "web") &&
			m.Is(5, "docker_swarm_service_replicas_running", "service_name", "agent")
	})
	t.Logf("killing the leader %s; the exporter reads through %s", leader, reader)

	start := time.Now()
	stop := make(chan struct{})
	states := semNodeStates(reader, start, 100*time.Millisecond, stop)
	faultMust(t, s.Kill(leader))
	exporterSaw := map[string]int{}
	var ko []string
	const scrapeTimeout = 5 * time.Second
	faultTick(t, e, faultPollOpts{What: "a new leader, the old one down, the others ready", Every: 250 * time.Millisecond,
		ScrapeTimeout: scrapeTimeout, Timeout: 3 * time.Minute},
		func(sc faultScrape) bool {
			m := sc.M
			if sc.Err != nil || !m.Is(1, "docker_swarm_up") {
				exporterSaw["no answer"]++
				return false
			}
			for _, st := range []string{"unknown", "disconnected", "down"} {
				for _, n := range s.Nodes() {
					if m.Is(1, "docker_swarm_node_state", "hostname", n.Hostname, "state", st) {
						exporterSaw[n.Name+" "+st]++
					}
				}
			}
			cl := faultStatus(m, "docker_swarm_cluster_status")
			agent := faultStatus(m, "docker_swarm_service_status", "service_name", "agent")
			web := faultStatus(m, "docker_swarm_service_status", "service_name", "web")
			exporterSaw["cluster "+cl+", agent "+agent+", web "+web]++
			if cl == "ko" || agent == "ko" || web == "ko" {
				ko = append(ko, fmt.Sprintf("%v: cluster %s, agent %s, web %s", sc.At.Round(time.Millisecond), cl, agent, web))
			}
			newLeader := false
			for _, mgr := range s.Managers() {
				if mgr != leader && m.Is(1, "docker_swarm_node_leader", "hostname", mgr.Hostname) {
					newLeader = true
				}
			}
			othersReady := true
			for _, n := range s.Nodes() {
				if n != leader && !m.Is(1, "docker_swarm_node_state", "hostname", n.Hostname, "state", "ready") {
					othersReady = false
				}
			}
			return newLeader && othersReady &&
				m.Is(1, "docker_swarm_node_state", "hostname", leader.Hostname, "state", "down") &&
				m.Is(4, "docker_swarm_service_replicas_running", "service_name", "agent") &&
				m.Is(4, "docker_swarm_service_replicas_desired", "service_name", "agent")
		})
	close(stop)
	seen := <-states
	names := make([]string, 0, len(seen))
	for h := range seen {
		names = append(names, h)
	}
	sort.Strings(names)
	disconnected := false
	for _, h := range names {
		t.Logf("%s: %s", h, strings.Join(seen[h], " → "))
		for _, st := range seen[h] {
			disconnected = disconnected || strings.Contains(st, " disconnected ")
		}
	}
	t.Logf("the exporter's scrapes (count by what they said): %v", exporterSaw)
	t.Logf("a node in state disconnected was seen in /nodes: %v", disconnected)
	if len(ko) > 0 {
		t.Errorf("%d scrapes said KO while 2 of 3 managers and both workers were alive:\n%s", len(ko), strings.Join(ko, "\n"))
	}
}
