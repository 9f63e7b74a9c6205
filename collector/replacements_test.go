package collector_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/swarm-exporter/swarm_exporter/collector"
	"github.com/swarm-exporter/swarm_exporter/internal/fakedocker"
	"github.com/swarm-exporter/swarm_exporter/internal/testkit"
	"github.com/swarm-exporter/swarm_exporter/report"
)

// withTaskReplaced returns the fixture with the task of the service in the
// slot replaced by a new one: a new ID, as Docker's restart creates it.
func withTaskReplaced(t *testing.T, f *fakedocker.Fixture, serviceID string, slot float64, newID string) *fakedocker.Fixture {
	t.Helper()
	var tasks []map[string]any
	if err := json.Unmarshal(f.Responses["tasks"].Body, &tasks); err != nil {
		t.Fatal(err)
	}
	replaced := false
	for _, task := range tasks {
		if task["ServiceID"] == serviceID && task["Slot"] == slot {
			task["ID"] = newID
			replaced = true
		}
	}
	if !replaced {
		t.Fatalf("no task of %s in slot %v", serviceID, slot)
	}
	body, err := json.Marshal(tasks)
	if err != nil {
		t.Fatal(err)
	}
	out := &fakedocker.Fixture{Ping: f.Ping, Responses: maps.Clone(f.Responses)}
	out.Responses["tasks"] = fakedocker.Response{Status: http.StatusOK, Body: body}
	return out
}

// The task replacements counter goes through the /metrics handler as a
// counter and counts a replaced task once, on the read that first sees it.
func TestTaskReplacementsCounter(t *testing.T) {
	f := testkit.Fixture(t, "healthy-3m2w")
	srv := fakedocker.New(f)
	defer srv.Close()
	exp := newExporter(t, srv, report.DefaultOptions())
	h := exp.Handler(collector.HandlerOpts{MaxTimeout: 5 * time.Second})
	const web = `docker_swarm_service_task_replacements_total{service_name="web",stack="shop"}`
	scrape := func() string {
		t.Helper()
		_, body := get(t, h, http.Header{})
		return string(body)
	}
	has := func(body, line string) bool { return strings.Contains(body, "\n"+line+"\n") }

	first := scrape()
	if !has(first, "# TYPE docker_swarm_service_task_replacements_total counter") || !has(first, web+" 0") {
		t.Fatalf("first scrape, want the counter at 0 for web:\n%s", grepLines(first, "replacements"))
	}
	if strings.Contains(first, `replacements_total{service_name="batch"`) {
		t.Error("the job batch has a replacements counter")
	}
	srv.SetFixture(withTaskReplaced(t, f, "7xnh7j9ll00swtjkn1msz60jm", 3, "0newtask0000000000000000a"))
	for range 3 {
		if body := scrape(); !has(body, web+" 1") {
			t.Fatalf("after web's slot 3 was replaced, want 1:\n%s", grepLines(body, "replacements"))
		}
	}
	// The client library's path (a registry, protobuf) says the same.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(exp.Scrape(context.Background()))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() != "docker_swarm_service_task_replacements_total" {
			continue
		}
		if mf.GetType() != dto.MetricType_COUNTER {
			t.Errorf("type %v, want a counter", mf.GetType())
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "service_name" && l.GetValue() == "web" {
					found = true
					if v := m.GetCounter().GetValue(); v != 1 {
						t.Errorf("the registry says web has %v replacements, want 1", v)
					}
				}
			}
		}
	}
	if !found {
		t.Error("the registry has no replacements counter for web")
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
