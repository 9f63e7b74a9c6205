// Package alerts_test checks the alerting rules, their promtool unit tests,
// the example Prometheus and Alertmanager configurations and the runbook.
// The checks that need promtool or amtool skip when those are missing,
// unless CI=true.
package alerts_test

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

	"github.com/prometheus/common/model"
	yaml "go.yaml.in/yaml/v2"

	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
)

func alertRules(t *testing.T) []monitoring.Rule {
	t.Helper()
	files, err := monitoring.AlertRuleFiles()
	if err != nil || len(files) == 0 {
		t.Fatalf("no alert rule file: %v", err)
	}
	var out []monitoring.Rule
	for _, f := range files {
		rf, err := monitoring.LoadRuleFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					t.Errorf("%s: recording rule %s belongs in rules/", f, r.Record)
					continue
				}
				out = append(out, r)
			}
		}
	}
	return out
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
	monitoring.Run(t, promtool, append([]string{"test", "rules"}, unitTestFiles(t)...)...)
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
	} `yaml:"tests"`
}

// Every alert has a unit test where it fires and one where it does not.
func TestEveryAlertTestedFiringAndNotFiring(t *testing.T) {
	firing, silent := map[string]int{}, map[string]int{}
	for _, f := range unitTestFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var u unitTestFile
		if err := yaml.Unmarshal(b, &u); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
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
					if e.ExpLabels["severity"] == "" || e.ExpAnnotations["description"] == "" {
						t.Errorf("%s %q: expected %s alerts must give labels and annotations", filepath.Base(f), tc.Name, a.Alertname)
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

func TestAlertConventions(t *testing.T) {
	anchors := githubAnchors(t, monitoring.Path(monitoring.RunbookFile))
	runbook, _ := os.ReadFile(monitoring.Path(monitoring.RunbookFile))
	seen := map[string]bool{}
	for _, r := range alertRules(t) {
		if !alertName.MatchString(r.Alert) {
			t.Errorf("%s: alert names are CamelCase and start with Swarm", r.Alert)
		}
		if seen[r.Alert] {
			t.Errorf("%s: defined twice", r.Alert)
		}
		seen[r.Alert] = true
		switch r.Labels["severity"] {
		case "critical", "warning":
		default:
			t.Errorf("%s: severity %q, want critical or warning", r.Alert, r.Labels["severity"])
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
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
		// A for: duration that rides out the few seconds of "unknown"
		// nodes after a leader change, without hiding an outage for long.
		d, err := model.ParseDuration(r.For)
		switch {
		case err != nil:
			t.Errorf("%s: for: %q: %v", r.Alert, r.For, err)
		case time.Duration(d) < time.Minute || time.Duration(d) > 10*time.Minute:
			t.Errorf("%s: for: %s, want between 1m and 10m", r.Alert, r.For)
		}
		// Alerts computed from per-node or per-service series, which
		// vanish while the swarm has no leader, keep firing through it.
		perObject := strings.Contains(r.Expr, "node:") || strings.Contains(r.Expr, "service:") || strings.Contains(r.Expr, "docker_swarm_service_")
		if perObject && r.KeepFiringFor == "" {
			t.Errorf("%s: computed from per-node or per-service series, but has no keep_firing_for", r.Alert)
		}
		if r.KeepFiringFor != "" {
			if _, err := model.ParseDuration(r.KeepFiringFor); err != nil {
				t.Errorf("%s: keep_firing_for: %v", r.Alert, err)
			}
		}
		// Never once per exporter instance, except the alert about an
		// instance itself.
		if r.Alert != "SwarmExporterCannotRead" && !strings.Contains(r.Expr, "without (instance)") &&
			!regexp.MustCompile(`(^|[^_a-z])(job|node|service):`).MatchString(r.Expr) {
			t.Errorf("%s: neither aggregates across instances nor uses de-duplicated recording rules", r.Alert)
		}
	}
	// every runbook section is an alert's
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
// the recording rules record, or Prometheus's own up.
func TestRulesUseExposedMetrics(t *testing.T) {
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
				if !exposed[n] && !recorded[n] && n != "up" {
					t.Errorf("%s %s%s uses %s, which neither the exporter nor a recording rule provides", filepath.Base(file), r.Record, r.Alert, n)
				}
			}
		}
	}
}

func TestAlertmanagerConfig(t *testing.T) {
	amtool := monitoring.Tool(t, "amtool")
	monitoring.Run(t, amtool, "check-config", monitoring.Path("alerts", "alertmanager.yml"))

	// The inhibit rules name existing alerts.
	b, err := os.ReadFile(monitoring.Path("alerts", "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Inhibit []struct {
			Source []string `yaml:"source_matchers"`
			Target []string `yaml:"target_matchers"`
			Equal  []string `yaml:"equal"`
		} `yaml:"inhibit_rules"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, r := range alertRules(t) {
		known[r.Alert] = true
	}
	nameRe := regexp.MustCompile(`alertname(=~|=|!=)"([^"]*)"`)
	quorumLostTargets := map[string]bool{}
	for i, r := range cfg.Inhibit {
		if len(r.Equal) == 0 || r.Equal[0] != "job" {
			t.Errorf("inhibit rule %d: equal should start with job, so that one swarm never mutes another", i)
		}
		for _, m := range append(append([]string{}, r.Source...), r.Target...) {
			mm := nameRe.FindStringSubmatch(m)
			if mm == nil {
				continue
			}
			var names []string
			if mm[1] == "=~" {
				re := regexp.MustCompile("^(?:" + mm[2] + ")$")
				for n := range known {
					if re.MatchString(n) {
						names = append(names, n)
					}
				}
				if mm[2] != "Swarm.+" {
					for _, alt := range strings.Split(mm[2], "|") {
						if !known[alt] {
							t.Errorf("inhibit rule %d names an unknown alert %s", i, alt)
						}
					}
				}
			} else if !known[mm[2]] {
				t.Errorf("inhibit rule %d names an unknown alert %s", i, mm[2])
			}
			if len(r.Source) == 1 && r.Source[0] == `alertname="SwarmQuorumLost"` {
				for _, n := range names {
					quorumLostTargets[n] = true
				}
			}
		}
	}
	// SwarmQuorumLost silences every alert computed from per-node or
	// per-service series, which vanish while the swarm has no leader.
	for _, r := range alertRules(t) {
		if r.KeepFiringFor != "" && !quorumLostTargets[r.Alert] {
			t.Errorf("%s vanishes with the quorum but SwarmQuorumLost does not inhibit it", r.Alert)
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
	for _, want := range []string{"dns_sd_configs", "tasks.swarm-exporter", "job_name: swarm_exporter", "alertmanagers"} {
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

// The inhibit rules of alerts/alertmanager.yml, on a real Alertmanager:
// a quorum loss mutes the node and service alerts of the same swarm, and
// of that swarm only.
func TestAlertmanagerInhibitions(t *testing.T) {
	am := monitoring.StartAlertmanager(t, monitoring.Path("alerts", "alertmanager.yml"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alert := func(name, severity string, labels ...string) monitoring.AMAlert {
		l := map[string]string{"alertname": name, "severity": severity, "job": "swarm_exporter"}
		for i := 0; i+1 < len(labels); i += 2 {
			l[labels[i]] = labels[i+1]
		}
		return monitoring.AMAlert{Labels: l, StartsAt: time.Now().Add(-time.Minute)}
	}
	sent := []monitoring.AMAlert{
		alert("SwarmQuorumLost", "critical", "cluster", "prod"),
		alert("SwarmNoLeader", "critical", "cluster", "prod"),
		alert("SwarmClusterStatusKO", "critical", "cluster", "prod"),
		alert("SwarmNodeDown", "warning", "cluster", "prod", "node_id", "n1", "hostname", "w1"),
		alert("SwarmServiceDown", "critical", "cluster", "prod", "service_name", "web"),
		alert("SwarmServiceTasksRejected", "warning", "cluster", "prod", "service_name", "web"),
		alert("SwarmNodeDown", "warning", "cluster", "staging", "node_id", "n2", "hostname", "w2"),
		alert("SwarmServiceDown", "critical", "cluster", "staging", "service_name", "api"),
		alert("SwarmServiceTasksRejected", "warning", "cluster", "staging", "service_name", "api"),
		alert("SwarmServiceTasksPending", "warning", "cluster", "staging", "service_name", "db"),
		alert("SwarmExporterCannotRead", "warning", "cluster", "staging", "instance", "m1:9675"),
	}
	if err := am.Post(ctx, sent...); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{ // alertname/cluster/object -> inhibited
		"SwarmQuorumLost/prod/":                 false,
		"SwarmNoLeader/prod/":                   false,
		"SwarmClusterStatusKO/prod/":            true,
		"SwarmNodeDown/prod/w1":                 true,
		"SwarmServiceDown/prod/web":             true,
		"SwarmServiceTasksRejected/prod/web":    true,
		"SwarmNodeDown/staging/w2":              false,
		"SwarmServiceDown/staging/api":          false,
		"SwarmServiceTasksRejected/staging/api": true,
		"SwarmServiceTasksPending/staging/db":   false,
		"SwarmExporterCannotRead/staging/":      false,
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := am.Alerts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var problems []string
		seen := 0
		for _, a := range got {
			key := a.Labels["alertname"] + "/" + a.Labels["cluster"] + "/" + a.Labels["hostname"] + a.Labels["service_name"]
			w, ok := want[key]
			if !ok {
				continue
			}
			seen++
			inhibited := a.Status != nil && len(a.Status.InhibitedBy) > 0
			if inhibited != w {
				problems = append(problems, fmt.Sprintf("%s: inhibited %v, want %v", key, inhibited, w))
			}
		}
		if seen == len(want) && len(problems) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Alertmanager holds %d of %d alerts; %s", seen, len(want), strings.Join(problems, "; "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The shipped configuration (a copy of alerts/prometheus.yml with the
// rules, durations shortened) on a real Prometheus scraping three real
// exporters that read a captured swarm: the expected alerts fire, once
// each, with their templates rendered from real series.
func TestAlertsOnCapturedSwarms(t *testing.T) {
	monitoring.Tool(t, "prometheus")
	bin := monitoring.BuildExporter(t)
	cases := []struct {
		scenario string
		want     []string // alertname/object, firing
	}{
		// zero is scaled to 0 replicas: KO unless --health.allow-zero-replicas.
		{"healthy-3m2w", []string{"SwarmServiceDown/zero"}},
		{"quorum-lost", []string{"SwarmClusterStatusKO/", "SwarmNoLeader/", "SwarmQuorumLost/"}},
		{"missing-image", []string{"SwarmServiceDegraded/partial", "SwarmServiceDown/ghost", "SwarmServiceTasksRejected/ghost", "SwarmServiceTasksRejected/partial"}},
		{"locked", []string{"SwarmExporterCannotRead/", "SwarmExporterCannotRead/", "SwarmExporterCannotRead/", "SwarmExporterDown/"}},
	}
	for _, c := range cases {
		t.Run(c.scenario, func(t *testing.T) {
			t.Parallel()
			fake := monitoring.FakeDocker(t, c.scenario)
			var targets []string
			for i := 0; i < 3; i++ {
				targets = append(targets, monitoring.StartExporter(t, bin, fake.Host).Addr)
			}
			path, err := monitoring.WriteConfig(t.TempDir(), monitoring.ConfigOptions{
				Targets: targets, ScrapeInterval: time.Second, EvaluationInterval: time.Second,
				Durations: monitoring.Scale(0.02, time.Second),
			})
			if err != nil {
				t.Fatal(err)
			}
			prom := monitoring.StartPrometheus(t, path)
			sort.Strings(c.want)
			deadline := time.Now().Add(60 * time.Second)
			var got []string
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				alerts, err := prom.Alerts(ctx)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				got = got[:0]
				for _, a := range alerts {
					if a.State != "firing" {
						continue
					}
					got = append(got, a.Labels["alertname"]+"/"+a.Labels["service_name"]+a.Labels["hostname"])
					if testing.Verbose() {
						t.Logf("%s: %s", a.Labels["alertname"], a.Annotations["description"])
					}
					for k, v := range a.Annotations {
						if strings.Contains(v, "<no value>") || strings.Contains(v, "error executing") || strings.TrimSpace(v) == "" {
							t.Errorf("%s: annotation %s did not render: %q", a.Labels["alertname"], k, v)
						}
					}
				}
				sort.Strings(got)
				if strings.Join(got, " ") == strings.Join(c.want, " ") {
					// and it stays so: nothing else fires later
					time.Sleep(15 * time.Second)
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					alerts, err := prom.Alerts(ctx)
					cancel()
					if err != nil {
						t.Fatal(err)
					}
					var later []string
					for _, a := range alerts {
						later = append(later, a.State+":"+a.Labels["alertname"]+"/"+a.Labels["service_name"]+a.Labels["hostname"])
					}
					sort.Strings(later)
					if len(later) != len(c.want) {
						t.Errorf("later, alerts are %v, want only %v firing", later, c.want)
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("firing alerts %v, want %v", got, c.want)
				}
				time.Sleep(500 * time.Millisecond)
			}
		})
	}
}
