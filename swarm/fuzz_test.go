package swarm_test

// Fuzz targets for the decoders of the Engine API's answers. Whatever bytes a
// daemon (or anything posing as one) sends, a decoder must not panic: it
// returns a *DecodeError, or a value whose enums are in range, with Docker's
// documented fallbacks for values it does not know. Where the input is what
// Docker's own encoder can produce (strict JSON: valid UTF-8, no duplicate
// member names, member names spelled as Docker spells them), each decoder
// must agree with a straightforward decode by encoding/json into the
// equivalent struct, and the tasks decoder also with json v2.
//
// The seeds are the captured daemon answers in testdata/docker; what the
// fuzzer found is kept in testdata/fuzz and replayed by plain `go test`.
// To fuzz one target: go test ./swarm -run '^$' -fuzz '^FuzzDecodeTasks$' -parallel 1 -fuzztime 5m

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/swarm-exporter/swarm_exporter/internal/testkit"
	"github.com/swarm-exporter/swarm_exporter/placement"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

// addSeeds adds each element of the captured answers of every scenario for
// the endpoints, alone and with its successor, or the whole answer when it
// is not an array, then the extra seeds. Whole lists are left out: a few
// hundred bytes mutate many times faster than 15 kB, and the whole answers
// are decoded by the other tests.
func addSeeds(f *testing.F, endpoints []string, extra ...string) {
	f.Helper()
	for _, sc := range testkit.Scenarios(f) {
		dir := testkit.ScenarioDir(sc)
		for _, ep := range endpoints {
			body, err := os.ReadFile(filepath.Join(dir, ep+".json"))
			if errors.Is(err, os.ErrNotExist) {
				continue
			} else if err != nil {
				f.Fatal(err)
			}
			var elems []jsontext.Value
			if jsonv2.Unmarshal(body, &elems) != nil {
				f.Add(body)
				continue
			}
			for i, e := range elems {
				f.Add([]byte("[" + string(e) + "]"))
				if i+1 < len(elems) {
					f.Add([]byte("[" + string(e) + "," + string(elems[i+1]) + "]"))
				}
			}
		}
	}
	for _, s := range extra {
		f.Add([]byte(s))
	}
}

// Hand-written seeds: wrong types, unknown enum values, huge numbers, null
// where an object is expected, deep nesting.
var commonSeeds = []string{
	``, `null`, `[]`, `{}`, `[null]`, `[{}]`, `"x"`, `[1]`, `[[]]`, `[{"ID":1}]`, `[] []`,
	strings.Repeat("[", 10001), `[{"Spec":` + strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat(`}`, 200) + `}]`,
}

// checkError fails unless err is a *DecodeError for endpoint.
func checkError(t *testing.T, err error, endpoint string) {
	t.Helper()
	var de *swarm.DecodeError
	if !errors.As(err, &de) || de.Endpoint != endpoint {
		t.Fatalf("error %v (%T) is not a *DecodeError for %s", err, err, endpoint)
	}
}

