// Package alerts_test checks the alerting rules, their promtool unit tests,
// the example Prometheus and Alertmanager configurations and the runbook.
// The checks that need promtool or amtool skip when those are missing,
// unless CI=true.
package alerts_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	yaml "go.yaml.in/yaml/v2"

	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
)

func alertRules(t *testing.T) []monitoring.Rule {
	t.Helper()
	rules, err := monitoring.AlertingRules()
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

func TestPromtoolCheckRules(t *testing.T) {
	promtool := monitoring.Tool(t, "promtool")
	files, err := monitoring.RuleFiles()
	if err != nil {
		t.Fatal(err)
	}
	out := monitoring.Run(t, promtool, append([]string{"check", "rules"}, files...)...)
	if strings.Contains(out, "WARNING") {
		t.Errorf("promtool check rules warns:\n%s", out)
	}
}

func unitTestFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(monitoring.Path("alerts", "tests", "*.test.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool test file in alerts/tests: %v", err)
	}
	return files
}

func TestPromtoolUnitTests(t *testing.T) {
	promtool := monitoring.Tool(t, "promtool")
	for _, f := range unitTestFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			monitoring.Run(t, promtool, "test", "rules", f)
		})
	}
}

type unitTestFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `yaml:"exp_labels"`
				ExpAnnotations map[string]string `yaml:"exp_annotations"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
		PromQLExprTest []struct {
			Expr       string `yaml:"expr"`
			EvalTime   string `yaml:"eval_time"`
			ExpSamples []struct {
				Labels string  `yaml:"labels"`
				Value  float64 `yaml:"value"`
			} `yaml:"exp_samples"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

func loadUnitTests(t *testing.T, f string) unitTestFile {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	var u unitTestFile
	if err := yaml.Unmarshal(b, &u); err != nil {
		t.Fatalf("%s: %v", f, err)
	}
	return u
}

// Every alert has a unit test where it fires, with its labels and
// annotations, and one where it does not.
func TestEveryAlertTestedFiringAndNotFiring(t *testing.T) {
	firing, silent := map[string]int{}, map[string]int{}
	for _, f := range unitTestFiles(t) {
		u := loadUnitTests(t, f)
		for _, rf := range u.RuleFiles {
			if _, err := os.Stat(filepath.Join(filepath.Dir(f), rf)); err != nil {
				t.Errorf("%s: rule file %s: %v", f, rf, err)
			}
		}
		for _, tc := range u.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) == 0 {
					silent[a.Alertname]++
					continue
				}
				firing[a.Alertname]++
				for _, e := range a.ExpAlerts {
					if e.ExpLabels["severity"] == "" || e.ExpLabels["swarm_labels"] == "" || e.ExpAnnotations["description"] == "" {
						t.Errorf("%s %q: expected %s alerts must give their labels and annotations", filepath.Base(f), tc.Name, a.Alertname)
					}
				}
			}
		}
	}
	known := map[string]bool{}
	for _, r := range alertRules(t) {
		known[r.Alert] = true
		if firing[r.Alert] == 0 {
			t.Errorf("%s: no unit test where it fires", r.Alert)
		}
		if silent[r.Alert] == 0 {
			t.Errorf("%s: no unit test where it does not fire", r.Alert)
		}
	}
	for name := range firing {
		if !known[name] {
			t.Errorf("unit tests expect an alert %s that no rule defines", name)
		}
	}
}

var (
	alertName  = regexp.MustCompile(`^Swarm[A-Z][A-Za-z0-9]*$`)
	runbookURL = regexp.MustCompile(`^https://github\.com/swarm-exporter/swarm_exporter/blob/main/docs/runbook\.md#([a-z0-9-]+)$`)
	// What no rule expression may contain: a job name or target label
	// (kept by `without` and `ignoring` instead), and aggregations or
	// matchings that name the labels they keep.
	forbidden = map[string]*regexp.Regexp{
		"a job selector":                           regexp.MustCompile(`\bjob\s*(=|!=|=~|!~)`),
		"a target label":                           regexp.MustCompile(`\b(cluster|env|environment|region)\b`),
		"an aggregation by labels (use without)":   regexp.MustCompile(`\bby\s*\(`),
		"a matching on labels (use ignoring)":      regexp.MustCompile(`\bon\s*\(`),
		"a grouping that names the kept labels":    regexp.MustCompile(`group_(left|right)\s*\(\s*[a-z]`),
		"absent(), which cannot tell swarms apart": regexp.MustCompile(`\babsent(_over_time)?\s*\(`),
	}
	// The alerts about reading the swarm itself: they have no hold.
	exporterAlerts = map[string]bool{"SwarmExporterDown": true, "SwarmServicesNotRead": true,
		"SwarmExporterTargetDown": true, "SwarmExporterCannotRead": true}
	holdSignal = regexp.MustCompile(`job:docker_swarm_(cluster|nodes|services)_read:bool == 0`)
)

