package e2e

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// Helpers for tests of the monitoring pipeline on a real Prometheus (the
// alert matrix, matrix_*_test.go). Their names start with "pipe" so that
// they cannot clash with other files' helpers.

// pipeQ runs an instant query, failing the test on error.
func pipeQ(t *testing.T, prom *monitoring.Prometheus, expr string) []monitoring.Sample {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := prom.Query(ctx, expr)
	if err != nil {
		t.Fatalf("query %s: %v", expr, err)
	}
	return res
}

// pipeWaitQuery polls an instant query every 500 ms until cond holds on its
// result, and fails the test after timeout with the last result.
func pipeWaitQuery(t *testing.T, prom *monitoring.Prometheus, what, expr string, timeout time.Duration, cond func([]monitoring.Sample) bool) []monitoring.Sample {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := prom.Query(ctx, expr)
		cancel()
		if err == nil && cond(res) {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s: %s gives %s (err %v)", timeout, what, expr, pipeSamples(res), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// pipeSamples renders a result for messages.
func pipeSamples(res []monitoring.Sample) string {
	var out []string
	for _, s := range res {
		out = append(out, fmt.Sprintf("%s %g", monitoring.LabelsKey(s.Metric), s.Value))
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, "; ")
}

// pipeLegendLabels returns the labels a query's legend names.
func pipeLegendLabels(legend string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`).FindAllStringSubmatch(legend, -1) {
		out = append(out, m[1])
	}
	return out
}

// pipeTemplateJunk finds what a template that failed to render leaves.
var pipeTemplateJunk = regexp.MustCompile(`<no value>|error executing|error calling|%!|\{\{|\}\}|NaN`)

// pipeParallel runs f for each node at once and returns the first error.
func pipeParallel(nodes []*swarmtest.Node, f func(*swarmtest.Node) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(n)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// pipeTimeline renders a range query's series as runs of equal values,
// at times relative to from, one line per series: for logs.
func pipeTimeline(prom *monitoring.Prometheus, expr string, from, to time.Time) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	series, err := prom.QueryRange(ctx, expr, from, to, time.Second)
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, s := range series {
		var runs []string
		for i := 0; i < len(s.Points); {
			j := i
			for j+1 < len(s.Points) && s.Points[j+1].V == s.Points[i].V && s.Points[j+1].T.Sub(s.Points[j].T) <= 1500*time.Millisecond {
				j++
			}
			runs = append(runs, fmt.Sprintf("%g@%.0f..%.0fs", s.Points[i].V, s.Points[i].T.Sub(from).Seconds(), s.Points[j].T.Sub(from).Seconds()))
			i = j + 1
		}
		lines = append(lines, fmt.Sprintf("  %s: %s", monitoring.LabelsKey(s.Metric), strings.Join(runs, " ")))
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return "  (no data)"
	}
	return strings.Join(lines, "\n")
}