// valueEnd returns the offset just past the first JSON value of data, or -1.
func valueEnd(data []byte) int64 {
	dec := jsontext.NewDecoder(bytes.NewReader(data), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if _, err := dec.ReadValue(); err != nil {
		return -1
	}
	return dec.InputOffset()
}

// cuts returns offsets that cut data inside its first JSON value: a body cut
// there is truncated and must not decode as if complete.
func cuts(data []byte) []int {
	end := valueEnd(data)
	if end <= 0 {
		return nil
	}
	var out []int
	for _, c := range []int64{end - 1, end / 2, end / 3, 1} {
		if c >= 0 && c < end && !slices.Contains(out, int(c)) {
			out = append(out, int(c))
		}
	}
	return out
}

var errInjected = errors.New("injected read error")

// failingAfter returns a reader that yields data[:n] and then errInjected.
func failingAfter(data []byte, n int) io.Reader {
	return io.MultiReader(bytes.NewReader(data[:n]), iotest.ErrReader(errInjected))
}

// Names the decoders read. encoding/json matches member names without regard
// to case (and with Unicode folding: "ſtatus" is Status), Docker's encoder
// spells them exactly and the decoders match them exactly, so inputs with a
// name that only folds to one of these are not compared with encoding/json.
// decodedNames are those of every decoder; infoNames those of /info alone,
// whose answers name other things in lower case (Docker 29 describes each
// runtime's features under Runtimes.*.status, which folds to the tasks'
// and nodes' Status but is nothing DecodeInfo reads).
var decodedNames = []string{
	"ID", "Spec", "Labels", "Availability", "Description", "Hostname", "Platform", "Architecture", "OS",
	"Engine", "EngineVersion", "Status", "State", "Addr", "ManagerStatus", "Leader", "Reachability",
	"Name", "TaskTemplate", "ContainerSpec", "Image", "Placement", "Constraints", "Platforms", "Mode",
	"Replicated", "Replicas", "Global", "ReplicatedJob", "MaxConcurrent", "TotalCompletions", "GlobalJob",
	"UpdateStatus", "StartedAt", "ServiceStatus", "RunningTasks", "DesiredTasks", "CompletedTasks",
	"ServerVersion", "Swarm", "NodeID", "NodeAddr", "LocalNodeState", "ControlAvailable", "Error",
	"Nodes", "Managers", "Cluster", "RemoteManagers", "ServiceID", "DesiredState",
	"Slot", "JobIteration", "Index", "JobStatus",
}

var infoNames = []string{
	"Name", "ServerVersion", "Swarm", "NodeID", "NodeAddr", "LocalNodeState", "ControlAvailable", "Error",
	"Nodes", "Managers", "Cluster", "ID", "RemoteManagers",
}

// dockerLike reports whether data is JSON that Docker's encoder could have
// written, as far as the decoders can tell: one strict value (valid UTF-8, no
// lone surrogates, no duplicate member names) whose member names are spelled
// exactly when they name a field the decoder reads (one of names, or of
// decodedNames when names is nil).
func dockerLike(data []byte, names ...string) bool {
	if names == nil {
		names = decodedNames
	}
	if !jsontext.Value(data).IsValid() {
		return false
	}
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.ReadToken()
		if err == io.EOF {
			return true
		} else if err != nil {
			return false
		}
		if tok.Kind() != '"' {
			continue
		}
		// A string directly inside an object at an odd position is a name.
		if kind, length := dec.StackIndex(dec.StackDepth()); kind == '{' && length%2 == 1 {
			name := tok.String()
			for _, known := range names {
				if name != known && strings.EqualFold(name, known) {
					return false
				}
			}
		}
	}
}

