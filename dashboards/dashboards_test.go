// Package dashboards_test checks the Grafana dashboards: their structure
// (what Grafana's provisioning needs), the provisioning files, and every
// panel query against a real Prometheus that scrapes the real exporter
// reading captured Docker API answers, with the recording rules loaded.
// The Prometheus checks skip when the prometheus binary is missing, unless
// CI=true.
package dashboards_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v2"

	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
)

func dashboards(t *testing.T) []monitoring.Dashboard {
	t.Helper()
	ds, err := monitoring.LoadDashboards()
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) < 3 {
		t.Fatalf("want the overview, services and nodes dashboards, have %d", len(ds))
	}
	return ds
}

func num(v any) (float64, bool) { f, ok := v.(float64); return f, ok }

const datasourceRef = "${datasource}"

func TestDashboardStructure(t *testing.T) {
	uids, titles := map[string]bool{}, map[string]bool{}
	for _, d := range dashboards(t) {
		name := filepath.Base(d.File)
		uid, title := d.UID(), d.Title()
		if uid == "" || len(uid) > 40 || uids[uid] {
			t.Errorf("%s: uid %q must be set, unique and at most 40 characters", name, uid)
		}
		uids[uid] = true
		if title == "" || titles[title] {
			t.Errorf("%s: title %q must be set and unique", name, title)
		}
		titles[title] = true
		if sv, ok := num(d.JSON["schemaVersion"]); !ok || sv < 30 {
			t.Errorf("%s: schemaVersion %v, want a number >= 30", name, d.JSON["schemaVersion"])
		}
		if id, ok := d.JSON["id"]; ok && id != nil {
			t.Errorf("%s: id must be null for provisioning, is %v", name, id)
		}

		vars := map[string]map[string]any{}
		for _, v := range d.Variables() {
			n, _ := v["name"].(string)
			vars[n] = v
		}
		if v := vars["datasource"]; v == nil || v["type"] != "datasource" || v["query"] != "prometheus" {
			t.Errorf("%s: no datasource template variable of type prometheus", name)
		}
		for n, v := range vars {
			if n == "datasource" {
				continue
			}
			if v["type"] != "query" {
				t.Errorf("%s: variable %s is not a query variable", name, n)
			}
			if ds, _ := v["datasource"].(map[string]any); ds == nil || ds["uid"] != datasourceRef {
				t.Errorf("%s: variable %s does not query ${datasource}", name, n)
			}
		}
		for _, n := range []string{"job", "cluster"} {
			if vars[n] == nil {
				t.Errorf("%s: no %s variable", name, n)
			}
		}
		if v := vars["instance"]; v != nil && (v["includeAll"] != true || v["allValue"] != ".*") {
			t.Errorf("%s: the instance variable must offer All (.*), so that every exporter counts by default", name)
		}

		ids := map[float64]bool{}
		type rect struct{ x, y, w, h float64 }
		var rects []rect
		var rects2 []string
		for _, p := range d.Panels() {
			title, _ := p["title"].(string)
			id, ok := num(p["id"])
			if !ok || ids[id] {
				t.Errorf("%s: panel %q: id %v missing or not unique", name, title, p["id"])
			}
			ids[id] = true
			gp, _ := p["gridPos"].(map[string]any)
			x, okx := num(gp["x"])
			y, oky := num(gp["y"])
			w, okw := num(gp["w"])
			h, okh := num(gp["h"])
			if !okx || !oky || !okw || !okh || w <= 0 || h <= 0 || x < 0 || x+w > 24 {
				t.Errorf("%s: panel %q: bad gridPos %v", name, title, gp)
			} else {
				for i, r := range rects {
					if x < r.x+r.w && r.x < x+w && y < r.y+r.h && r.y < y+h {
						t.Errorf("%s: panel %q overlaps panel %q", name, title, rects2[i])
					}
				}
				rects = append(rects, rect{x, y, w, h})
				rects2 = append(rects2, title)
			}
			if p["type"] == "row" {
				continue
			}
			if title == "" {
				t.Errorf("%s: panel %v has no title", name, id)
			}
			if ds, _ := p["datasource"].(map[string]any); ds == nil || ds["uid"] != datasourceRef {
				t.Errorf("%s: panel %q does not use ${datasource}", name, title)
			}
			fc, _ := p["fieldConfig"].(map[string]any)
			defaults, _ := fc["defaults"].(map[string]any)
			if unit, _ := defaults["unit"].(string); unit == "" {
				t.Errorf("%s: panel %q has no unit", name, title)
			}
			targets, _ := p["targets"].([]any)
			if len(targets) == 0 {
				t.Errorf("%s: panel %q has no query", name, title)
			}
			refs := map[string]bool{}
			for _, tg := range targets {
				tm, _ := tg.(map[string]any)
				ref, _ := tm["refId"].(string)
				if ref == "" || refs[ref] {
					t.Errorf("%s: panel %q: refId %q missing or repeated", name, title, ref)
				}
				refs[ref] = true
				if ds, _ := tm["datasource"].(map[string]any); ds == nil || ds["uid"] != datasourceRef {
					t.Errorf("%s: panel %q query %s does not use ${datasource}", name, title, ref)
				}
				expr, _ := tm["expr"].(string)
				if strings.Contains(expr, ":severity") {
					checkStatusMappings(t, name, title, p)
				}
			}
		}
	}
}

