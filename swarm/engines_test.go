package swarm_test

// What differs between the engines the exporter is tested on, Debian's
// 20.10 (Engine API 1.41) and Docker 29 (API 1.54), read through the
// answers captured from each (testdata/docker/<scenario> and
// <scenario>-docker29), and the API version refusals a daemon answers when
// its range and the exporter's do not meet.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/fakedocker"
	"github.com/swarm-exporter/swarm_exporter/internal/testkit"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

// engines are the captured engines: the suffix of their scenarios, the API
// version the exporter negotiates with them and the version they report.
var engines = []struct {
	name, suffix, api, version string
}{
	{"20.10", "", "1.41", "20.10.24+dfsg1"},
	{"29", "-docker29", "1.54", "29.5.2"},
}

// The first read logs the engine's version and the negotiated API version,
// and a read after a failure does too (the daemon may have been upgraded
// in between).
func TestReadLogsEngineAndAPIVersion(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			srv := fakedocker.New(testkit.Fixture(t, "healthy-3m2w"+eng.suffix))
			defer srv.Close()
			var lines logLines
			r := newReader(t, srv.Host, 5*time.Second, nil, &lines)
			if snap := r.Read(context.Background()); snap.Err != nil || snap.APIVersion != eng.api {
				t.Fatalf("read: %v, API %q; want API %s", snap.Err, snap.APIVersion, eng.api)
			}
			srv.SetFixture(testkit.Fixture(t, "worker-node"+eng.suffix))
			r.Read(context.Background())
			srv.SetFixture(testkit.Fixture(t, "healthy-3m2w"+eng.suffix))
			r.Read(context.Background())
			var reads []string
			for _, kv := range lines.lines {
				if msg := logValue(kv, "msg"); strings.HasPrefix(msg, "reading the swarm") {
					reads = append(reads, fmt.Sprintf("%s: engine_version=%s api_version=%s", msg, logValue(kv, "engine_version"), logValue(kv, "api_version")))
				}
			}
			want := []string{
				"reading the swarm: engine_version=" + eng.version + " api_version=" + eng.api,
				"reading the swarm again: engine_version=" + eng.version + " api_version=" + eng.api,
			}
			if strings.Join(reads, "\n") != strings.Join(want, "\n") {
				t.Errorf("log lines of the reads:\n%s\nwant:\n%s", strings.Join(reads, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func logValue(kv []any, key string) string {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == key {
			return fmt.Sprint(kv[i+1])
		}
	}
	return ""
}

// A node that cannot serve the cluster state answers differently on each
// engine (Docker 29's ping says so in its Swarm header, and the exporter
// then reads /info only); the exporter classifies both alike.
func TestReadFailuresOnEachEngine(t *testing.T) {
	tests := []struct {
		scenario string
		kind     swarm.Kind
		state    swarm.LocalNodeState
	}{
		{"worker-node", swarm.KindNotManager, swarm.LocalActive},
		{"no-swarm", swarm.KindNotInSwarm, swarm.LocalInactive},
		{"locked", swarm.KindLocked, swarm.LocalLocked},
	}
	for _, eng := range engines {
		for _, tt := range tests {
			t.Run(eng.name+"/"+tt.scenario, func(t *testing.T) {
				f := testkit.Fixture(t, tt.scenario+eng.suffix)
				srv := fakedocker.New(f)
				defer srv.Close()
				snap := newReader(t, srv.Host, 5*time.Second, nil, nil).Read(context.Background())
				var e *swarm.Error
				if !errors.As(snap.Err, &e) || e.Kind != tt.kind {
					t.Fatalf("err = %v, want kind %s", snap.Err, tt.kind)
				}
				if snap.Info == nil || snap.Info.LocalNodeState != tt.state || snap.Info.ServerVersion != eng.version {
					t.Errorf("info = %+v, want local node state %v, version %s", snap.Info, tt.state, eng.version)
				}
				// 20.10 sends no Swarm header: the exporter asks for the
				// cluster state and is refused; 29 says in its ping that the
				// node cannot serve it, and the exporter does not ask.
				// (The first refusal cancels the other requests: any one
				// of them shows that it asked.)
				req := srv.Requests()
				asked := req["nodes"]+req["services"]+req["tasks"] > 0
				if header := f.Ping.Get("Swarm"); (header == "") != asked {
					t.Errorf("ping's Swarm header %q, yet the exporter asked for the cluster state: %v (requests %v)", header, asked, req)
				}
			})
		}
	}
}

// Docker's minimum API version moved: 20.10 serves 1.12 and newer, Docker
// 29.0 refused everything below 1.44, later 29.x releases serve 1.40 and
// newer unless DOCKER_MIN_API_VERSION raises it. A daemon refuses a version
// outside its range with HTTP 400; the exporter says which side to change.
func TestReadAPIVersionOutsideTheDaemonsRange(t *testing.T) {
	tests := []struct {
		name            string
		pinned          string // DOCKER_API_VERSION
		daemon, min     string // the daemon's newest and oldest version
		negotiated      string // "" when the read fails
		hint, notInHint string
	}{
		{name: "negotiated above a raised minimum", daemon: "1.54", min: "1.44", negotiated: "1.54"},
		{name: "pinned within the range", pinned: "1.41", daemon: "1.54", min: "1.40", negotiated: "1.41"},
		{name: "pinned below the minimum", pinned: "1.41", daemon: "1.54", min: "1.44",
			hint: "DOCKER_API_VERSION=1.41 is older than the daemon's minimum API version 1.44: unset DOCKER_API_VERSION"},
		{name: "pinned above the daemon's version", pinned: "1.56", daemon: "1.54", min: "1.40",
			hint: "DOCKER_API_VERSION=1.56 is newer than the daemon's API version 1.54", notInHint: "upgrade"},
		{name: "daemon's minimum above every version the exporter speaks", daemon: "1.60", min: "1.58",
			hint: "upgrade swarm_exporter", notInHint: "DOCKER_API_VERSION"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DOCKER_API_VERSION", tt.pinned)
			f := testkit.Fixture(t, "healthy-3m2w-docker29")
			f.Ping = http.Header{"Api-Version": {tt.daemon}}
			srv := fakedocker.New(f)
			defer srv.Close()
			srv.SetMinAPIVersion(tt.min)
			var lines logLines
			snap := newReader(t, srv.Host, 5*time.Second, nil, &lines).Read(context.Background())
			if tt.negotiated != "" {
				if snap.Err != nil || snap.APIVersion != tt.negotiated || len(snap.Nodes) != 5 {
					t.Fatalf("read: %v, API %s, %d nodes; want API %s and 5 nodes", snap.Err, snap.APIVersion, len(snap.Nodes), tt.negotiated)
				}
				return
			}
			var e *swarm.Error
			if !errors.As(snap.Err, &e) || e.Kind != swarm.KindAPIVersion {
				t.Fatalf("err = %v, want kind %s", snap.Err, swarm.KindAPIVersion)
			}
			if !strings.Contains(e.Hint, tt.hint) || (tt.notInHint != "" && strings.Contains(e.Hint, tt.notInHint)) {
				t.Errorf("hint %q: want %q in it, and not %q", e.Hint, tt.hint, tt.notInHint)
			}
			if !strings.Contains(lines.all(), "api_version") {
				t.Errorf("the log does not give the reason: %s", lines.all())
			}
		})
	}
}

// The decoders make the same model of the same swarm on both engines: every
// scenario captured on each, reduced to what does not change from one
// capture to the next (IDs, addresses, timestamps and versions aside).
func TestDecodersAgreeAcrossEngines(t *testing.T) {
	for _, sc := range []string{"healthy-3m2w", "worker-down", "manager-down", "quorum-lost", "missing-image",
		"drained-paused", "locked", "worker-node", "no-swarm"} {
		t.Run(sc, func(t *testing.T) {
			var views []string
			for _, eng := range engines {
				views = append(views, engineView(t, sc+eng.suffix, eng.version))
			}
			if views[0] != views[1] {
				t.Errorf("20.10 and 29 decode differently:\n--- %s\n%s\n--- %s\n%s", sc, views[0], sc+engines[1].suffix, views[1])
			}
		})
	}
}

// engineView renders what the decoders make of a captured scenario, without
// what differs from capture to capture; it checks on the way that the
// daemon and every node report the engine's version.
func engineView(t *testing.T, scenario, version string) string {
	t.Helper()
	f := testkit.Fixture(t, scenario)
	body := func(ep string) []byte {
		r, ok := f.Responses[ep]
		if !ok || r.Status/100 != 2 {
			return nil
		}
		return r.Body
	}
	var b strings.Builder
	info, err := swarm.DecodeInfo(bytes.NewReader(body("info")))
	if err != nil {
		t.Fatal(err)
	}
	if info.ServerVersion != version {
		t.Errorf("%s: ServerVersion %q, want %q", scenario, info.ServerVersion, version)
	}
	fmt.Fprintf(&b, "info: %s %v control %v nodes %d managers %d known managers %d error %q\n", info.Name, info.LocalNodeState,
		info.ControlAvailable, info.Nodes, info.Managers, info.RemoteManagers, info.Error)
	if nb := body("nodes"); nb != nil {
		nodes, err := swarm.DecodeNodes(bytes.NewReader(nb))
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(nodes, func(a, b swarm.Node) int { return strings.Compare(a.Hostname, b.Hostname) })
		for _, n := range nodes {
			if n.EngineVersion != version {
				t.Errorf("%s: node %s reports engine %q, want %q", scenario, n.Hostname, n.EngineVersion, version)
			}
			fmt.Fprintf(&b, "node %s: %s %v %v leader %v %v %s/%s\n", n.Hostname, n.Role(), n.State, n.Availability,
				n.Leader, n.Reachability, n.OS, n.Architecture)
		}
	} else {
		fmt.Fprintf(&b, "nodes: HTTP %d %s\n", f.Responses["nodes"].Status, f.Responses["nodes"].Body)
	}
	names := map[string]string{}
	if sb := body("services"); sb != nil {
		services, err := swarm.DecodeServices(bytes.NewReader(sb))
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(services, func(a, b swarm.Service) int { return strings.Compare(a.Name, b.Name) })
		for _, s := range services {
			names[s.ID] = s.Name
			fmt.Fprintf(&b, "service %s: %v %d (max %d) stack %q image %s constraints %q update %v\n", s.Name, s.Mode, s.Replicas,
				s.MaxConcurrent, s.Stack, s.Image, s.Constraints, s.UpdateState)
		}
	}
	// The current tasks, where they do not depend on the moment of the
	// capture (restart delays and rejections do).
	if sc := strings.TrimSuffix(scenario, "-docker29"); sc == "healthy-3m2w" || sc == "drained-paused" {
		var dec swarm.TasksDecoder
		var ts swarm.Tasks
		if err := dec.Decode(bytes.NewReader(body("tasks")), &ts); err != nil {
			t.Fatal(err)
		}
		counts := map[string]int{}
		for _, tk := range ts.List {
			counts[fmt.Sprintf("%s %v/%v", names[ts.ServiceIDs[tk.Service]], tk.Desired, tk.State)]++
		}
		for _, k := range slices.Sorted(maps.Keys(counts)) {
			fmt.Fprintf(&b, "tasks %s: %d\n", k, counts[k])
		}
	}
	return b.String()
}
