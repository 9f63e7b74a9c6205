package e2e

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
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