// TestDockerLike: the filter that decides which inputs are compared with
// encoding/json lets Docker's answers through, and only those.
func TestDockerLike(t *testing.T) {
	for in, want := range map[string]bool{
		`[{"ServiceID":"a","Status":{"State":"running"},"Other":{"serviceid":1}}]`:       false,
		`[{"ServiceID":"a","Status":{"State":"running"},"Other":{"other":"serviceid"}}]`: true,
		`["Status","status"]`:      true,
		`[{"ſtatus":{}}]`:          false,
		`[{"a":1,"a":2}]`:          false,
		"[\"\xff\"]":               false,
		`["\ud800"]`:               false,
		`[] []`:                    false,
		`{"Swarm":{"NodeID":"x"}}`: true,
		`{"Swarm":{"nodeid":"x"}}`: false,
	} {
		if got := dockerLike([]byte(in)); got != want {
			t.Errorf("dockerLike(%s) = %v, want %v", in, got, want)
		}
	}
	// What /info's decoder does not read may be spelled in any case.
	for in, want := range map[string]bool{
		`{"Runtimes":{"runc":{"status":{}}}}`: true,
		`{"Swarm":{"nodeid":"x"}}`:            false,
		`{"swarm":{}}`:                        false,
	} {
		if got := dockerLike([]byte(in), infoNames...); got != want {
			t.Errorf("dockerLike(%s, infoNames) = %v, want %v", in, got, want)
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(testkit.ScenarioDir("*"), "*.json"))
	for _, d := range dirs {
		body, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		if filepath.Base(d) == "info.json" {
			names = infoNames
		}
		if !dockerLike(body, names...) {
			t.Errorf("%s: a captured answer is not Docker-like", d)
		}
	}
}

// checkStreaming decodes data again one byte at a time, cut short and
// failing mid-way: the outcome must not depend on how the bytes arrive, and a
// truncated or failed body is always an error.
func checkStreaming[T any](t *testing.T, data []byte, endpoint string, decode func(io.Reader) (T, error), want T, wantErr error) {
	t.Helper()
	got, err := decode(iotest.OneByteReader(bytes.NewReader(data)))
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("read one byte at a time: err = %v, read at once: err = %v", err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("read one byte at a time:\n%+v\nread at once:\n%+v", got, want)
	}
	if wantErr != nil {
		return
	}
	for _, c := range cuts(data) {
		if _, err := decode(bytes.NewReader(data[:c])); err == nil {
			t.Fatalf("body truncated at %d of %d bytes decoded without error", c, len(data))
		} else {
			checkError(t, err, endpoint)
		}
		_, err := decode(failingAfter(data, c))
		if err == nil {
			t.Fatalf("a read error after %d bytes was not reported", c)
		}
		checkError(t, err, endpoint)
		if !errors.Is(err, errInjected) {
			t.Fatalf("a read error after %d bytes is not wrapped: %v", c, err)
		}
	}
}

// enumOf maps name to the value of all whose String() it is, or fallback.
func enumOf[E fmt.Stringer](all []E, name string, fallback E) E {
	for _, e := range all {
		if e.String() == name {
			return e
		}
	}
	return fallback
}

func inRange[E ~uint8](t *testing.T, what string, e E, n int) {
	t.Helper()
	if int(e) >= n {
		t.Fatalf("%s = %d, out of range [0, %d)", what, e, n)
	}
}

// FuzzDecodeInfo: /info answers.
func FuzzDecodeInfo(f *testing.F) {
	addSeeds(f, []string{"info"}, append(commonSeeds,
		`{"Swarm":{"LocalNodeState":"exploded","Nodes":-3,"Managers":-1,"RemoteManagers":null}}`,
		`{"Swarm":{"LocalNodeState":"","ControlAvailable":"yes"}}`,
		`{"Swarm":{"Nodes":99999999999999999999}}`,
		`{"Swarm":{"Nodes":1.5}}`,
		`{"Swarm":{"Cluster":null,"RemoteManagers":[{},{},null]}}`,
		`{"Name":"a\"b\\c\nd é","Swarm":null}`,
	)...)
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := swarm.DecodeInfo(bytes.NewReader(data))
		if err != nil {
			checkError(t, err, "info")
		} else {
			inRange(t, "LocalNodeState", info.LocalNodeState, len(swarm.LocalNodeStates))
			if info.Nodes < 0 || info.Managers < 0 || info.RemoteManagers < 0 || info.ManagersTotal() < 0 {
				t.Fatalf("negative totals: %+v", info)
			}
		}
		checkStreaming(t, data, "info", swarm.DecodeInfo, info, err)

		var ref refInfo
		if !dockerLike(data, infoNames...) || json.Unmarshal(data, &ref) != nil {
			return
		}
		if err != nil {
			t.Fatalf("DecodeInfo refused what encoding/json accepts: %v", err)
		}
		if want := ref.expect(); !reflect.DeepEqual(*info, want) {
			t.Fatalf("DecodeInfo:\n%+v\nencoding/json and the documented mapping:\n%+v", *info, want)
		}
	})
}

type refInfo struct {
	Name          string
	ServerVersion string
	Swarm         struct {
		NodeID           string
		NodeAddr         string
		LocalNodeState   string
		ControlAvailable bool
		Error            string
		Nodes            int
		Managers         int
		Cluster          *struct{ ID string }
		RemoteManagers   []struct{}
	}
}

func (r *refInfo) expect() swarm.Info {
	s := &r.Swarm
	info := swarm.Info{
		Name: r.Name, ServerVersion: r.ServerVersion, NodeID: s.NodeID, NodeAddr: s.NodeAddr,
		// Documented: an unknown state is an error state; a missing one
		// (a daemon never in a swarm) is inactive.
		LocalNodeState:   enumOf(swarm.LocalNodeStates[:], s.LocalNodeState, swarm.LocalError),
		ControlAvailable: s.ControlAvailable, Error: s.Error,
		Nodes: max(s.Nodes, 0), Managers: max(s.Managers, 0), RemoteManagers: len(s.RemoteManagers),
	}
	if s.LocalNodeState == "" {
		info.LocalNodeState = swarm.LocalInactive
	}
	if s.Cluster != nil {
		info.ClusterID = s.Cluster.ID
	}
	return info
}

