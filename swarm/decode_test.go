package swarm

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarm-exporter/swarm_exporter/internal/testkit"
)

func TestDecodeHealthyFixture(t *testing.T) {
	info, err := DecodeInfo(bytes.NewReader(testkit.Body(t, "healthy-3m2w", "info")))
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "swx-m1" || info.LocalNodeState != LocalActive || !info.ControlAvailable ||
		info.Nodes != 5 || info.Managers != 3 || info.RemoteManagers != 3 || info.NodeID == "" || info.ClusterID == "" {
		t.Errorf("info = %+v", info)
	}

	nodes, err := DecodeNodes(bytes.NewReader(testkit.Body(t, "healthy-3m2w", "nodes")))
	if err != nil {
		t.Fatal(err)
	}
	var managers, leaders int
	for _, n := range nodes {
		if n.State != NodeReady || n.Availability != Active || n.EngineVersion == "" || n.Addr == "" || n.OS != "linux" {
			t.Errorf("node %+v", n)
		}
		if n.Manager {
			managers++
			if n.Reachability != Reachable || n.ManagerAddr == "" {
				t.Errorf("manager %+v", n)
			}
		}
		if n.Leader {
			leaders++
			if n.Hostname != "swx-m1" || n.ID != info.NodeID {
				t.Errorf("leader is %s (%s), want swx-m1 (%s)", n.Hostname, n.ID, info.NodeID)
			}
		}
	}
	if len(nodes) != 5 || managers != 3 || leaders != 1 {
		t.Errorf("%d nodes, %d managers, %d leaders; want 5, 3, 1", len(nodes), managers, leaders)
	}

	services, err := DecodeServices(bytes.NewReader(testkit.Body(t, "healthy-3m2w", "services")))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Service{}
	for _, s := range services {
		byName[s.Name] = s
	}
	want := map[string]struct {
		mode     Mode
		replicas uint64
		stack    string
	}{
		"web": {Replicated, 6, "shop"}, "agent": {Global, 0, ""}, "pinned": {Replicated, 2, ""},
		"mgr-global": {Global, 0, ""}, "zero": {Replicated, 0, ""}, "updating": {Replicated, 2, ""},
		"batch": {ReplicatedJob, 3, ""},
	}
	if len(services) != len(want) {
		t.Errorf("%d services, want %d", len(services), len(want))
	}
	for name, w := range want {
		s, ok := byName[name]
		if !ok {
			t.Errorf("service %s missing", name)
			continue
		}
		if s.Mode != w.mode || s.Replicas != w.replicas || s.Stack != w.stack || s.Image != "swarmtest/workload:latest" {
			t.Errorf("service %s = mode %v replicas %d stack %q image %q; want %v %d %q", name, s.Mode, s.Replicas, s.Stack, s.Image, w.mode, w.replicas, w.stack)
		}
	}
	if c := byName["pinned"].Constraints; len(c) != 1 || c[0] != "node.role==worker" {
		t.Errorf("pinned constraints = %q", c)
	}
	if u := byName["updating"]; u.UpdateState != Updating || u.UpdateStartedAt.IsZero() {
		t.Errorf("updating: state %v started %v", u.UpdateState, u.UpdateStartedAt)
	}
	if b := byName["batch"]; b.MaxConcurrent == 0 || b.Reported.Completed != 3 {
		t.Errorf("batch = %+v", b)
	}
	if u := byName["web"]; u.UpdateState != UpdateNone || !u.UpdateStartedAt.IsZero() {
		t.Errorf("web was never updated, got %v", u.UpdateState)
	}
}

// stdTask is what encoding/json makes of a task; the compact decoder must
// agree with it on every fixture.
type stdTask struct {
	ServiceID    string
	NodeID       string
	DesiredState string
	Status       struct{ State string }
}

