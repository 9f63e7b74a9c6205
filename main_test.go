package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/health"
	"github.com/swarm-exporter/swarm_exporter/internal/fakedocker"
	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
	"github.com/swarm-exporter/swarm_exporter/internal/testkit"
	"github.com/swarm-exporter/swarm_exporter/report"
)

func fake(t *testing.T, scenario string) *fakedocker.Server {
	return testkit.FakeDocker(t, scenario)
}

func TestStatusCommand(t *testing.T) {
	healthy := fake(t, "healthy-3m2w").Host
	worker := fake(t, "worker-down").Host
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"status", "--docker.host", healthy}, 2, `"status_overall": "KO"`},
		{[]string{"status", "cluster", "--docker.host", healthy}, 0, `"status": "OK"`},
		{[]string{"status", "services", "--docker.host", healthy}, 2, `"id_service"`},
		{[]string{"status", "services", "--docker.host", healthy, "--health.allow-zero-replicas"}, 0, `"status": "OK"`},
		{[]string{"status", "nodes", "--docker.host", worker}, 0, `"manager_status": "reachable"`},
		{[]string{"status", "cluster", "--docker.host", worker}, 1, `"node_not_ready"`},
		{[]string{"status", "--output=table", "--docker.host", worker}, 2, "MANAGER STATUS"},
		{[]string{"status", "--docker.host", "unix://" + filepath.Join(t.TempDir(), "none.sock")}, 3, `"reason": "unreachable"`},
		{[]string{"status", "containers"}, 64, ""},
		{[]string{"status", "--output=yaml"}, 64, ""},
		{[]string{"--no-such-flag"}, 64, ""},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(tt.args, &stdout, &stderr)
		if code != tt.code {
			t.Errorf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", tt.args, code, tt.code, stdout.String(), stderr.String())
		}
		if !strings.Contains(stdout.String(), tt.want) {
			t.Errorf("%v: output lacks %q:\n%s", tt.args, tt.want, stdout.String())
		}
		if tt.code == 64 && !strings.Contains(stderr.String(), "error") {
			t.Errorf("%v: a usage error says nothing on stderr", tt.args)
		}
	}
}

func TestStatusJSONIsValid(t *testing.T) {
	var stdout bytes.Buffer
	run([]string{"status", "--docker.host", fake(t, "quorum-lost").Host}, &stdout, io.Discard)
	var m map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout.String())
	}
	if m["status_overall"] != "KO" || m["services"] != nil || m["status_cluster"].(map[string]any)["status"] != "KO" {
		t.Errorf("quorum lost: %v", m)
	}
}

// serve runs the exporter with args on a free loopback address until the
// test ends (run returns with the process), and returns its base URL once
// it answers /-/healthy.
func serve(t *testing.T, logs io.Writer, args ...string) string {
	t.Helper()
	addr := monitoring.FreeAddr(t)
	go run(append([]string{"--web.listen-address=" + addr}, args...), io.Discard, logs)
	base := "http://" + addr
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(base + "/-/healthy")
		if err == nil {
			resp.Body.Close()
			return base
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not start: %v\n%s", err, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	docker := fake(t, "healthy-3m2w")
	var logs testkit.LockedBuffer
	base := serve(t, &logs, "--docker.host="+docker.Host, "--no-collector.tasks", "--log.format=json")

	// The exporter's own metrics are gathered before the swarm is read:
	// the request counters show a scrape's reads from the next one on.
	get(t, base+"/metrics")

	checks := []struct {
		path string
		code int
		want []string
		not  []string
	}{
		{"/metrics", 200, []string{"docker_swarm_up 1", `docker_swarm_cluster_status{status="ok"} 1`, "swarm_exporter_build_info", "go_goroutines", "process_cpu_seconds_total", `swarm_exporter_docker_requests_total{code="200",endpoint="tasks"}`, "docker_swarm_service_replicas_running"}, []string{"docker_swarm_service_tasks{"}},
		{"/-/healthy", 200, []string{"Healthy"}, nil},
		{"/-/ready", 200, []string{"Ready"}, nil},
		{"/api/v1/status", 200, []string{`"status_cluster"`, `"status_overall": "KO"`}, nil},
		{"/api/v1/status/cluster", 200, []string{`"status": "OK"`}, nil},
		{"/", 200, []string{"Docker Swarm Exporter", "/metrics", "/api/v1/status"}, nil},
	}
	for _, c := range checks {
		code, body := get(t, base+c.path)
		if code != c.code {
			t.Errorf("%s: %d, want %d", c.path, code, c.code)
		}
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s lacks %q", c.path, w)
			}
		}
		for _, w := range c.not {
			if strings.Contains(body, w) {
				t.Errorf("%s has %q (collector disabled)", c.path, w)
			}
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("--log.format=json wrote a line that is not JSON: %s", line)
		}
	}
	if !strings.Contains(logs.String(), "reading the swarm") {
		t.Errorf("no start-up read logged:\n%s", logs.String())
	}
}