// githubAnchors returns the anchors GitHub gives to a markdown file's
// headings.
func githubAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	inCode := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
		}
		if inCode || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		var a strings.Builder
		for _, r := range h {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
				a.WriteRune(r)
			case r == ' ':
				a.WriteRune('-')
			}
		}
		anchors[a.String()] = true
	}
	return anchors
}

// holdKind returns what an alert holds on: "cluster", "nodes" or
// "services" (the job:docker_swarm_*_read:bool its hold branch reads), or
// "" when it has none.
func holdKind(r monitoring.Rule) string {
	if m := holdSignal.FindStringSubmatch(r.Expr); m != nil && strings.Contains(r.Expr, fmt.Sprintf(`ALERTS{alertname=%q, alertstate="firing"}`, r.Alert)) {
		return m[1]
	}
	return ""
}

func TestAlertConventions(t *testing.T) {
	anchors := githubAnchors(t, monitoring.Path(monitoring.RunbookFile))
	runbook, _ := os.ReadFile(monitoring.Path(monitoring.RunbookFile))
	seen := map[string]bool{}
	swarmLabels := ""
	for _, r := range alertRules(t) {
		if !alertName.MatchString(r.Alert) {
			t.Errorf("%s: alert names are CamelCase and start with Swarm", r.Alert)
		}
		if seen[r.Alert] {
			t.Errorf("%s: defined twice", r.Alert)
		}
		seen[r.Alert] = true
		sev := r.Labels["severity"]
		switch sev {
		case "critical", "warning", "info":
		default:
			t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, sev)
		}
		// The same swarm_labels template on every alert: the inhibit
		// rules compare it.
		if swarmLabels == "" {
			swarmLabels = r.Labels["swarm_labels"]
		}
		if r.Labels["swarm_labels"] == "" || r.Labels["swarm_labels"] != swarmLabels {
			t.Errorf("%s: its swarm_labels label differs from the other alerts'", r.Alert)
		}
		if len(r.Labels) != 2 {
			t.Errorf("%s: labels %v, want severity and swarm_labels only", r.Alert, r.Labels)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
		}
		if len(r.Annotations) != 3 {
			t.Errorf("%s: annotations %v, want summary, description and runbook_url", r.Alert, r.Annotations)
		}
		if strings.Contains(r.Annotations["summary"], "{{") {
			t.Errorf("%s: the summary is templated; keep it static, with the details in the description", r.Alert)
		}
		m := runbookURL.FindStringSubmatch(r.Annotations["runbook_url"])
		switch {
		case m == nil:
			t.Errorf("%s: runbook_url %q does not point to a section of docs/runbook.md", r.Alert, r.Annotations["runbook_url"])
		case !anchors[m[1]]:
			t.Errorf("%s: docs/runbook.md has no section #%s", r.Alert, m[1])
		case m[1] != strings.ToLower(r.Alert):
			t.Errorf("%s: runbook_url points to #%s, not to the alert's own section", r.Alert, m[1])
		}
		if !strings.Contains(string(runbook), "## "+r.Alert+"\n") {
			t.Errorf("%s: docs/runbook.md has no '## %s' section", r.Alert, r.Alert)
		}
		// A for: that rides out the few seconds of "unknown" nodes and of
		// docker_swarm_up 0 around a leader election; notices wait longer.
		d, err := model.ParseDuration(r.For)
		lo, hi := time.Minute, 15*time.Minute
		if sev == "info" {
			lo, hi = 5*time.Minute, time.Hour
		}
		switch {
		case err != nil:
			t.Errorf("%s: for: %q: %v", r.Alert, r.For, err)
		case time.Duration(d) < lo || time.Duration(d) > hi:
			t.Errorf("%s: for: %s, want between %v and %v for severity %s", r.Alert, r.For, lo, hi, sev)
		}
		// Alerts resolve as soon as current series say so: no
		// keep_firing_for; they hold through missing series with their
		// hold branch instead.
		if r.KeepFiringFor != "" {
			t.Errorf("%s: keep_firing_for delays every resolution; hold on job:docker_swarm_*_read:bool instead", r.Alert)
		}
		if kind := holdKind(r); kind == "" && !exporterAlerts[r.Alert] {
			t.Errorf("%s: no hold branch (its own firing ALERTS while job:docker_swarm_*_read:bool == 0)", r.Alert)
		} else if kind != "" && exporterAlerts[r.Alert] {
			t.Errorf("%s: an alert about reading the swarm must not hold", r.Alert)
		}
		for what, re := range forbidden {
			if re.MatchString(r.Expr) {
				t.Errorf("%s: the expression has %s: %s", r.Alert, what, re.FindString(r.Expr))
			}
		}
		// Never once per exporter instance, except the alert about an
		// instance itself.
		if r.Alert != "SwarmExporterCannotRead" && !strings.Contains(r.Expr, "without (instance)") &&
			!regexp.MustCompile(`(^|[^_a-z])(job|node|service):`).MatchString(r.Expr) {
			t.Errorf("%s: neither aggregates across instances nor uses de-duplicated recording rules", r.Alert)
		}
	}
	// every runbook section named like an alert is an alert's
	for a := range anchors {
		if strings.HasPrefix(a, "swarm") && !strings.HasPrefix(a, "swarm_exporter") {
			found := false
			for name := range seen {
				if strings.ToLower(name) == a {
					found = true
				}
			}
			if !found {
				t.Errorf("docs/runbook.md section #%s matches no alert", a)
			}
		}
	}
}

