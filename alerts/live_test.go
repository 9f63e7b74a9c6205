package alerts_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/fakedocker"
	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
)

// The tests of this file run the shipped files on a real Prometheus (a copy
// of alerts/prometheus.yml and the rules, durations shortened) scraping the
// real exporter reading captured swarms, and on a real Alertmanager.

// firingAlerts returns the firing alerts as "alertname/object" (object: the
// node's hostname, the service's name, or the instance), sorted, and
// checks that their annotations rendered.
func firingAlerts(t *testing.T, prom *monitoring.Prometheus, extra func(monitoring.Alert) string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alerts, err := prom.Alerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range alerts {
		if a.State != "firing" {
			continue
		}
		key := a.Labels["alertname"] + "/" + a.Labels["service_name"] + a.Labels["hostname"]
		if extra != nil {
			key += extra(a)
		}
		got = append(got, key)
		for k, v := range a.Annotations {
			if strings.Contains(v, "<no value>") || strings.Contains(v, "error executing") || strings.TrimSpace(v) == "" {
				t.Errorf("%s: annotation %s did not render: %q", a.Labels["alertname"], k, v)
			}
		}
	}
	sort.Strings(got)
	return got
}

// waitFiring waits until exactly want fires, then checks that it stays so
// for a while (nothing else fires later), and returns the alerts.
func waitFiring(t *testing.T, prom *monitoring.Prometheus, want []string, extra func(monitoring.Alert) string) []monitoring.Alert {
	t.Helper()
	sort.Strings(want)
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := firingAlerts(t, prom, extra)
		if strings.Join(got, " ") == strings.Join(want, " ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("firing alerts %v, want %v", got, want)
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(10 * time.Second)
	if got := firingAlerts(t, prom, extra); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("later, firing alerts are %v, want only %v", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alerts, err := prom.Alerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return alerts
}

// TestAlertsOnCapturedSwarms: each captured swarm, read by three real
// exporters, is a swarm of its own (a cluster label each) for one
// Prometheus: the expected alerts fire, once each, in their swarm only,
// with their templates rendered from real series.
func TestAlertsOnCapturedSwarms(t *testing.T) {
	t.Parallel()
	monitoring.Tool(t, "prometheus")
	bin := monitoring.BuildExporter(t)
	cases := []struct {
		scenario string
		want     []string // alertname/object, firing
		says     map[string]string
	}{
		// zero is scaled to 0 replicas: KO for the exporter, no page.
		{"healthy-3m2w", nil, nil},
		{"quorum-lost", []string{"SwarmQuorumLost/"}, nil},
		{"missing-image", []string{"SwarmServiceDegraded/partial", "SwarmServiceDown/ghost"}, nil},
		// Every manager is locked: one page, which says what to do.
		{"locked", []string{"SwarmExporterDown/"}, map[string]string{"SwarmExporterDown": "docker swarm unlock"}},
		// Captured while the tasks of the node that went down were being
		// rescheduled: frozen in time, web and pinned stay short of tasks.
		{"worker-down", []string{"SwarmNodeDown/swx-w2", "SwarmServiceDegraded/pinned", "SwarmServiceDegraded/web"}, nil},
		{"manager-down", []string{"SwarmNodeDown/swx-m3", "SwarmServiceDegraded/web"}, map[string]string{"SwarmNodeDown": "one more manager loss stops the swarm"}},
	}
	var groups []monitoring.TargetGroup
	var want []string
	says := map[string]string{}
	for _, c := range cases {
		fake := monitoring.FakeDocker(t, c.scenario)
		g := monitoring.TargetGroup{Labels: map[string]string{"cluster": c.scenario}}
		for i := 0; i < 3; i++ {
			g.Targets = append(g.Targets, monitoring.StartExporter(t, bin, fake.Host).Addr)
		}
		groups = append(groups, g)
		for _, w := range c.want {
			want = append(want, w+" in "+c.scenario)
		}
		for a, text := range c.says {
			says[a+" in "+c.scenario] = text
		}
	}
	path, err := monitoring.WriteConfig(t.TempDir(), monitoring.ConfigOptions{
		TargetGroups: groups, ScrapeInterval: time.Second, EvaluationInterval: time.Second,
		Durations: monitoring.Scale(0.02, time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	prom := monitoring.StartPrometheus(t, path)
	prom.WaitFor(t, `job:docker_swarm_up:known`, len(cases), 30*time.Second)
	alerts := waitFiring(t, prom, want, func(a monitoring.Alert) string { return " in " + a.Labels["cluster"] })
	for _, a := range alerts {
		if a.State != "firing" {
			continue
		}
		key := a.Labels["alertname"] + " in " + a.Labels["cluster"]
		if testing.Verbose() {
			t.Logf("%s: %s", key, a.Annotations["description"])
		}
		if text := says[key]; text != "" && !strings.Contains(a.Annotations["description"], text) {
			t.Errorf("%s does not say %q: %s", key, text, a.Annotations["description"])
		}
		if want := fmt.Sprintf("cluster=%q, job=%q", a.Labels["cluster"], monitoring.DefaultJob); a.Labels["swarm_labels"] != want {
			t.Errorf("%s: swarm_labels %q, want %q", key, a.Labels["swarm_labels"], want)
		}
	}
}

// TestTwoSwarmsOtherJob loads the shipped files unchanged (but for their
// durations) in one Prometheus that scrapes two swarms under a job name of
// the test's choosing, told apart by a cluster label: each alert is about
// one swarm, carries its labels, and its swarm_labels tell the two apart.
func TestTwoSwarmsOtherJob(t *testing.T) {
	t.Parallel()
	monitoring.Tool(t, "prometheus")
	bin := monitoring.BuildExporter(t)
	groups := []monitoring.TargetGroup{}
	for _, sw := range []struct{ cluster, scenario string }{{"a", "healthy-3m2w"}, {"b", "worker-down"}} {
		fake := monitoring.FakeDocker(t, sw.scenario)
		g := monitoring.TargetGroup{Labels: map[string]string{"cluster": sw.cluster}}
		for i := 0; i < 2; i++ {
			g.Targets = append(g.Targets, monitoring.StartExporter(t, bin, fake.Host).Addr)
		}
		groups = append(groups, g)
	}
	path, err := monitoring.WriteConfig(t.TempDir(), monitoring.ConfigOptions{
		Job: "docker-swarm", TargetGroups: groups, ScrapeInterval: time.Second, EvaluationInterval: time.Second,
		Durations: monitoring.Scale(0.02, time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	prom := monitoring.StartPrometheus(t, path)
	prom.WaitFor(t, `job:docker_swarm_up:known`, 2, 30*time.Second)
	// b is the captured worker-down swarm (see TestAlertsOnCapturedSwarms).
	alerts := waitFiring(t, prom, []string{"SwarmNodeDown/swx-w2 cluster=b", "SwarmServiceDegraded/pinned cluster=b", "SwarmServiceDegraded/web cluster=b"}, func(a monitoring.Alert) string {
		return " cluster=" + a.Labels["cluster"]
	})
	for _, a := range alerts {
		if a.State != "firing" {
			continue
		}
		if a.Labels["job"] != "docker-swarm" {
			t.Errorf("%s: job %q, want docker-swarm", a.Labels["alertname"], a.Labels["job"])
		}
		if want := `cluster="b", job="docker-swarm"`; a.Labels["swarm_labels"] != want {
			t.Errorf("%s: swarm_labels %q, want %q", a.Labels["alertname"], a.Labels["swarm_labels"], want)
		}
	}
	// The recording rules keep the two swarms apart.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, expr := range []string{`job:docker_swarm_cluster_status:severity`, `job:docker_swarm_services_read:bool`, `count without (node_id, hostname, state) (node:docker_swarm_node_state:max == 1)`} {
		res, err := prom.Query(ctx, expr)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range res {
			got = append(got, fmt.Sprintf("%s/%s=%g", s.Metric["job"], s.Metric["cluster"], s.Value))
		}
		sort.Strings(got)
		if len(got) != 2 || !strings.HasPrefix(got[0], "docker-swarm/a=") || !strings.HasPrefix(got[1], "docker-swarm/b=") {
			t.Errorf("%s gives %v, want one series per swarm", expr, got)
		}
	}
}

// TestAlertmanagerInhibitions: the inhibit rules of alerts/alertmanager.yml
// on a real Alertmanager. An outage of a swarm mutes the alerts it holds,
// in that swarm only, whatever label tells the swarms apart.
func TestAlertmanagerInhibitions(t *testing.T) {
	t.Parallel()
	am := monitoring.StartAlertmanager(t, monitoring.Path("alerts", "alertmanager.yml"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	swarm := func(env string) string { return fmt.Sprintf(`env=%q, job="docker-swarm"`, env) }
	alert := func(name, severity, env string, labels ...string) monitoring.AMAlert {
		l := map[string]string{"alertname": name, "severity": severity, "job": "docker-swarm", "env": env, "swarm_labels": swarm(env)}
		for i := 0; i+1 < len(labels); i += 2 {
			l[labels[i]] = labels[i+1]
		}
		return monitoring.AMAlert{Labels: l, StartsAt: time.Now().Add(-time.Minute)}
	}
	sent := []monitoring.AMAlert{
		// prod lost its quorum: its node and service alerts are muted, not
		// the exporter's nor the cluster's.
		alert("SwarmQuorumLost", "critical", "prod"),
		alert("SwarmNodeDown", "warning", "prod", "node_id", "n1", "hostname", "w1"),
		alert("SwarmServiceDown", "critical", "prod", "service_name", "web"),
		alert("SwarmClusterStatusWarning", "warning", "prod"),
		alert("SwarmExporterTargetDown", "warning", "prod"),
		// staging, told apart by env only, is not muted by prod's outage.
		alert("SwarmNodeDown", "warning", "staging", "node_id", "n1", "hostname", "w1"),
		alert("SwarmServiceDown", "critical", "staging", "service_name", "web"),
		// test: nobody reads it: everything about its state is muted.
		alert("SwarmExporterDown", "critical", "test"),
		alert("SwarmQuorumLost", "critical", "test"),
		alert("SwarmClusterStatusKO", "critical", "test"),
		alert("SwarmEngineVersionsDiffer", "info", "test"),
		// lab: its services are not read.
		alert("SwarmServicesNotRead", "critical", "lab"),
		alert("SwarmServiceCrashLooping", "warning", "lab", "service_name", "api"),
		alert("SwarmNodeDown", "warning", "lab", "node_id", "n2", "hostname", "w2"),
	}
	if err := am.Post(ctx, sent...); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{ // alertname/env/object -> inhibited
		"SwarmQuorumLost/prod/":            false,
		"SwarmNodeDown/prod/w1":            true,
		"SwarmServiceDown/prod/web":        true,
		"SwarmClusterStatusWarning/prod/":  false,
		"SwarmExporterTargetDown/prod/":    false,
		"SwarmNodeDown/staging/w1":         false,
		"SwarmServiceDown/staging/web":     false,
		"SwarmExporterDown/test/":          false,
		"SwarmQuorumLost/test/":            true,
		"SwarmClusterStatusKO/test/":       true,
		"SwarmEngineVersionsDiffer/test/":  true,
		"SwarmServicesNotRead/lab/":        false,
		"SwarmServiceCrashLooping/lab/api": true,
		"SwarmNodeDown/lab/w2":             false,
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
			key := a.Labels["alertname"] + "/" + a.Labels["env"] + "/" + a.Labels["hostname"] + a.Labels["service_name"]
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

// switchFixture swaps the captured swarm a fake Docker API serves.
func switchFixture(t *testing.T, fake *fakedocker.Server, scenario string) {
	t.Helper()
	f, err := fakedocker.LoadFixture(monitoring.Path("testdata", "docker", scenario))
	if err != nil {
		t.Fatal(err)
	}
	fake.SetFixture(f)
}
