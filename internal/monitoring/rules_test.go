package monitoring

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRewriteDurations(t *testing.T) {
	in := []byte("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0 # for: 5m\n        for: 5m\n        keep_firing_for: 10m\n")
	out, err := RewriteDurations(in, Scale(0.1, 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0 # for: 5m\n        for: 30s\n        keep_firing_for: 1m\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if err := CheckOnlyDurationsDiffer(in, out); err != nil {
		t.Error(err)
	}
	changed := strings.Replace(string(out), "up == 0", "up == 1", 1)
	if err := CheckOnlyDurationsDiffer(in, []byte(changed)); err == nil {
		t.Error("a changed expression must be reported")
	}
	renamed := strings.Replace(string(out), "keep_firing_for: 1m", "for: 1m", 1)
	if err := CheckOnlyDurationsDiffer(in, []byte(renamed)); err == nil {
		t.Error("a changed key must be reported")
	}
	if err := CheckOnlyDurationsDiffer(in, append(out, '\n')); err == nil {
		t.Error("an added line must be reported")
	}
}

func TestScale(t *testing.T) {
	f := Scale(0.05, 5*time.Second)
	for d, want := range map[time.Duration]time.Duration{
		10 * time.Minute: 30 * time.Second,
		time.Minute:      5 * time.Second,
		3 * time.Second:  3 * time.Second,
	} {
		if got := f("for", d); got != want {
			t.Errorf("Scale(0.05, 5s)(%v) = %v, want %v", d, got, want)
		}
	}
}

func TestWriteConfig(t *testing.T) {
	dir := t.TempDir()
	path, err := WriteConfig(dir, ConfigOptions{
		Job:            "docker-swarm",
		Targets:        []string{"127.0.0.1:1", "127.0.0.1:2"},
		TargetLabels:   map[string]string{"cluster": "test"},
		TargetGroups:   []TargetGroup{{Targets: []string{"127.0.0.1:4"}, Labels: map[string]string{"cluster": "other"}}},
		Alertmanagers:  []string{"127.0.0.1:3"},
		ScrapeInterval: time.Second, EvaluationInterval: time.Second,
		Durations: Scale(0.1, time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, want := range []string{"127.0.0.1:1", "127.0.0.1:2", "cluster: test", "127.0.0.1:3", "scrape_interval: 1s",
		"evaluation_interval: 1s", "job_name: docker-swarm", "127.0.0.1:4", "cluster: other", "../rules/swarm_exporter.rules.yml"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("the copied prometheus.yml lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, "dns_sd_configs") {
		t.Errorf("the copied prometheus.yml still discovers targets by DNS:\n%s", cfg)
	}
	alerts, err := os.ReadFile(filepath.Join(dir, "alerts", "swarm_exporter.alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(alerts), "for: 30s") || strings.Contains(string(alerts), "for: 5m") {
		t.Error("the copied alerts keep their original for: durations")
	}
	if _, err := os.Stat(filepath.Join(dir, "rules", "swarm_exporter.rules.yml")); err != nil {
		t.Error(err)
	}
	promtool := Tool(t, "promtool")
	out, err := execOutput(promtool, "check", "config", path)
	if err != nil {
		t.Errorf("promtool check config on the copy: %v\n%s", err, out)
	}
}

func TestSubstitute(t *testing.T) {
	got, err := Substitute(`rate(x{job=~"$job", instance=~"${instance:regex}", s=~"[[service]]"}[$__rate_interval])`, map[string]string{"job": "j"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `rate(x{job=~"j", instance=~".*", s=~".*"}[1m])`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if _, err := Substitute(`x{a="$nosuch"}`, nil); err == nil {
		t.Error("an unknown variable must be an error")
	}
}

func TestRewriteRuleDurations(t *testing.T) {
	in := []byte("groups:\n  - name: g\n    rules:\n      - record: r\n        expr: x\n      - alert: A\n        expr: up == 0\n        for: 5m\n        keep_firing_for: 10m\n      - alert: B\n        expr: up == 1\n        for: 5m\n")
	var seen []string
	out, err := RewriteRuleDurations(in, func(rule, key string, d time.Duration) time.Duration {
		seen = append(seen, rule+"/"+key+"="+d.String())
		if rule == "B" {
			return time.Minute
		}
		return d / 10
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: x\n      - alert: A\n        expr: up == 0\n        for: 30s\n        keep_firing_for: 1m\n      - alert: B\n        expr: up == 1\n        for: 1m\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if got := strings.Join(seen, " "); got != "A/for=5m0s A/keep_firing_for=10m0s B/for=5m0s" {
		t.Errorf("the function saw %s", got)
	}
}

func TestWriteAlertmanagerConfig(t *testing.T) {
	dir := t.TempDir()
	path, err := WriteAlertmanagerConfig(dir, AlertmanagerOptions{
		Webhook:   func(receiver, url string) string { return "http://127.0.0.1:1/" + receiver },
		GroupWait: time.Second, GroupInterval: 2 * time.Second, RepeatInterval: 10 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, want := range []string{"http://127.0.0.1:1/swarm-critical", "http://127.0.0.1:1/swarm-warning", "group_wait: 1s",
		"group_interval: 2s", "repeat_interval: 10m", "SwarmQuorumLost"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("the copy lacks %q:\n%s", want, cfg)
		}
	}
	for _, old := range []string{"5001", "repeat_interval: 1h", "repeat_interval: 4h", "group_wait: 30s"} {
		if strings.Contains(cfg, old) {
			t.Errorf("the copy still has %q:\n%s", old, cfg)
		}
	}
	orig, err := os.ReadFile(Path(AlertsDir, "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ what, from, to string }{
		{"an inhibit rule's equal list", "    equal: [swarm_labels]", "    equal: [job]"},
		{"a route's matcher", `severity="critical"`, `severity="page"`},
		{"send_resolved", "send_resolved: true", "send_resolved: false"},
		{"group_by", "group_by: ['...']", "group_by: [alertname]"},
		{"a timing that is not a duration", "group_wait: 30s", "group_wait: soon"},
	} {
		changed := strings.Replace(string(orig), c.from, c.to, 1)
		if changed == string(orig) {
			t.Fatalf("%s: %q is not in alerts/alertmanager.yml", c.what, c.from)
		}
		if err := CheckAlertmanagerCopy(orig, []byte(changed)); err == nil {
			t.Errorf("a copy with another %s passes", c.what)
		}
	}
	if err := CheckAlertmanagerCopy(orig, []byte(strings.ReplaceAll(string(orig), "127.0.0.1:5001", "10.0.0.1:80"))); err != nil {
		t.Errorf("other webhook URLs: %v", err)
	}
	amtool := Tool(t, "amtool")
	if out, err := execOutput(amtool, "check-config", path); err != nil {
		t.Errorf("amtool check-config on the copy: %v\n%s", err, out)
	}
}
