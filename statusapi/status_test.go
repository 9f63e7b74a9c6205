package statusapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/swarm-exporter/swarm_exporter/collector"
	"github.com/swarm-exporter/swarm_exporter/internal/fakedocker"
	"github.com/swarm-exporter/swarm_exporter/internal/testkit"
	"github.com/swarm-exporter/swarm_exporter/report"
	"github.com/swarm-exporter/swarm_exporter/statusapi"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

func exporterFor(t *testing.T, f *fakedocker.Fixture) *collector.Exporter {
	t.Helper()
	srv := fakedocker.New(f)
	t.Cleanup(srv.Close)
	r, err := swarm.NewReader(swarm.Config{Host: srv.Host, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	exp, err := collector.New(r, report.DefaultOptions(), collector.Flags(nil).Enabled(), log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

// memReader answers every read with the same snapshot.
type memReader struct{ snap *swarm.Snapshot }

func (m memReader) Read(context.Context) *swarm.Snapshot { return m.snap }

// readOnce reads a captured scenario once through the real reader.
func readOnce(t *testing.T, scenario string) *swarm.Snapshot {
	t.Helper()
	r, err := swarm.NewReader(swarm.Config{Host: testkit.FakeDocker(t, scenario).Host, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return r.Read(context.Background())
}

// exporterOf returns an exporter whose every read is snap, so that the
// metrics and the status API render the same read.
func exporterOf(t *testing.T, snap *swarm.Snapshot) *collector.Exporter {
	t.Helper()
	exp, err := collector.New(memReader{snap}, report.DefaultOptions(), collector.Flags(nil).Enabled(), log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

// asJSON renders like the API does and decodes generically, so that the
// test sees the keys users script against.
func asJSON(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The seed's examples: 3 managers + 2 workers all ready → OK; services 15/15
// and 5/5 → OK. The keys are those of py-docker's generic_status().
func TestSeedExamples(t *testing.T) {
	f, err := fakedocker.Synth(testkit.Fixture(t, "healthy-3m2w"), fakedocker.SynthOptions{Managers: 3, Workers: 2, Services: 1, Replicas: 15, GlobalServices: 1})
	if err != nil {
		t.Fatal(err)
	}
	rep := exporterFor(t, f).Report(context.Background())
	g := asJSON(t, statusapi.Render(rep))

	sc := g["status_cluster"].(map[string]any)
	want := map[string]any{
		"total_nodes": 5.0, "total_readys": 5.0, "status": "OK",
		"workers":  map[string]any{"total": 2.0, "ready": 2.0},
		"managers": map[string]any{"total": 3.0, "ready": 3.0},
	}
	for k, v := range want {
		if got, _ := json.Marshal(sc[k]); string(got) != mustJSON(v) {
			t.Errorf("status_cluster.%s = %s, want %s", k, got, mustJSON(v))
		}
	}
	services := g["services"].([]any)
	if len(services) != 2 {
		t.Fatalf("services = %v", services)
	}
	for _, s := range services {
		s := s.(map[string]any)
		r, n := s["replicas"].(float64), s["running"].(float64)
		if !(r == 15 && n == 15 || r == 5 && n == 5) || s["status"] != "OK" || s["id_service"] == "" {
			t.Errorf("service %v, want 15/15 or 5/5 OK", s)
		}
	}
	if g["status"] != "OK" || g["status_overall"] != "OK" {
		t.Errorf("status %v, status_overall %v", g["status"], g["status_overall"])
	}
	nodes := g["nodes"].([]any)
	managers := 0
	for _, n := range nodes {
		n := n.(map[string]any)
		for _, k := range []string{"id", "hostname", "engine_version", "status"} {
			if _, ok := n[k]; !ok {
				t.Errorf("node lacks %s: %v", k, n)
			}
		}
		if _, ok := n["manager_status"]; ok {
			managers++
			if n["manager_status"] != "reachable" || n["manager_addr"] == "" {
				t.Errorf("manager %v", n)
			}
		}
	}
	if len(nodes) != 5 || managers != 3 {
		t.Errorf("%d nodes, %d with manager_status; want 5 and 3", len(nodes), managers)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Jobs are not in the seed-compatible list; they have their own key.
func TestJobsAreSeparate(t *testing.T) {
	g := asJSON(t, statusapi.Render(exporterFor(t, testkit.Fixture(t, "healthy-3m2w")).Report(context.Background())))
	for _, s := range g["services"].([]any) {
		if s.(map[string]any)["mode"] == "replicated-job" {
			t.Errorf("a job in services: %v", s)
		}
	}
	jobs := g["jobs"].([]any)
	if len(jobs) != 1 || jobs[0].(map[string]any)["completed"] != 3.0 {
		t.Errorf("jobs = %v", jobs)
	}
	if g["status"] != "KO" || g["status_overall"] != "KO" {
		t.Errorf("status %v overall %v: the zero service runs nothing", g["status"], g["status_overall"])
	}
}

// The metrics and the status API render the same read identically.
func TestMetricsAndStatusAgree(t *testing.T) {
	for _, sc := range []string{"healthy-3m2w", "worker-down", "manager-down", "missing-image", "drained-paused", "quorum-lost"} {
		t.Run(sc, func(t *testing.T) {
			exp := exporterOf(t, readOnce(t, sc))
			g := statusapi.Render(exp.Report(context.Background()))
			metrics := gather(t, exp.Scrape(context.Background()))

			if got := oneHot(metrics, "docker_swarm_cluster_status", nil); got != strings.ToLower(g.StatusCluster.Status) {
				t.Errorf("cluster: metrics %s, JSON %s", got, g.StatusCluster.Status)
			}
			if got := oneHot(metrics, "docker_swarm_status", nil); got != strings.ToLower(*g.StatusOverall) {
				t.Errorf("overall: metrics %s, JSON %s", got, *g.StatusOverall)
			}
			if g.ServicesPart.Status == nil {
				if _, ok := metrics["docker_swarm_services_status"]; ok {
					t.Error("services status in the metrics but not in the JSON")
				}
				return
			}
			if got := oneHot(metrics, "docker_swarm_services_status", nil); got != strings.ToLower(*g.ServicesPart.Status) {
				t.Errorf("services: metrics %s, JSON %s", got, *g.ServicesPart.Status)
			}
			for _, s := range g.Services {
				labels := map[string]string{"service_name": s.Name}
				if got := oneHot(metrics, "docker_swarm_service_status", labels); got != strings.ToLower(s.Status) {
					t.Errorf("%s: metrics %s, JSON %s", s.Name, got, s.Status)
				}
				if got := value(metrics, "docker_swarm_service_replicas_running", labels); got != float64(s.Running) {
					t.Errorf("%s running: metrics %v, JSON %d", s.Name, got, s.Running)
				}
				if got := value(metrics, "docker_swarm_service_replicas_desired", labels); got != float64(s.Replicas) {
					t.Errorf("%s desired: metrics %v, JSON %d", s.Name, got, s.Replicas)
				}
			}
			for _, n := range g.Nodes {
				labels := map[string]string{"node_id": n.ID}
				if got := oneHot(metrics, "docker_swarm_node_state", labels); got != n.Status {
					t.Errorf("node %s: metrics %s, JSON %s", n.Hostname, got, n.Status)
				}
			}
		})
	}
}

func gather(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func matches(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := labels[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(labels)
}

// oneHot returns the label value of the series at 1 in a state set.
func oneHot(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) string {
	found := ""
	for _, m := range mfs[name].GetMetric() {
		if matches(m, labels) && m.GetGauge().GetValue() == 1 {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "status" || lp.GetName() == "state" {
					if found != "" {
						return "more than one at 1"
					}
					found = lp.GetValue()
				}
			}
		}
	}
	return found
}

func value(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	for _, m := range mfs[name].GetMetric() {
		if matches(m, labels) {
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

func TestHandler(t *testing.T) {
	exp := exporterFor(t, testkit.Fixture(t, "healthy-3m2w"))
	h := statusapi.Handler("/api/v1/status", exp.Report, 5*time.Second)
	for path, wantKeys := range map[string][]string{
		"/api/v1/status":          {"status_cluster", "nodes", "services", "status", "jobs", "status_overall"},
		"/api/v1/status/cluster":  {"status_cluster"},
		"/api/v1/status/services": {"services", "status", "jobs"},
		"/api/v1/status/nodes":    {"nodes"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s", path, rec.Code, rec.Header().Get("Content-Type"))
		}
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, k := range wantKeys {
			if _, ok := m[k]; !ok {
				t.Errorf("%s lacks %q", path, k)
			}
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/status/containers", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("unknown part: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/status", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}

	// An unreadable swarm: 503 with the reason.
	exp = exporterFor(t, testkit.Fixture(t, "worker-node"))
	h = statusapi.Handler("/api/v1/status", exp.Report, 5*time.Second)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/status", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != http.StatusServiceUnavailable || !bytes.Contains(body, []byte(`"reason": "not_manager"`)) {
		t.Errorf("worker: %d %s", rec.Code, body)
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		scenario string
		codes    map[string]int
	}{
		{"healthy-3m2w", map[string]int{"": 2, "cluster": 0, "services": 2, "nodes": 0}},
		{"worker-down", map[string]int{"": 2, "cluster": 1, "services": 2, "nodes": 0}},
		{"drained-paused", map[string]int{"": 0, "cluster": 0, "services": 0, "nodes": 0}},
		{"quorum-lost", map[string]int{"": 2, "cluster": 2, "services": 3, "nodes": 3}},
		{"worker-node", map[string]int{"": 3, "cluster": 3, "services": 3, "nodes": 3}},
	}
	for _, tt := range tests {
		rep := exporterFor(t, testkit.Fixture(t, tt.scenario)).Report(context.Background())
		for part, want := range tt.codes {
			if got := statusapi.ExitCode(rep, part); got != want {
				t.Errorf("%s, part %q: exit %d, want %d", tt.scenario, part, got, want)
			}
		}
	}
}

func TestTable(t *testing.T) {
	rep := exporterFor(t, testkit.Fixture(t, "worker-down")).Report(context.Background())
	var b bytes.Buffer
	if err := statusapi.WriteTable(&b, rep, ""); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"CLUSTER", "WARNING", "node_not_ready", "HOSTNAME", "Down", "Leader", "web", "5/6", "batch", "(3 completed)"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
}