// A panel that shows statuses maps 0/1/2 to OK/WARNING/KO in green,
// orange and red.
func checkStatusMappings(t *testing.T, dashboard, title string, p map[string]any) {
	t.Helper()
	fc, _ := p["fieldConfig"].(map[string]any)
	defaults, _ := fc["defaults"].(map[string]any)
	mappings, _ := defaults["mappings"].([]any)
	// or, for a table, those of a column
	overrides, _ := fc["overrides"].([]any)
	for _, o := range overrides {
		om, _ := o.(map[string]any)
		props, _ := om["properties"].([]any)
		for _, pr := range props {
			if pm, _ := pr.(map[string]any); pm["id"] == "mappings" {
				v, _ := pm["value"].([]any)
				mappings = append(mappings, v...)
			}
		}
	}
	want := map[string][2]string{"0": {"OK", "green"}, "1": {"WARNING", "orange"}, "2": {"KO", "red"}}
	for _, m := range mappings {
		mm, _ := m.(map[string]any)
		opts, _ := mm["options"].(map[string]any)
		for v, w := range want {
			o, _ := opts[v].(map[string]any)
			if o != nil && o["text"] == w[0] && o["color"] == w[1] {
				delete(want, v)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("%s: panel %q shows a status without mapping %v", dashboard, title, want)
	}
}

var (
	braces   = regexp.MustCompile(`\{[^{}]*\}`)
	ranges   = regexp.MustCompile(`\[([^\]]*)\]`)
	rateFunc = regexp.MustCompile(`\b(rate|irate|increase|delta|idelta|deriv|[a-z]+_over_time)\(`)
)

// Every query filters on the job and cluster variables (the services'
// also on the stack, the per-instance ones on the instance), and uses
// $__rate_interval for its rates.
func TestQueriesUseVariables(t *testing.T) {
	queries, err := monitoring.PanelQueries(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(queries) < 30 {
		t.Fatalf("only %d panel queries", len(queries))
	}
	for _, q := range queries {
		sels := braces.FindAllString(q.Raw, -1)
		if len(sels) == 0 {
			t.Errorf("%s: no label matcher: %s", q, q.Raw)
		}
		for _, s := range sels {
			if !strings.Contains(s, `job=~"$job"`) || !strings.Contains(s, `cluster=~"$cluster"`) {
				t.Errorf("%s: selector %s does not filter on $job and $cluster", q, s)
			}
		}
		for _, m := range regexp.MustCompile(`\b(service:[a-z_:0-9]+)(\{[^{}]*\})`).FindAllStringSubmatch(q.Raw, -1) {
			if !strings.Contains(m[2], `stack=~"$stack"`) {
				t.Errorf("%s: %s does not filter on $stack", q, m[1])
			}
		}
		for _, m := range ranges.FindAllStringSubmatch(q.Raw, -1) {
			if m[1] != "$__rate_interval" {
				t.Errorf("%s: range [%s], want [$__rate_interval]", q, m[1])
			}
		}
		if rateFunc.MatchString(q.Raw) && !strings.Contains(q.Raw, "$__rate_interval") {
			t.Errorf("%s: a rate without $__rate_interval", q)
		}
	}
}

func TestProvisioning(t *testing.T) {
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, Type, UID, URL, Access string
		} `yaml:"datasources"`
	}
	files, _ := filepath.Glob(monitoring.Path("dashboards", "provisioning", "datasources", "*.yml"))
	if len(files) == 0 {
		t.Fatal("no datasource provisioning file")
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if err := yaml.UnmarshalStrict(b, &ds); err != nil {
			// jsonData and other fields: parse loosely, check the essentials.
			if err := yaml.Unmarshal(b, &ds); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		}
		if ds.APIVersion != 1 || len(ds.Datasources) == 0 {
			t.Errorf("%s: want apiVersion 1 and a data source", f)
		}
		for _, d := range ds.Datasources {
			if d.Type != "prometheus" || d.Name == "" || d.URL == "" {
				t.Errorf("%s: data source %+v: want a named prometheus data source with a url", f, d)
			}
		}
	}
	var dp struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name    string         `yaml:"name"`
			Type    string         `yaml:"type"`
			Options map[string]any `yaml:"options"`
		} `yaml:"providers"`
	}
	files, _ = filepath.Glob(monitoring.Path("dashboards", "provisioning", "dashboards", "*.yml"))
	if len(files) == 0 {
		t.Fatal("no dashboard provisioning file")
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if err := yaml.Unmarshal(b, &dp); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if dp.APIVersion != 1 || len(dp.Providers) == 0 {
			t.Errorf("%s: want apiVersion 1 and a provider", f)
		}
		for _, p := range dp.Providers {
			if p.Type != "file" || p.Name == "" || p.Options["path"] == nil {
				t.Errorf("%s: provider %+v: want a named file provider with options.path", f, p)
			}
		}
	}
}

