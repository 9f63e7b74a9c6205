package collector_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/swarm-exporter/swarm_exporter/collector"
	"github.com/swarm-exporter/swarm_exporter/internal/fakedocker"
	"github.com/swarm-exporter/swarm_exporter/internal/testkit"
	"github.com/swarm-exporter/swarm_exporter/report"
)

func newRequest(timeoutHeader string) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodGet, "/metrics", nil)
	if err == nil && timeoutHeader != "" {
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", timeoutHeader)
	}
	return req, err
}

// A daemon that does not answer: the scrape returns by its deadline with
// docker_swarm_up 0 and the exporter's own metrics.
func TestHandlerAnswersByTheDeadline(t *testing.T) {
	srv := fakedocker.New(testkit.Fixture(t, "healthy-3m2w"))
	defer srv.Close()
	srv.Hang("nodes")
	exp := newExporter(t, srv, report.DefaultOptions())
	global := prometheus.NewRegistry()
	global.MustRegister(collectors.NewGoCollector())
	h := exp.Handler(collector.HandlerOpts{MaxTimeout: 10 * time.Second, TimeoutOffset: 250 * time.Millisecond, Gatherer: global})

	req, _ := newRequest("0.75")
	rec := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(rec, req)
	if took := time.Since(start); took > 700*time.Millisecond {
		t.Errorf("the scrape took %v; Prometheus allows 0.75s, minus the 0.25s offset", took)
	}
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{"docker_swarm_up 0", "go_goroutines", `swarm_exporter_scrape_collector_success{collector="nodes"} 0`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the answer lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(string(body), "docker_swarm_cluster_status") {
		t.Error("a scrape that could not read the swarm reports a cluster status")
	}
}

func TestHandlerServesSwarmAndSelfMetrics(t *testing.T) {
	srv := fakedocker.New(testkit.Fixture(t, "healthy-3m2w"))
	defer srv.Close()
	exp := newExporter(t, srv, report.DefaultOptions())
	global := prometheus.NewRegistry()
	global.MustRegister(collectors.NewGoCollector())
	h := exp.Handler(collector.HandlerOpts{MaxTimeout: 5 * time.Second, Gatherer: global})
	for range 2 {
		rec := httptest.NewRecorder()
		req, _ := newRequest("10")
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		body := rec.Body.String()
		for _, want := range []string{"docker_swarm_up 1", `docker_swarm_cluster_status{status="ok"} 1`, "go_goroutines"} {
			if !strings.Contains(body, want) {
				t.Errorf("the answer lacks %q", want)
			}
		}
	}
	if got := srv.TotalRequests(); got != 10 {
		t.Errorf("two scrapes made %d requests, want 10: every scrape reads the swarm", got)
	}
}