// FuzzDecodeNodes: /nodes answers.
func FuzzDecodeNodes(f *testing.F) {
	addSeeds(f, []string{"nodes"}, append(commonSeeds,
		`[{"ID":"n1","Status":{"State":"on fire"},"Spec":{"Availability":"maybe"},"ManagerStatus":{"Reachability":"sometimes","Leader":true}}]`,
		`[{"ID":"n1","ManagerStatus":null,"Description":null,"Spec":null,"Status":null}]`,
		`[{"ID":"n1","Spec":{"Labels":{"a":1}}}]`,
		`[{"ID":"n1","Spec":{"Labels":{"q\"":"b\\\n\u00e9\u2028"}},"Description":{"Hostname":"h\"\\\n☃","Engine":{"Labels":null}}}]`,
		`[{"ID":"n1","ManagerStatus":{"Leader":"true"}}]`,
	)...)
	f.Fuzz(func(t *testing.T, data []byte) {
		nodes, err := swarm.DecodeNodes(bytes.NewReader(data))
		if err != nil {
			checkError(t, err, "nodes")
		}
		for _, n := range nodes {
			inRange(t, "State", n.State, len(swarm.NodeStates))
			inRange(t, "Availability", n.Availability, len(swarm.Availabilities))
			inRange(t, "Reachability", n.Reachability, len(swarm.Reachabilities))
			if n.Leader && !n.Manager {
				t.Fatalf("a worker is leader: %+v", n)
			}
			_ = n.PlacementNode()
		}
		checkStreaming(t, data, "nodes", swarm.DecodeNodes, nodes, err)

		var ref []refNode
		if !dockerLike(data) || json.Unmarshal(data, &ref) != nil {
			return
		}
		if err != nil {
			t.Fatalf("DecodeNodes refused what encoding/json accepts: %v", err)
		}
		want := make([]swarm.Node, len(ref))
		for i := range ref {
			want[i] = ref[i].expect()
		}
		if len(nodes) != len(want) {
			t.Fatalf("DecodeNodes: %d nodes, encoding/json: %d", len(nodes), len(want))
		}
		for i := range want {
			if !equalNode(nodes[i], want[i]) {
				t.Fatalf("node %d:\n%+v\nencoding/json and the documented mapping:\n%+v", i, nodes[i], want[i])
			}
		}
	})
}

type refNode struct {
	ID   string
	Spec struct {
		Labels       map[string]string
		Availability string
	}
	Description struct {
		Hostname string
		Platform struct{ Architecture, OS string }
		Engine   struct {
			EngineVersion string
			Labels        map[string]string
		}
	}
	Status        struct{ State, Addr string }
	ManagerStatus *struct {
		Leader       bool
		Reachability string
		Addr         string
	}
}

func (r *refNode) expect() swarm.Node {
	n := swarm.Node{
		ID: r.ID, Hostname: r.Description.Hostname, EngineVersion: r.Description.Engine.EngineVersion,
		Addr: r.Status.Addr, OS: r.Description.Platform.OS, Architecture: r.Description.Platform.Architecture,
		// Documented fallbacks: unknown state → unknown, unknown availability → active.
		State:        enumOf(swarm.NodeStates[:], r.Status.State, swarm.NodeUnknown),
		Availability: enumOf(swarm.Availabilities[:], r.Spec.Availability, swarm.Active),
		Labels:       r.Spec.Labels, EngineLabels: r.Description.Engine.Labels,
	}
	if m := r.ManagerStatus; m != nil {
		n.Manager, n.Leader, n.ManagerAddr = true, m.Leader, m.Addr
		n.Reachability = enumOf(swarm.Reachabilities[:], m.Reachability, swarm.ReachabilityUnknown)
	}
	return n
}

func equalNode(a, b swarm.Node) bool {
	if !maps.Equal(a.Labels, b.Labels) || !maps.Equal(a.EngineLabels, b.EngineLabels) {
		return false
	}
	a.Labels, a.EngineLabels, b.Labels, b.EngineLabels = nil, nil, nil, nil
	if !a.Manager {
		// A worker's reachability means nothing.
		a.Reachability, b.Reachability = 0, 0
	}
	return reflect.DeepEqual(a, b)
}