// scenarioJob names the Prometheus job that scrapes one exporter reading a
// captured scenario.
func scenarioJob(s string) string { return "scenario_" + strings.ReplaceAll(s, "-", "_") }

const (
	tripleJob = "swarm_exporter" // three exporters reading the same healthy swarm
	singleJob = "swarm_single"   // one exporter reading it
	fleetJob  = "swarm_fleet"    // two swarms, cluster="a" (healthy) and "b" (a worker down), two exporters each
)

// TestQueriesAgainstPrometheus runs every panel query on a real Prometheus
// that scrapes the real exporter (against every captured scenario) and
// evaluates the recording rules:
//   - the query parses with Prometheus's parser;
//   - it uses only series the exporter exposes or the rules record;
//   - it returns data for at least one scenario;
//   - it returns the same series for three exporter instances as for one,
//     without an instance label, unless it is about the instances
//     themselves (its legend shows {{instance}}).
func TestQueriesAgainstPrometheus(t *testing.T) {
	monitoring.Tool(t, "prometheus")
	bin := monitoring.BuildExporter(t)
	scenarios, err := monitoring.Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	healthy := monitoring.FakeDocker(t, "healthy-3m2w")
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files:\n")
	files, _ := monitoring.RuleFiles()
	for _, f := range files {
		fmt.Fprintf(&cfg, "  - %q\n", f)
	}
	fmt.Fprintf(&cfg, "scrape_configs:\n")
	job := func(name string, addrs ...string) {
		fmt.Fprintf(&cfg, "  - job_name: %s\n    static_configs:\n      - targets: [%s]\n", name, `"`+strings.Join(addrs, `", "`)+`"`)
	}
	var triple []string
	for i := 0; i < 3; i++ {
		triple = append(triple, monitoring.StartExporter(t, bin, healthy.Host).Addr)
	}
	job(tripleJob, triple...)
	job(singleJob, monitoring.StartExporter(t, bin, healthy.Host).Addr)
	// Two swarms in one job, told apart by a cluster label.
	workerDown := monitoring.FakeDocker(t, "worker-down")
	fmt.Fprintf(&cfg, "  - job_name: %s\n    static_configs:\n", fleetJob)
	for _, g := range []struct{ cluster, host string }{{"a", healthy.Host}, {"b", workerDown.Host}} {
		fmt.Fprintf(&cfg, "      - targets: [%q, %q]\n        labels: {cluster: %s}\n",
			monitoring.StartExporter(t, bin, g.host).Addr, monitoring.StartExporter(t, bin, g.host).Addr, g.cluster)
	}
	jobs := []string{tripleJob, singleJob}
	exposed := map[string]bool{}
	for _, s := range scenarios {
		fake := monitoring.FakeDocker(t, s)
		exp := monitoring.StartExporter(t, bin, fake.Host)
		for n := range monitoring.SeriesNames(monitoring.Scrape(t, exp.Addr)) {
			exposed[n] = true
		}
		job(scenarioJob(s), exp.Addr)
		jobs = append(jobs, scenarioJob(s))
	}
	recorded, err := monitoring.RecordedNames()
	if err != nil {
		t.Fatal(err)
	}
	prom := monitoring.StartPrometheusWithConfig(t, cfg.String())

	// Every target scraped a few times, and the rules evaluated.
	prom.WaitFor(t, `count_over_time(up[1m]) >= 4`, len(scenarios)+4, 60*time.Second)
	prom.WaitFor(t, `job:docker_swarm_status:severity`, 4, 30*time.Second)
	prom.WaitFor(t, `count_over_time(instance:docker_swarm_authoritative:bool[1m]) >= 3`, 4, 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	queries, err := monitoring.PanelQueries(map[string]string{"job": tripleJob})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queries {
		formatted, err := prom.FormatQuery(ctx, q.Expr)
		if err != nil {
			t.Errorf("%s does not parse: %v\n%s", q, err, q.Expr)
			continue
		}
		names, err := monitoring.MetricNames(formatted)
		if err != nil {
			t.Errorf("%s: %v", q, err)
		}
		for _, n := range names {
			if !exposed[n] && !recorded[n] {
				t.Errorf("%s uses %s, which neither the exporter exposes nor rules/ records", q, n)
			}
		}

		results := map[string][]monitoring.Sample{}
		withData := 0
		for _, j := range jobs {
			expr, err := monitoring.Substitute(q.Raw, map[string]string{"job": j})
			if err != nil {
				t.Fatal(err)
			}
			res, err := prom.Query(ctx, expr)
			if err != nil {
				t.Errorf("%s on job %s: %v", q, j, err)
				continue
			}
			results[j] = res
			if len(res) > 0 {
				withData++
			}
		}
		if withData == 0 {
			t.Errorf("%s returns no data for any scenario:\n%s", q, q.Expr)
		}
		if q.PerInstance() {
			if strings.Contains(q.Legend, "{{instance}}") && len(results[tripleJob]) > 0 && results[tripleJob][0].Metric["instance"] == "" {
				t.Errorf("%s shows {{instance}} in its legend but returns no instance label", q)
			}
			continue
		}
		for _, s := range results[tripleJob] {
			if _, ok := s.Metric["instance"]; ok {
				t.Errorf("%s is not de-duplicated across instances: %v", q, s.Metric)
				break
			}
		}
		if a, b := labelSets(results[tripleJob]), labelSets(results[singleJob]); strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Errorf("%s returns other series for 3 exporter instances than for 1:\n3: %v\n1: %v", q, a, b)
		}
	}

	// $cluster selects one swarm of several in a job: every series is that
	// swarm's, and the two swarms together give what each gives.
	fleetData := 0
	for _, q := range queries {
		perCluster := map[string]int{}
		for _, c := range []string{"a", "b", ".*"} {
			expr, err := monitoring.Substitute(q.Raw, map[string]string{"job": fleetJob, "cluster": c})
			if err != nil {
				t.Fatal(err)
			}
			res, err := prom.Query(ctx, expr)
			if err != nil {
				t.Errorf("%s on the two swarms: %v", q, err)
				continue
			}
			perCluster[c] = len(res)
			for _, r := range res {
				if got, ok := r.Metric["cluster"]; c != ".*" && ok && got != c {
					t.Errorf("%s with $cluster=%s returns a series of cluster %q: %v", q, c, got, r.Metric)
				}
			}
		}
		if perCluster["a"] > 0 {
			fleetData++
		}
		if !q.PerInstance() && !strings.Contains(q.Raw, "sum without") && !strings.Contains(q.Raw, "count without") &&
			perCluster[".*"] != perCluster["a"]+perCluster["b"] {
			t.Errorf("%s: the two swarms give %d series, each alone %d and %d", q, perCluster[".*"], perCluster["a"], perCluster["b"])
		}
	}
	if fleetData < len(queries)/2 {
		t.Errorf("only %d of %d queries return data for one of two swarms", fleetData, len(queries))
	}

	// The variables' selectors parse and find something.
	for _, d := range dashboards(t) {
		sels, err := monitoring.VariableSelectors(d, map[string]string{"job": tripleJob})
		if err != nil {
			t.Error(err)
			continue
		}
		for name, sel := range sels {
			if _, err := prom.FormatQuery(ctx, sel); err != nil {
				t.Errorf("%s: variable %s: %v", filepath.Base(d.File), name, err)
				continue
			}
			if res, err := prom.Query(ctx, sel); err != nil || len(res) == 0 {
				t.Errorf("%s: variable %s: %s finds nothing (%v)", filepath.Base(d.File), name, sel, err)
			}
		}
	}
}

// labelSets returns the label sets of a result without the job label,
// sorted.
func labelSets(res []monitoring.Sample) []string {
	var out []string
	for _, s := range res {
		var kv []string
		for k, v := range s.Metric {
			if k != "job" {
				kv = append(kv, k+"="+v)
			}
		}
		sort.Strings(kv)
		out = append(out, strings.Join(kv, ","))
	}
	sort.Strings(out)
	return out
}
