package main

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/go-kit/log"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/swarm-exporter/swarm_exporter/internal/testkit"
)

// documented is one row of the README's metric tables.
type documented struct {
	labels []string
	// open: the labels cell ends with "…": the family has at least these
	// labels (the client library's build_info, whose labels it chooses).
	open bool
}

// backticked matches the `quoted` words of a table cell.
var backticked = regexp.MustCompile("`([^`]*)`")

// readmeMetrics parses the tables of README.md whose header is
// | Metric | Labels | Meaning |: in each row the first quoted word of the
// first cell is the family, and the labels cell lists the labels, each
// optionally followed by = and its values, separated by ";" when values
// are given.
func readmeMetrics(t *testing.T, path string) map[string]documented {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]documented{}
	inTable := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			inTable = false
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) >= 2 && cells[0] == "Metric" && cells[1] == "Labels" {
			inTable = true
			continue
		}
		if !inTable || strings.HasPrefix(cells[0], "---") {
			continue
		}
		name := backticked.FindStringSubmatch(cells[0])
		if name == nil || len(cells) < 3 {
			t.Errorf("README.md: a metric table row without a `name` and three cells: %s", line)
			continue
		}
		var d documented
		for _, part := range strings.Split(cells[1], ";") {
			labels, _, _ := strings.Cut(part, "=")
			for _, m := range backticked.FindAllStringSubmatch(labels, -1) {
				d.labels = append(d.labels, m[1])
			}
			d.open = d.open || strings.Contains(labels, "…")
		}
		sort.Strings(d.labels)
		if _, dup := out[name[1]]; dup {
			t.Errorf("README.md documents %s twice", name[1])
		}
		out[name[1]] = d
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("README.md: no metric table (| Metric | Labels | Meaning |) found")
	}
	return out
}

// emittedMetrics returns the families, with their label names, that the
// exporter as main wires it serves on /metrics over every captured
// scenario: the swarm's and the exporter's own, but for the Go runtime's
// and the process's, which the client library documents.
func emittedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	labels := map[string]map[string]bool{}
	for _, sc := range testkit.Scenarios(t) {
		docker := testkit.FakeDocker(t, sc)
		var f flags
		app, _ := newApp(&f)
		if _, err := app.Parse([]string{"--docker.host", docker.Host}); err != nil {
			t.Fatal(err)
		}
		reader, _, h, err := newMetrics(&f, log.NewNopLogger())
		if err != nil {
			t.Fatal(err)
		}
		// The exporter's own metrics are gathered before a scrape reads
		// the swarm: the second scrape shows the first one's requests.
		var body string
		for range 2 {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("%s: /metrics answered %d", sc, rec.Code)
			}
			body = rec.Body.String()
		}
		reader.Close()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(strings.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", sc, err)
		}
		for name, mf := range families {
			if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
				continue
			}
			if labels[name] == nil {
				labels[name] = map[string]bool{}
			}
			for _, m := range mf.Metric {
				for _, lp := range m.Label {
					labels[name][lp.GetName()] = true
				}
			}
		}
	}
	out := map[string][]string{}
	for name, set := range labels {
		out[name] = []string{}
		for l := range set {
			out[name] = append(out[name], l)
		}
		sort.Strings(out[name])
	}
	return out
}

// TestREADMEMetricTables: the README's metric tables, the public metric
// contract, document exactly what the exporter emits: every family, with
// its labels, and nothing it never emits.
func TestREADMEMetricTables(t *testing.T) {
	docs := readmeMetrics(t, "README.md")
	emitted := emittedMetrics(t)
	for _, name := range sortedKeys(emitted) {
		d, ok := docs[name]
		switch {
		case !ok:
			t.Errorf("%s{%s} is emitted but not documented in README.md's metric tables", name, strings.Join(emitted[name], ","))
		case d.open && !isSubset(d.labels, emitted[name]):
			t.Errorf("%s: README.md documents labels %q, not all of which are emitted (%q)", name, d.labels, emitted[name])
		case !d.open && !slices.Equal(d.labels, emitted[name]):
			t.Errorf("%s: README.md documents labels %q, the exporter emits %q", name, d.labels, emitted[name])
		}
	}
	for _, name := range sortedKeys(docs) {
		if _, ok := emitted[name]; !ok {
			t.Errorf("%s is documented in README.md but emitted in no captured scenario", name)
		}
	}
}

func isSubset(sub, set []string) bool {
	for _, s := range sub {
		if !slices.Contains(set, s) {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