func TestDecodeTasksAgreesWithEncodingJSON(t *testing.T) {
	var dec TasksDecoder
	var got Tasks
	for _, sc := range testkit.Scenarios(t) {
		for _, ep := range []string{"tasks", "tasks-all"} {
			body := testkit.Body(t, sc, ep)
			if _, err := os.Stat(filepath.Join(testkit.ScenarioDir(sc), ep+".status")); err == nil {
				continue // an error answer, not a task list
			}
			var want []stdTask
			if err := json.Unmarshal(body, &want); err != nil {
				t.Fatalf("%s/%s: %v", sc, ep, err)
			}
			// The same decoder is reused across inputs, as the reader does.
			if err := dec.Decode(bytes.NewReader(body), &got); err != nil {
				t.Fatalf("%s/%s: %v", sc, ep, err)
			}
			if len(got.List) != len(want) {
				t.Fatalf("%s/%s: %d tasks, want %d", sc, ep, len(got.List), len(want))
			}
			for i, w := range want {
				g := got.List[i]
				node := ""
				if g.Node >= 0 {
					node = got.NodeIDs[g.Node]
				}
				if got.ServiceIDs[g.Service] != w.ServiceID || node != w.NodeID ||
					g.Desired.String() != w.DesiredState || g.State.String() != w.Status.State {
					t.Errorf("%s/%s task %d: got %s %s %v/%v, want %+v", sc, ep, i, got.ServiceIDs[g.Service], node, g.Desired, g.State, w)
				}
			}
		}
	}
}

func TestDecodeEveryFixture(t *testing.T) {
	for _, sc := range testkit.Scenarios(t) {
		if _, err := DecodeInfo(bytes.NewReader(testkit.Body(t, sc, "info"))); err != nil {
			t.Errorf("%s info: %v", sc, err)
		}
		if _, err := os.Stat(filepath.Join(testkit.ScenarioDir(sc), "nodes.status")); err == nil {
			continue
		}
		if _, err := DecodeNodes(bytes.NewReader(testkit.Body(t, sc, "nodes"))); err != nil {
			t.Errorf("%s nodes: %v", sc, err)
		}
		if _, err := DecodeServices(bytes.NewReader(testkit.Body(t, sc, "services"))); err != nil {
			t.Errorf("%s services: %v", sc, err)
		}
	}
}