// The rules use only series that the exporter exposes (taken from real
// scrapes of the exporter against the captured Docker API answers), that
// the recording rules record, Prometheus's own up, or ALERTS.
func TestRulesUseExposedMetrics(t *testing.T) {
	t.Parallel()
	exposed := monitoring.ExportedSeriesNames(t)
	recorded, err := monitoring.RecordedNames()
	if err != nil {
		t.Fatal(err)
	}
	all, err := monitoring.AllRules()
	if err != nil {
		t.Fatal(err)
	}
	for file, rules := range all {
		for _, r := range rules {
			names, err := monitoring.MetricNames(r.Expr)
			if err != nil {
				t.Errorf("%s %s%s: %v", filepath.Base(file), r.Record, r.Alert, err)
				continue
			}
			for _, n := range names {
				if !exposed[n] && !recorded[n] && n != "up" && n != "ALERTS" {
					t.Errorf("%s %s%s uses %s, which neither the exporter nor a recording rule provides", filepath.Base(file), r.Record, r.Alert, n)
				}
			}
		}
	}
}

type amConfig struct {
	Route struct {
		Receiver string `yaml:"receiver"`
		Routes   []struct {
			Matchers []string `yaml:"matchers"`
			Receiver string   `yaml:"receiver"`
		} `yaml:"routes"`
	} `yaml:"route"`
	Inhibit []struct {
		Source []string `yaml:"source_matchers"`
		Target []string `yaml:"target_matchers"`
		Equal  []string `yaml:"equal"`
	} `yaml:"inhibit_rules"`
}

var nameMatcher = regexp.MustCompile(`^alertname(=~|=)"([^"]*)"$`)