// FuzzDecodeServices: /services?status=true answers.
func FuzzDecodeServices(f *testing.F) {
	addSeeds(f, []string{"services"}, append(commonSeeds,
		`[{"ID":"s1","Spec":{"Name":"a","Mode":{}}}]`,
		`[{"ID":"s1","Spec":{"Mode":{"Replicated":{}}}}]`,
		`[{"ID":"s1","Spec":{"Mode":{"Replicated":{"Replicas":18446744073709551615}}}}]`,
		`[{"ID":"s1","Spec":{"Mode":{"Replicated":{"Replicas":18446744073709551616}}}}]`,
		`[{"ID":"s1","Spec":{"Mode":{"Replicated":{"Replicas":-1}}}}]`,
		`[{"ID":"s1","Spec":{"Mode":{"ReplicatedJob":{}}}}]`,
		`[{"ID":"s1","Spec":{"Mode":{"ReplicatedJob":{"MaxConcurrent":4}}}}]`,
		`[{"ID":"s1","Spec":{"Mode":{"Global":{},"Replicated":{"Replicas":3}}}}]`,
		`[{"ID":"s1","Spec":{"Mode":{"GlobalJob":{}}}}]`,
		`[{"ID":"s1","UpdateStatus":{"State":"exploding","StartedAt":"2024-01-02T03:04:05.123456789+02:00"}}]`,
		`[{"ID":"s1","UpdateStatus":{"State":"","StartedAt":null}}]`,
		`[{"ID":"s1","UpdateStatus":{"StartedAt":"yesterday"}}]`,
		`[{"ID":"s1","Spec":{"TaskTemplate":{"ContainerSpec":{"Image":"a@b@sha256:x"},"Placement":{"Constraints":["node.role==manager",""],"Platforms":[{"OS":"linux"},null]}}}}]`,
		`[{"ID":"s1","Spec":{"Name":"a\"b\\c\nd","Labels":{"com.docker.stack.namespace":"☃\"\\\n"}}}]`,
		`[{"ID":"s1","ServiceStatus":{"RunningTasks":1,"DesiredTasks":2,"CompletedTasks":3}}]`,
		`[{"ID":"s1","JobStatus":{"JobIteration":{"Index":4},"LastExecution":"2024-01-02T03:04:05Z"}},{"ID":"s2","JobStatus":{"JobIteration":null}},{"ID":"s3","JobStatus":null}]`,
		`[{"ID":"s1","JobStatus":{"JobIteration":{"Index":-4}}}]`, `[{"ID":"s1","JobStatus":{"JobIteration":[]}}]`,
	)...)
	f.Fuzz(func(t *testing.T, data []byte) {
		services, err := swarm.DecodeServices(bytes.NewReader(data))
		if err != nil {
			checkError(t, err, "services")
		}
		for _, s := range services {
			_ = s.Mode.String()
			_ = s.UpdateState.String()
			if !s.Mode.Job() && s.MaxConcurrent != 0 {
				t.Fatalf("MaxConcurrent of a %v service: %+v", s.Mode, s)
			}
			_, _ = placement.Parse(s.Constraints)
		}
		checkStreaming(t, data, "services", swarm.DecodeServices, services, err)

		var ref []refService
		if !dockerLike(data) || json.Unmarshal(data, &ref) != nil {
			return
		}
		if err != nil {
			t.Fatalf("DecodeServices refused what encoding/json accepts: %v", err)
		}
		if len(services) != len(ref) {
			t.Fatalf("DecodeServices: %d services, encoding/json: %d", len(services), len(ref))
		}
		for i := range ref {
			if want := ref[i].expect(); !equalService(services[i], want) {
				t.Fatalf("service %d:\n%+v\nencoding/json and the documented mapping:\n%+v", i, services[i], want)
			}
		}
	})
}

type refService struct {
	ID   string
	Spec struct {
		Name         string
		Labels       map[string]string
		TaskTemplate struct {
			ContainerSpec *struct{ Image string }
			Placement     *struct {
				Constraints []string
			}
		}
		Mode struct {
			Replicated    *struct{ Replicas *uint64 }
			Global        *struct{}
			ReplicatedJob *struct{ MaxConcurrent, TotalCompletions *uint64 }
			GlobalJob     *struct{}
		}
	}
	UpdateStatus *struct {
		State     string
		StartedAt *time.Time
	}
	ServiceStatus *struct{ RunningTasks, DesiredTasks, CompletedTasks uint64 }
	JobStatus     *struct{ JobIteration struct{ Index uint64 } }
}

var updateStates = []swarm.UpdateState{swarm.Updating, swarm.UpdatePaused, swarm.UpdateCompleted,
	swarm.RollbackStarted, swarm.RollbackPaused, swarm.RollbackCompleted}