func TestDecodeTruncatedNeverPanics(t *testing.T) {
	var dec TasksDecoder
	for _, ep := range []string{"nodes", "services", "tasks", "info"} {
		body := testkit.Body(t, "healthy-3m2w", ep)
		step := max(len(body)/200, 1)
		for cut := 0; cut < len(body)-1; cut += step {
			r := bytes.NewReader(body[:cut])
			var err error
			switch ep {
			case "nodes":
				_, err = DecodeNodes(r)
			case "services":
				_, err = DecodeServices(r)
			case "info":
				_, err = DecodeInfo(r)
			case "tasks":
				var ts Tasks
				err = dec.Decode(r, &ts)
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Endpoint != ep {
				t.Fatalf("%s cut at %d: err = %v, want a DecodeError", ep, cut, err)
			}
		}
	}
}

func TestDecodeWrongTypes(t *testing.T) {
	var dec TasksDecoder
	for _, body := range []string{
		`{"ID":"x"}`, `"tasks"`, `[1]`, `[{"ServiceID":5}]`, `[{"Status":"running"}]`,
		`[{"DesiredState":["running"]}]`, `[{"Status":{"State":{}}}]`, `[{"ServiceID":"a"]`, ``,
	} {
		var ts Tasks
		if err := dec.Decode(strings.NewReader(body), &ts); err == nil {
			t.Errorf("tasks %q: no error", body)
		}
	}
	for _, body := range []string{`{"ID":"x"}`, `[{"Spec":{"Availability":3}}]`, `[{"ManagerStatus":"yes"}]`, `[7]`} {
		if _, err := DecodeNodes(strings.NewReader(body)); err == nil {
			t.Errorf("nodes %q: no error", body)
		}
	}
	for _, body := range []string{`[{"Spec":{"Mode":{"Replicated":{"Replicas":"6"}}}}]`, `[{"Spec":{"Name":1}}]`, `{}`} {
		if _, err := DecodeServices(strings.NewReader(body)); err == nil {
			t.Errorf("services %q: no error", body)
		}
	}
	if _, err := DecodeInfo(strings.NewReader(`{"Swarm":{"Nodes":"five"}}`)); err == nil {
		t.Error("info with a string count: no error")
	}
}

func TestDecodeDefaults(t *testing.T) {
	// Unknown enum values map to documented fallbacks instead of failing.
	nodes, err := DecodeNodes(strings.NewReader(`[{"ID":"n1","Spec":{"Availability":"hibernate"},"Status":{"State":"sleeping"},"ManagerStatus":{"Reachability":"maybe"}}]`))
	if err != nil {
		t.Fatal(err)
	}
	if n := nodes[0]; n.State != NodeUnknown || n.Availability != Active || n.Reachability != ReachabilityUnknown || !n.Manager {
		t.Errorf("fallbacks: %+v", n)
	}
	var dec TasksDecoder
	var ts Tasks
	if err := dec.Decode(strings.NewReader(`[{"ServiceID":"s","NodeID":"","DesiredState":"dreaming","Status":{"State":"levitating"}},{"NodeID":"n"}]`), &ts); err != nil {
		t.Fatal(err)
	}
	if len(ts.List) != 1 || ts.List[0].State != TaskUnknown || ts.List[0].Desired != TaskUnknown || ts.List[0].Node != -1 {
		t.Errorf("tasks: %+v (a task without service is dropped, an unknown state maps to unknown)", ts.List)
	}
	for _, body := range []string{`null`, `[]`} {
		if n, err := DecodeNodes(strings.NewReader(body)); err != nil || len(n) != 0 {
			t.Errorf("nodes %s: %v %v", body, n, err)
		}
		if err := dec.Decode(strings.NewReader(body), &ts); err != nil || len(ts.List) != 0 {
			t.Errorf("tasks %s: %v %v", body, ts.List, err)
		}
	}
	services, err := DecodeServices(strings.NewReader(`[{"ID":"s1","Spec":{"Name":"a","Mode":{},"TaskTemplate":{"ContainerSpec":{"Image":"nginx:1.27@sha256:0123"}}},"UpdateStatus":{"State":"teleporting"}},
		{"ID":"s2","Spec":{"Name":"b","Mode":{"ReplicatedJob":{}}}}, {"ID":"s3","Spec":{"Name":"c","Mode":{"ReplicatedJob":{"MaxConcurrent":2}}}}]`))
	if err != nil {
		t.Fatal(err)
	}
	if s := services[0]; s.Mode != Replicated || s.Replicas != 1 || s.Image != "nginx:1.27" || s.UpdateState != UpdateUnknown {
		t.Errorf("service defaults: %+v", s)
	}
	if s := services[1]; s.Mode != ReplicatedJob || s.MaxConcurrent != 1 || s.Replicas != 1 {
		t.Errorf("job defaults: %+v", s)
	}
	if s := services[2]; s.MaxConcurrent != 2 || s.Replicas != 2 {
		t.Errorf("job completions default to MaxConcurrent: %+v", s)
	}
	info, err := DecodeInfo(strings.NewReader(`{"Name":"x","Swarm":{"LocalNodeState":"quantum"}}`))
	if err != nil || info.LocalNodeState != LocalError {
		t.Errorf("unknown local node state: %+v %v", info, err)
	}
	info, err = DecodeInfo(strings.NewReader(`{"Name":"x","Swarm":{}}`))
	if err != nil || info.LocalNodeState != LocalInactive {
		t.Errorf("missing local node state: %+v %v", info, err)
	}
}

func TestDecodeEscapedStrings(t *testing.T) {
	var dec TasksDecoder
	var ts Tasks
	if err := dec.Decode(strings.NewReader(`[{"Service\u0049D":"a\"b","DesiredState":"r\u0075nning","Status":{"State":"running"}}]`), &ts); err != nil {
		t.Fatal(err)
	}
	if len(ts.List) != 1 || ts.ServiceIDs[0] != `a"b` || ts.List[0].Desired != TaskRunning {
		t.Errorf("escaped strings: %+v %q", ts.List, ts.ServiceIDs)
	}
}