func TestReadyFollowsTheDaemon(t *testing.T) {
	var logs testkit.LockedBuffer
	base := serve(t, &logs, "--docker.host=unix://"+filepath.Join(t.TempDir(), "none.sock"))
	if code, body := get(t, base+"/-/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "Not ready") {
		t.Errorf("/-/ready without a daemon: %d %s", code, body)
	}
	if code, _ := get(t, base+"/-/healthy"); code != 200 {
		t.Errorf("/-/healthy: %d", code)
	}
	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "docker_swarm_up 0") {
		t.Errorf("/metrics without a daemon: %d, up 0 missing", code)
	}
	if code, _ := get(t, base+"/api/v1/status"); code != http.StatusServiceUnavailable {
		t.Errorf("/api/v1/status without a daemon: %d", code)
	}
}

// The health flags' defaults are the health package's: an exporter started
// without them judges the swarm as report.DefaultOptions does.
func TestHealthFlagDefaults(t *testing.T) {
	var f flags
	app, _ := newApp(&f)
	if _, err := app.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if got, want := f.reportOptions(), report.DefaultOptions(); got != want {
		t.Errorf("the flags' defaults give %+v, report.DefaultOptions %+v", got, want)
	}
	// The documented defaults, the original library's: 3 managers, 2
	// workers, 0 of 0 replicas is KO.
	documented := report.Options{Thresholds: health.Thresholds{MinManagers: 3, MinWorkers: 2}}
	if got := f.reportOptions(); got != documented {
		t.Errorf("the flags' defaults give %+v, the README documents %+v", got, documented)
	}
}

// On a manager that is not the leader, --read.services=leader leaves the
// services out of the scrapes but not out of the status API, and
// --read.max-age makes the scrapes within it share one read.
func TestServerReadFlags(t *testing.T) {
	f, err := testkit.Fixture(t, "healthy-3m2w").AsNode("06xes3fqfninbivpzrwaqhhbu") // swx-m2, a follower
	if err != nil {
		t.Fatal(err)
	}
	docker := fakedocker.New(f)
	t.Cleanup(docker.Close)
	var logs testkit.LockedBuffer
	base := serve(t, &logs, "--docker.host="+docker.Host, "--read.services=leader", "--read.max-age=1h")
	for range 3 {
		code, body := get(t, base+"/metrics")
		if code != 200 || !strings.Contains(body, "docker_swarm_up 1") || !strings.Contains(body, "docker_swarm_node_info{") {
			t.Fatalf("/metrics: %d\n%s", code, body)
		}
		for _, absent := range []string{"\ndocker_swarm_service_info{", "\ndocker_swarm_status{", "\ndocker_swarm_services_status{"} {
			if strings.Contains(body, absent) {
				t.Errorf("a follower's /metrics has %s", strings.TrimSpace(absent))
			}
		}
	}
	// The read at start-up and the scrapes share one read.
	if got := docker.Requests(); got["nodes"] != 1 || got["services"] != 0 || got["tasks"] != 0 {
		t.Errorf("requests after 3 scrapes within max-age: %v, want one read of /nodes and none of the services", got)
	}
	code, body := get(t, base+"/api/v1/status")
	if code != 200 || !strings.Contains(body, `"id_service"`) || !strings.Contains(body, `"status_overall"`) {
		t.Errorf("/api/v1/status on a follower: %d, no services:\n%s", code, body)
	}
	if got := docker.Requests(); got["services"] != 1 || got["tasks"] != 1 {
		t.Errorf("requests after the status API: %v, want one read of the services and tasks", got)
	}
	if !strings.Contains(logs.String(), "this manager is not the swarm's leader") {
		t.Errorf("the follower mode is not logged:\n%s", logs.String())
	}

	var stderr bytes.Buffer
	if code := run([]string{"--read.services=never"}, io.Discard, &stderr); code != 64 {
		t.Errorf("--read.services=never: exit %d, want 64 (%s)", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"--read.max-age=-1s", "--web.listen-address=" + monitoring.FreeAddr(t)}, io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "--read.max-age") {
		t.Errorf("--read.max-age=-1s: exit %d, want 1 with a message naming the flag (%s)", code, stderr.String())
	}
}