func (r *refService) expect() swarm.Service {
	s := swarm.Service{ID: r.ID, Name: r.Spec.Name, Stack: r.Spec.Labels[swarm.StackLabel]}
	if cs := r.Spec.TaskTemplate.ContainerSpec; cs != nil {
		s.Image = cs.Image
		if i := strings.LastIndex(s.Image, "@"); i >= 0 {
			s.Image = s.Image[:i]
		}
	}
	if p := r.Spec.TaskTemplate.Placement; p != nil {
		s.Constraints = p.Constraints
	}
	// Docker's precedence and defaults: global, then replicated job (one
	// at a time, as many completions as MaxConcurrent), then global job,
	// else replicated (also when no mode is given) with 1 replica.
	m := &r.Spec.Mode
	switch {
	case m.Global != nil:
		s.Mode = swarm.Global
	case m.ReplicatedJob != nil:
		s.Mode = swarm.ReplicatedJob
		s.MaxConcurrent = 1
		if m.ReplicatedJob.MaxConcurrent != nil {
			s.MaxConcurrent = *m.ReplicatedJob.MaxConcurrent
		}
		s.Replicas = s.MaxConcurrent
		if m.ReplicatedJob.TotalCompletions != nil {
			s.Replicas = *m.ReplicatedJob.TotalCompletions
		}
	case m.GlobalJob != nil:
		s.Mode = swarm.GlobalJob
	default:
		s.Mode, s.Replicas = swarm.Replicated, 1
		if m.Replicated != nil && m.Replicated.Replicas != nil {
			s.Replicas = *m.Replicated.Replicas
		}
	}
	if u := r.UpdateStatus; u != nil {
		s.UpdateState = swarm.UpdateUnknown
		if u.State == "" {
			s.UpdateState = swarm.UpdateNone
		} else {
			s.UpdateState = enumOf(updateStates, u.State, swarm.UpdateUnknown)
		}
		if u.StartedAt != nil {
			s.UpdateStartedAt = *u.StartedAt
		}
	}
	if st := r.ServiceStatus; st != nil {
		s.Reported = swarm.ReportedStatus{Running: st.RunningTasks, Desired: st.DesiredTasks, Completed: st.CompletedTasks}
	}
	if js := r.JobStatus; js != nil {
		s.HasJobStatus, s.JobIteration = true, js.JobIteration.Index
	}
	return s
}