// matchedAlerts returns the names of the known alerts a list of matchers
// selects by alertname.
func matchedAlerts(t *testing.T, matchers []string, known map[string]bool) []string {
	t.Helper()
	var out []string
	for _, m := range matchers {
		mm := nameMatcher.FindStringSubmatch(m)
		if mm == nil {
			t.Errorf("matcher %s: the inhibit rules select alerts by name only", m)
			continue
		}
		re := regexp.MustCompile("^(?:" + mm[2] + ")$")
		if mm[1] == "=" {
			re = regexp.MustCompile("^" + regexp.QuoteMeta(mm[2]) + "$")
		}
		for _, alt := range strings.Split(mm[2], "|") {
			if !known[alt] {
				t.Errorf("matcher %s names an unknown alert %s", m, alt)
			}
		}
		for n := range known {
			if re.MatchString(n) {
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}

// While an inhibit rule's source fires, its targets must not be able to
// resolve (Alertmanager would drop the resolution, and lose it for good
// if the outage outlasts Prometheus's 15 minutes of re-sending it): each
// target holds while the source's condition lasts. The recording rules
// make job:docker_swarm_cluster_read:bool == 0 imply nodes_read and
// services_read == 0, and a lost quorum make nodes_read and services_read
// 0: covers says which holds each source's condition implies.
var covers = map[string]map[string]bool{
	"SwarmExporterDown":    {"cluster": true, "nodes": true, "services": true},
	"SwarmQuorumLost":      {"nodes": true, "services": true},
	"SwarmServicesNotRead": {"services": true},
}

func TestAlertmanagerConfig(t *testing.T) {
	amtool := monitoring.Tool(t, "amtool")
	monitoring.Run(t, amtool, "check-config", monitoring.Path("alerts", "alertmanager.yml"))

	b, err := os.ReadFile(monitoring.Path("alerts", "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg amConfig
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	rules := map[string]monitoring.Rule{}
	known := map[string]bool{}
	for _, r := range alertRules(t) {
		rules[r.Alert] = r
		known[r.Alert] = true
	}
	// Each severity has its own receiver; info never reaches the pager.
	receivers := map[string]string{}
	for _, r := range cfg.Route.Routes {
		for _, m := range r.Matchers {
			if mm := regexp.MustCompile(`^severity="(\w+)"$`).FindStringSubmatch(m); mm != nil {
				receivers[mm[1]] = r.Receiver
			}
		}
	}
	for _, sev := range []string{"critical", "warning", "info"} {
		if receivers[sev] == "" {
			t.Errorf("no route for severity %s", sev)
		}
	}
	if receivers["info"] == receivers["critical"] || receivers["warning"] == receivers["critical"] {
		t.Errorf("info and warning alerts must not reach the critical receiver: %v", receivers)
	}
	inhibited := map[string][]string{}
	for i, r := range cfg.Inhibit {
		if strings.Join(r.Equal, ",") != "swarm_labels" {
			t.Errorf("inhibit rule %d: equal %v, want [swarm_labels], so that one swarm never mutes another", i, r.Equal)
		}
		sources := matchedAlerts(t, r.Source, known)
		targets := matchedAlerts(t, r.Target, known)
		if len(sources) != 1 {
			t.Errorf("inhibit rule %d: sources %v, want one alert", i, sources)
			continue
		}
		src := sources[0]
		if covers[src] == nil {
			t.Errorf("inhibit rule %d: %s is not an alert that says why the swarm cannot be seen", i, src)
		}
		for _, tg := range targets {
			inhibited[tg] = append(inhibited[tg], src)
			if kind := holdKind(rules[tg]); !covers[src][kind] {
				t.Errorf("inhibit rule %d: %s mutes %s, which does not hold while %s's condition lasts (hold %q): its resolution could be lost",
					i, src, tg, src, kind)
			}
		}
	}
	// Every alert that holds is muted while nobody reads the swarm, and
	// while its series are missing for the reason each source says.
	for name, r := range rules {
		kind := holdKind(r)
		if kind == "" {
			continue
		}
		for src, kinds := range covers {
			if !kinds[kind] {
				continue
			}
			found := false
			for _, s := range inhibited[name] {
				found = found || s == src
			}
			if !found {
				t.Errorf("%s holds on %s, but %s does not mute it", name, kind, src)
			}
		}
	}
}

func TestPrometheusConfig(t *testing.T) {
	promtool := monitoring.Tool(t, "promtool")
	out := monitoring.Run(t, promtool, "check", "config", monitoring.Path("alerts", "prometheus.yml"))
	files, _ := monitoring.RuleFiles()
	if !strings.Contains(out, fmt.Sprintf("SUCCESS: %d rule files found", len(files))) {
		t.Errorf("alerts/prometheus.yml does not load the %d rule files:\n%s", len(files), out)
	}
	b, _ := os.ReadFile(monitoring.Path("alerts", "prometheus.yml"))
	for _, want := range []string{"dns_sd_configs", "tasks.swarm-exporter", "alertmanagers"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("alerts/prometheus.yml lacks %s", want)
		}
	}
}

// A copy of the rules with shorter durations, as an end-to-end test uses,
// still passes promtool and differs from the shipped files in durations
// only (WriteConfig checks the latter).
func TestShortenedCopy(t *testing.T) {
	promtool := monitoring.Tool(t, "promtool")
	dir := t.TempDir()
	path, err := monitoring.WriteConfig(dir, monitoring.ConfigOptions{
		Targets: []string{"127.0.0.1:9675"}, ScrapeInterval: time.Second, EvaluationInterval: time.Second,
		Durations: monitoring.Scale(0.05, 2*time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	monitoring.Run(t, promtool, "check", "config", path)
	copied, err := monitoring.LoadRuleFile(filepath.Join(dir, "alerts", "swarm_exporter.alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var durations []string
	for _, g := range copied.Groups {
		for _, r := range g.Rules {
			durations = append(durations, r.Alert+"="+r.For)
		}
	}
	sort.Strings(durations)
	for _, d := range durations {
		if strings.HasSuffix(d, "=1m") || strings.HasSuffix(d, "=5m") {
			t.Errorf("duration not shortened: %s", d)
		}
	}
}

var (
	notifiedAlert = regexp.MustCompile("`(Swarm[A-Za-z]+)` \\((critical|warning|info)\\)")
	alertsLabel   = regexp.MustCompile(`alertname="(Swarm[A-Za-z]+)"`)
	severityLabel = regexp.MustCompile(`severity="(\w+)"`)
)

// The runbook's "What pages when" table and alerts/tests/pages.test.yml
// say the same: each row is a promtool test of the same name, and the
// alerts the row says are notified (name and severity) are those that fire
// at the end of the test.
func TestRunbookPagesTable(t *testing.T) {
	b, err := os.ReadFile(monitoring.Path(monitoring.RunbookFile))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]map[string]bool{}
	var order []string
	inTable := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			inTable = line == "## What pages when"
			continue
		case !inTable || !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| Event") || strings.HasPrefix(line, "| ---"):
			continue
		}
		cells := strings.Split(strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) != 3 {
			t.Errorf("runbook table row with %d cells: %s", len(cells), line)
			continue
		}
		set := map[string]bool{}
		for _, m := range notifiedAlert.FindAllStringSubmatch(cells[1], -1) {
			set[m[1]+" "+m[2]] = true
		}
		if len(set) == 0 && cells[1] != "nothing" {
			t.Errorf("row %q: the notified cell names no alert (severity), nor says nothing: %s", cells[0], cells[1])
		}
		rows[cells[0]] = set
		order = append(order, cells[0])
	}
	if len(rows) < 20 {
		t.Fatalf("the runbook's What pages when table has %d rows", len(rows))
	}
	u := loadUnitTests(t, monitoring.Path("alerts", "tests", "pages.test.yml"))
	tested := map[string]bool{}
	for _, tc := range u.Tests {
		tested[tc.Name] = true
		want, ok := rows[tc.Name]
		if !ok {
			t.Errorf("pages.test.yml %q has no row in the runbook's table", tc.Name)
			continue
		}
		var last *struct {
			Labels string  `yaml:"labels"`
			Value  float64 `yaml:"value"`
		}
		got := map[string]bool{}
		found := false
		for _, e := range tc.PromQLExprTest {
			if e.Expr != `ALERTS{alertstate="firing"}` {
				continue
			}
			found = true
			got = map[string]bool{}
			for i := range e.ExpSamples {
				last = &e.ExpSamples[i]
				n := alertsLabel.FindStringSubmatch(last.Labels)
				s := severityLabel.FindStringSubmatch(last.Labels)
				if n == nil || s == nil {
					t.Errorf("%q: an expected alert without name or severity: %s", tc.Name, last.Labels)
					continue
				}
				got[n[1]+" "+s[1]] = true
			}
		}
		if !found {
			t.Errorf("pages.test.yml %q does not check what fires", tc.Name)
			continue
		}
		if a, b := sortedKeys(got), sortedKeys(want); strings.Join(a, ", ") != strings.Join(b, ", ") {
			t.Errorf("%q: the test ends with %v firing, the runbook's table notifies %v", tc.Name, a, b)
		}
	}
	for _, r := range order {
		if !tested[r] {
			t.Errorf("the runbook's row %q has no test in pages.test.yml", r)
		}
	}
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
