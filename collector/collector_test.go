package collector_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/swarm-exporter/swarm_exporter/collector"
	"github.com/swarm-exporter/swarm_exporter/internal/fakedocker"
	"github.com/swarm-exporter/swarm_exporter/internal/testkit"
	"github.com/swarm-exporter/swarm_exporter/report"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

var update = flag.Bool("update", false, "rewrite the expected expositions in testdata/ (review the diff!)")

func newExporter(t testing.TB, srv *fakedocker.Server, opts report.Options, enabled ...string) *collector.Exporter {
	t.Helper()
	r, err := swarm.NewReader(swarm.Config{Host: srv.Host, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if enabled == nil {
		enabled = collector.Flags(nil).Enabled()
	}
	exp, err := collector.New(r, opts, enabled, log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

// durationValue matches the value of a series of a _duration_seconds
// family: the only values that change from run to run.
var durationValue = regexp.MustCompile(`(?m)^([a-z_:]+_duration_seconds(?:\{[^}]*\})?) \S+$`)

// exposition renders every family the collector emits as text, as the
// client library writes it, with the durations masked to 0.
func exposition(t testing.TB, c prometheus.Collector) []byte {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return durationValue.ReplaceAll(b.Bytes(), []byte("$1 0"))
}

// TestExpositions compares the whole exposition of each golden scenario with
// its file: a family or series that is missing, extra or renamed, a label or
// a value that changed, fails. After a deliberate change, regenerate the
// files with `go test ./collector -run TestExpositions -update` and review
// the diff.
func TestExpositions(t *testing.T) {
	// Every captured scenario (testdata/docker), from a healthy swarm to a
	// daemon that is not in a swarm, on Docker 20.10 and on Docker 29
	// (<scenario>-docker29): a new capture needs its golden file.
	for _, sc := range testkit.Scenarios(t) {
		t.Run(sc, func(t *testing.T) {
			srv := fakedocker.New(testkit.Fixture(t, sc))
			defer srv.Close()
			exp := newExporter(t, srv, report.DefaultOptions())
			got := exposition(t, exp.Scrape(context.Background()))
			file := filepath.Join("testdata", sc+".prom")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if d := lineDiff(string(want), string(got)); d != "" {
				t.Errorf("the exposition differs from %s (- expected, + emitted; -update rewrites it):\n%s", file, d)
			}
		})
	}
}

// lineDiff lists the lines only in want (-) and only in got (+), in order;
// "" when both hold the same lines in the same order.
func lineDiff(want, got string) string {
	if want == got {
		return ""
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	in := func(lines []string) map[string]int {
		m := map[string]int{}
		for _, l := range lines {
			m[l]++
		}
		return m
	}
	inW, inG := in(w), in(g)
	var out []string
	for _, l := range w {
		if inG[l] == 0 {
			out = append(out, "- "+l)
		}
	}
	for _, l := range g {
		if inW[l] == 0 {
			out = append(out, "+ "+l)
		}
	}
	if len(out) == 0 {
		return "(the same lines in another order)"
	}
	return strings.Join(out, "\n")
}

// Switching a collector off removes its series only: the statuses and the
// aggregate counts stay the same.
func TestCollectorsDoNotChangeStatuses(t *testing.T) {
	srv := fakedocker.New(testkit.Fixture(t, "worker-down"))
	defer srv.Close()
	all := exposition(t, newExporter(t, srv, report.DefaultOptions()).Scrape(context.Background()))
	none := exposition(t, newExporter(t, srv, report.DefaultOptions(), []string{}...).Scrape(context.Background()))
	only := func(b []byte, keep func(string) bool) string {
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			name := strings.TrimPrefix(strings.TrimPrefix(l, "# HELP "), "# TYPE ")
			if i := strings.IndexAny(name, "{ "); i >= 0 {
				name = name[:i]
			}
			if keep(name) {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	core := func(name string) bool {
		return strings.HasPrefix(name, "docker_swarm_") && !strings.HasPrefix(name, "docker_swarm_node_") && !strings.HasPrefix(name, "docker_swarm_service_")
	}
	if a, n := only(all, core), only(none, core); a != n || !strings.Contains(a, `docker_swarm_cluster_status{status="warning"} 1`) {
		t.Errorf("cluster metrics differ with collectors off:\n%s\n---\n%s", a, n)
	}
	perObject := func(name string) bool {
		return strings.HasPrefix(name, "docker_swarm_node_") || strings.HasPrefix(name, "docker_swarm_service_")
	}
	if s := only(none, perObject); strings.TrimSpace(s) != "" {
		t.Errorf("per-node or per-service series with every collector off:\n%s", s)
	}
	for _, name := range []string{"nodes", "services", "tasks"} {
		got := exposition(t, newExporter(t, srv, report.DefaultOptions(), name).Scrape(context.Background()))
		if only(got, core) != only(all, core) {
			t.Errorf("cluster metrics differ with only %s on", name)
		}
		if !bytes.Contains(got, []byte(`swarm_exporter_scrape_collector_success{collector="`+name+`"} 1`)) {
			t.Errorf("collector %s reports no success", name)
		}
	}
}

func TestUnknownCollector(t *testing.T) {
	srv := fakedocker.New(testkit.Fixture(t, "healthy-3m2w"))
	defer srv.Close()
	r, _ := swarm.NewReader(swarm.Config{Host: srv.Host, Timeout: time.Second})
	if _, err := collector.New(r, report.DefaultOptions(), []string{"containers"}, log.NewNopLogger()); err == nil {
		t.Error("an unknown collector was accepted")
	}
	if got := strings.Join(collector.Names(), ","); got != "nodes,services,tasks" {
		t.Errorf("collectors = %s", got)
	}
}

// The number of Docker API requests per scrape does not depend on the
// number of services.
func TestRequestsPerScrapeAreConstant(t *testing.T) {
	template := testkit.Fixture(t, "healthy-3m2w")
	counts := map[int]int{}
	for _, services := range []int{10, 1000} {
		f, err := fakedocker.Synth(template, fakedocker.SynthOptions{Managers: 3, Workers: 7, Services: services, Replicas: 2, GlobalServices: 2, HistoryPerSlot: 1})
		if err != nil {
			t.Fatal(err)
		}
		srv := fakedocker.New(f)
		exp := newExporter(t, srv, report.DefaultOptions())
		n := testutil.CollectAndCount(exp.Scrape(context.Background()), "docker_swarm_service_info")
		if n != services+2 {
			t.Errorf("%d services exposed, want %d", n, services+2)
		}
		counts[services] = srv.TotalRequests()
		srv.Close()
	}
	if counts[10] != counts[1000] || counts[10] > 5 {
		t.Errorf("requests per scrape: %v, want the same number (at most 5) at every size", counts)
	}
}

// The series budget: per node and per service, at default settings.
func TestSeriesBudget(t *testing.T) {
	template := testkit.Fixture(t, "healthy-3m2w")
	series := func(managers, workers, services int) int {
		f, err := fakedocker.Synth(template, fakedocker.SynthOptions{Managers: managers, Workers: workers, Services: services, Replicas: 3})
		if err != nil {
			t.Fatal(err)
		}
		srv := fakedocker.New(f)
		defer srv.Close()
		exp := newExporter(t, srv, report.DefaultOptions())
		return testutil.CollectAndCount(exp.Scrape(context.Background()))
	}
	base := series(3, 2, 10)
	perService := (series(3, 2, 20) - base) / 10
	perWorker := (series(3, 12, 10) - base) / 10
	perManager := (series(13, 2, 10) - base) / 10
	t.Logf("series: %d per service (steady state), %d per worker, %d per manager", perService, perWorker, perManager)
	if perService != 8 {
		t.Errorf("a running service costs %d series, want 8 (info, desired, running, 3 statuses, task replacements, 1 task state)", perService)
	}
	if perWorker != 8 || perManager != 12 {
		t.Errorf("a worker costs %d series, a manager %d; want 8 and 12", perWorker, perManager)
	}
}

func TestScrapeTimeout(t *testing.T) {
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", 10 * time.Second},
		{"5", 4750 * time.Millisecond},
		{"30", 10 * time.Second},
		{"0.2", 100 * time.Millisecond}, // the offset would leave nothing: half of it
		{"junk", 10 * time.Second},
	}
	for _, tt := range tests {
		req, _ := newRequest(tt.header)
		if got := collector.ScrapeTimeout(req, 10*time.Second, 250*time.Millisecond); got != tt.want {
			t.Errorf("header %q: %v, want %v", tt.header, got, tt.want)
		}
	}
}

// An instance that leaves the services to the leader's exporter
// (--read.services=leader) emits exactly what the full read emits about
// the cluster and the nodes, and nothing about the services: no
// per-service series, no services status and no overall status. Its own
// node is the follower's. On both engines' captures.
func TestFollowerExposition(t *testing.T) {
	for _, sc := range []string{"healthy-3m2w", "healthy-3m2w-docker29"} {
		t.Run(sc, func(t *testing.T) { testFollowerExposition(t, sc) })
	}
}

func testFollowerExposition(t *testing.T, scenario string) {
	leaderSrv := fakedocker.New(testkit.Fixture(t, scenario))
	defer leaderSrv.Close()
	// The capture was made through the leader: read it through another
	// manager.
	var nodes []struct {
		ID            string
		Description   struct{ Hostname string }
		ManagerStatus *struct{ Leader bool }
	}
	if err := json.Unmarshal(testkit.Fixture(t, scenario).Responses["nodes"].Body, &nodes); err != nil {
		t.Fatal(err)
	}
	var leaderID, leaderHost, followerID, followerHost string
	for _, n := range nodes {
		switch {
		case n.ManagerStatus != nil && n.ManagerStatus.Leader:
			leaderID, leaderHost = n.ID, n.Description.Hostname
		case n.ManagerStatus != nil && followerID == "":
			followerID, followerHost = n.ID, n.Description.Hostname
		}
	}
	f, err := testkit.Fixture(t, scenario).AsNode(followerID)
	if err != nil {
		t.Fatal(err)
	}
	followerSrv := fakedocker.New(f)
	defer followerSrv.Close()
	r, err := swarm.NewReader(swarm.Config{Host: followerSrv.Host, Timeout: 5 * time.Second, Services: swarm.ServicesLeader})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	follower, err := collector.New(r, report.DefaultOptions(), collector.Flags(nil).Enabled(), log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}

	full := string(exposition(t, newExporter(t, leaderSrv, report.DefaultOptions()).Scrape(context.Background())))
	got := string(exposition(t, follower.Scrape(context.Background())))
	if n := followerSrv.Requests(); n["services"]+n["tasks"] != 0 {
		t.Errorf("the follower's scrape read the services: %v", n)
	}
	notAboutServices := func(line string) bool {
		for _, prefix := range []string{"docker_swarm_service_", "docker_swarm_services_status", "docker_swarm_status",
			"docker_swarm_local_node_", "swarm_exporter_scrape_collector_success"} {
			name := strings.TrimPrefix(strings.TrimPrefix(line, "# HELP "), "# TYPE ")
			if strings.HasPrefix(name, prefix) {
				return false
			}
		}
		return true
	}
	keep := func(s string) string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if notAboutServices(l) {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	if keep(got) != keep(full) {
		t.Errorf("the follower's cluster and node series differ from the full read's:\n%s\n--- full read:\n%s", keep(got), keep(full))
	}
	for _, want := range []string{
		"docker_swarm_up 1",
		`docker_swarm_cluster_status{status="ok"} 1`,
		`docker_swarm_node_leader{hostname="` + leaderHost + `",node_id="` + leaderID + `"} 1`,
		`docker_swarm_local_node_info{hostname="` + followerHost + `",node_id="` + followerID + `",role="manager"} 1`,
		"docker_swarm_local_node_leader 0",
		`swarm_exporter_scrape_collector_success{collector="nodes"} 1`,
		`swarm_exporter_scrape_collector_success{collector="services"} 0`,
		`swarm_exporter_scrape_collector_success{collector="tasks"} 0`,
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("the follower's exposition lacks %s", want)
		}
	}
	for _, absent := range []string{"docker_swarm_service_", "docker_swarm_services_status{", "docker_swarm_status{"} {
		if strings.Contains(got, "\n"+absent) {
			t.Errorf("the follower's exposition has %s series", absent)
		}
	}
	if !strings.Contains(full, "\ndocker_swarm_status{") || !strings.Contains(full, "\ndocker_swarm_service_info{") {
		t.Fatal("the full read's exposition lacks the services: the comparison proves nothing")
	}

	// The status API's report reads them all the same.
	rep := follower.FullReport(context.Background())
	if !rep.ServicesKnown || len(rep.Services) != 7 || !rep.OverallKnown() {
		t.Errorf("FullReport on a follower: services known %v, %d services, overall known %v", rep.ServicesKnown, len(rep.Services), rep.OverallKnown())
	}
	if n := followerSrv.Requests(); n["services"] != 1 || n["tasks"] != 1 {
		t.Errorf("FullReport on a follower: requests %v, want one read of the services and tasks", n)
	}
}