func equalService(a, b swarm.Service) bool {
	if !slices.Equal(a.Constraints, b.Constraints) ||
		!a.UpdateStartedAt.Equal(b.UpdateStartedAt) {
		return false
	}
	a.Constraints, b.Constraints = nil, nil
	a.UpdateStartedAt, b.UpdateStartedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

// refTask is a task as encoding/json (and json v2) decode it.
type refTask struct {
	ID           string
	ServiceID    string
	NodeID       string
	Slot         uint64
	JobIteration *struct{ Index uint64 }
	DesiredState string
	Status       struct{ State string }
}

// flatTask is a decoded task with its IDs resolved.
type flatTask struct {
	ID, Slot        uint64
	JobIteration    uint64
	HasJobIteration bool
	Service, Node   string
	State, Desired  swarm.TaskState
}

func taskState(name string) swarm.TaskState {
	for i := range swarm.NumTaskStates {
		if s := swarm.TaskState(i); s != swarm.TaskUnknown && s.String() == name {
			return s
		}
	}
	return swarm.TaskUnknown
}

// expectTasks is the documented result: tasks without a service are
// dropped, a task without a node has none, unknown states are TaskUnknown,
// the ID is TaskIDHash's (0 for none), a missing or null JobIteration is
// none.
func expectTasks(ref []refTask) []flatTask {
	var out []flatTask
	for _, r := range ref {
		if r.ServiceID == "" {
			continue
		}
		ft := flatTask{ID: swarm.TaskIDHash(r.ID), Slot: r.Slot, Service: r.ServiceID, Node: r.NodeID,
			State: taskState(r.Status.State), Desired: taskState(r.DesiredState)}
		if r.JobIteration != nil {
			ft.HasJobIteration, ft.JobIteration = true, r.JobIteration.Index
		}
		out = append(out, ft)
	}
	return out
}

// checkTasks checks the invariants of a decoded task list and returns it
// with its IDs resolved.
func checkTasks(t *testing.T, ts *swarm.Tasks) []flatTask {
	t.Helper()
	for name, ids := range map[string][]string{"ServiceIDs": ts.ServiceIDs, "NodeIDs": ts.NodeIDs} {
		seen := map[string]bool{}
		for _, id := range ids {
			if id == "" || seen[id] {
				t.Fatalf("%s holds an empty or duplicate ID %q: %q", name, id, ids)
			}
			seen[id] = true
		}
	}
	var out []flatTask
	for i, task := range ts.List {
		if task.Service < 0 || int(task.Service) >= len(ts.ServiceIDs) {
			t.Fatalf("task %d: service index %d outside ServiceIDs (%d)", i, task.Service, len(ts.ServiceIDs))
		}
		if task.Node < -1 || int(task.Node) >= len(ts.NodeIDs) {
			t.Fatalf("task %d: node index %d outside NodeIDs (%d)", i, task.Node, len(ts.NodeIDs))
		}
		inRange(t, "State", task.State, swarm.NumTaskStates)
		inRange(t, "Desired", task.Desired, swarm.NumTaskStates)
		if task.JobIteration != 0 && !task.HasJobIteration {
			t.Fatalf("task %d: an iteration without JobIteration: %+v", i, task)
		}
		ft := flatTask{ID: task.ID, Slot: task.Slot, JobIteration: task.JobIteration, HasJobIteration: task.HasJobIteration,
			Service: ts.ServiceIDs[task.Service], State: task.State, Desired: task.Desired}
		if task.Node >= 0 {
			ft.Node = ts.NodeIDs[task.Node]
		}
		out = append(out, ft)
	}
	return out
}

// previous are bodies a reused decoder and task list read before the
// input: a list with other IDs, and a body cut short (an error midway); the
// input itself is read twice too.
var previous = []string{
	`[{"ID":"pt1","ServiceID":"p1","NodeID":"pn1","Slot":9,"JobIteration":{"Index":5},"DesiredState":"running","Status":{"State":"running"}},` +
		`{"ServiceID":"p2","NodeID":"pn2"},{"ServiceID":"p3","NodeID":"pn1"},{"ServiceID":"p1"}]`,
	`[{"ServiceID":"q1","NodeID":"qn1"},{"ServiceID":"q2","NodeID":"q`,
}

// FuzzDecodeTasks: /tasks answers, through the hand-written token walker.
func FuzzDecodeTasks(f *testing.F) {
	addSeeds(f, []string{"tasks", "tasks-all"}, append(commonSeeds,
		`[{"ServiceID":"s","NodeID":"","DesiredState":"running","Status":{"State":"exploded"}}]`,
		`[{"ServiceID":"s","Status":null,"DesiredState":null,"NodeID":null}]`,
		`[{"ServiceID":"","NodeID":"n"},{"NodeID":"n"},null,{}]`,
		`[{"ServiceID":"s\u0041\n\"","NodeID":"n\\","Status":{"State":"run\u006eing","Message":{"a":[1,2]}},"DesiredState":"ready"}]`,
		`[{"ServiceID":1}]`, `[{"Status":[]}]`, `[{"Status":{"State":true}}]`, `[{"ServiceID":"s"},]`,
		`[{"ServiceID":"a"},{"ServiceID":"b","NodeID":"n"},{"ServiceID":"a","NodeID":"n"}]`,
		`[{"ID":"t1","ServiceID":"s","Slot":3,"JobIteration":{"Index":7}},{"ID":"","ServiceID":"s","Slot":null,"JobIteration":null}]`,
		`[{"ID":"t\u0031","ServiceID":"s","JobIteration":{}},{"ID":null,"ServiceID":"s","JobIteration":{"Index":null}}]`,
		`[{"ID":"t1","ServiceID":"s","Slot":-1}]`, `[{"ID":"t1","ServiceID":"s","Slot":1.5}]`,
		`[{"ID":"t1","ServiceID":"s","Slot":18446744073709551616}]`, `[{"ID":1,"ServiceID":"s"}]`,
		`[{"ID":"t1","ServiceID":"s","JobIteration":3}]`, `[{"ID":"t1","ServiceID":"s","JobIteration":{"Index":"3"}}]`,
	)...)
	f.Fuzz(func(t *testing.T, data []byte) {
		var dec swarm.TasksDecoder
		var ts swarm.Tasks
		err := dec.Decode(bytes.NewReader(data), &ts)
		var got []flatTask
		if err != nil {
			checkError(t, err, "tasks")
		} else {
			got = checkTasks(t, &ts)
		}

		// A decoder and a list reused across reads, as the reader reuses
		// them, give a fresh decoder's answer.
		for _, prev := range append(previous, string(data)) {
			var reused swarm.TasksDecoder
			var rts swarm.Tasks
			_ = reused.Decode(strings.NewReader(prev), &rts)
			err2 := reused.Decode(bytes.NewReader(data), &rts)
			if (err2 == nil) != (err == nil) {
				t.Fatalf("reused decoder: err = %v, fresh decoder: err = %v", err2, err)
			}
			if err == nil {
				if got2 := checkTasks(t, &rts); !slices.Equal(got2, got) {
					t.Fatalf("reused decoder:\n%+v\nfresh decoder:\n%+v", got2, got)
				}
			}
		}
		checkStreaming(t, data, "tasks", func(r io.Reader) ([]flatTask, error) {
			var d swarm.TasksDecoder
			var ts swarm.Tasks
			if err := d.Decode(r, &ts); err != nil {
				return nil, err
			}
			return checkTasks(t, &ts), nil
		}, got, err)

		if !dockerLike(data) {
			return
		}
		var std []refTask
		if json.Unmarshal(data, &std) == nil {
			if err != nil {
				t.Fatalf("the tasks decoder refused what encoding/json accepts: %v", err)
			}
			if want := expectTasks(std); !slices.Equal(got, want) {
				t.Fatalf("tasks decoder:\n%+v\nencoding/json:\n%+v", got, want)
			}
		}
		var v2 []refTask
		if jsonv2.Unmarshal(data, &v2) == nil {
			if err != nil {
				t.Fatalf("the tasks decoder refused what json v2 accepts: %v", err)
			}
			if want := expectTasks(v2); !slices.Equal(got, want) {
				t.Fatalf("tasks decoder:\n%+v\njson v2:\n%+v", got, want)
			}
		}
	})
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// TestDecodeTasksAcrossChunkBoundaries: the fuzzer's inputs are small, but
// the tasks decoder reads large bodies in chunks and parses a task again
// when a chunk ends inside it. A filler task of growing size moves every
// byte of a real task across the usual buffer and read sizes, and values
// larger than a buffer (a long ID, a long skipped message) must grow it;
// encoding/json says what each body holds.
func TestDecodeTasksAcrossChunkBoundaries(t *testing.T) {
	task := `{"ID":"t1","ServiceID":"svc\"\\\u00e9-1","Slot":1,"NodeID":"node-1","Status":{"State":"running","Message":"a\"b","PortStatus":{}},"DesiredState":"running","Spec":{"Nested":[[{"a":[]}],null,true,-1.5e3]}}`
	filler := func(n int) string { return `{"Status":{"Message":"` + strings.Repeat("x", n) + `"}}` }
	fillerLen := len(filler(0))
	var dec swarm.TasksDecoder
	var got swarm.Tasks
	expect := func(name, body string) []flatTask {
		t.Helper()
		var std []refTask
		if err := json.Unmarshal([]byte(body), &std); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return expectTasks(std)
	}
	check := func(name, body string, want []flatTask, cut bool, readers map[string]func(string) io.Reader) {
		t.Helper()
		for rname, reader := range readers {
			if err := dec.Decode(reader(body), &got); err != nil {
				t.Fatalf("%s, %s: %v", name, rname, err)
			}
			if g := checkTasks(t, &got); !slices.Equal(g, want) {
				t.Fatalf("%s, %s:\n%+v\nencoding/json:\n%+v", name, rname, g, want)
			}
			if !cut {
				continue
			}
			// Cut anywhere in the body, the read fails.
			for _, c := range []int{len(body) - 1, len(body) - len(task), len(body) / 2} {
				if err := dec.Decode(reader(body[:c]), &got); err == nil {
					t.Fatalf("%s, %s: cut at %d of %d, no error", name, rname, c, len(body))
				}
			}
		}
	}
	readers := map[string]func(string) io.Reader{
		"whole":      func(s string) io.Reader { return strings.NewReader(s) },
		"1000 bytes": func(s string) io.Reader { return chunkReader{strings.NewReader(s), 1000} },
		"half":       func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
	}
	want := expect("filler and two tasks", "["+filler(10)+","+task+","+task+"]")
	for _, boundary := range []int{4 << 10, 64 << 10, 128 << 10} {
		for off := -2; off <= len(task)+2; off++ {
			// "[" filler "," task "]": the boundary falls off bytes into task.
			n := boundary - off - 2 - fillerLen
			check(fmt.Sprintf("boundary %d at task byte %d", boundary, off),
				"["+filler(n)+","+task+","+task+"]", want, off%16 == 0, readers)
		}
	}
	// Values larger than any buffer: an ID, a skipped string, a deep array.
	big := strings.Repeat("s", 300<<10)
	for name, body := range map[string]string{
		"long service ID":      `[{"ServiceID":"` + big + `","DesiredState":"running"},` + task + `]`,
		"long escaped node ID": `[{"ServiceID":"s","NodeID":"` + strings.Repeat(`\u00e9\n`, 40<<10) + `"},` + task + `]`,
		"long skipped string":  `[` + filler(1<<20) + `,` + task + `]`,
		"long skipped array":   `[{"Spec":[` + strings.Repeat(`[1,{"a":"b"}],`, 50<<10) + `0]},` + task + `]`,
		"many tasks":           `[` + strings.Repeat(task+",", 3000) + task + `]`,
	} {
		rs := map[string]func(string) io.Reader{"whole": readers["whole"], "1000 bytes": readers["1000 bytes"]}
		if len(body) < 400<<10 {
			rs["one byte"] = func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) }
		}
		check(name, body, expect(name, body), true, rs)
	}
}
