package e2e

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
	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// TestPipeline runs the whole monitoring pipeline on a real 3-manager,
// 2-worker swarm: one exporter per manager, as users deploy it; a real
// Prometheus scraping the three with the shipped rules (only their for:
// shortened, see pipeFor); a real Alertmanager with the shipped routes and
// inhibit rules (only its webhooks and group timing changed) notifying a
// recording webhook. It checks, in order:
//
//  1. healthy: no alert pending or firing, nothing notified; every
//     dashboard query runs, and which return data is logged;
//  2. a worker crashes: SwarmNodeDown reaches the webhook, routed by
//     severity, with the documented labels and annotations, naming the
//     node, and nothing else (the cluster's WARNING has no other reason);
//     it restarts: the alert resolves;
//  3. the leader crashes with the exporter it hosts: the two other
//     instances keep reporting; every dashboard query that is not about the
//     instances gives with both what it gives with either alone (no
//     duplicate by instance); SwarmNodeDown names it, once; it restarts
//     with its exporter, and the alert resolves;
//  4. two managers crash with their exporters: SwarmQuorumLost reaches the
//     webhook, and neither the cluster KO nor anything else; the per-node
//     and per-service alerts whose condition held keep firing in
//     Prometheus through the outage (held while no leader is seen) and
//     Alertmanager mutes them: nothing of theirs is notified until the
//     managers are back; then the quorum alert resolves;
//  5. every dashboard query returned data in some scenario;
//  6. no alert was notified twice (each alert is notified firing once and
//     resolved once per episode) or once per instance, and every alert
//     notified firing was notified resolved unless its condition still
//     holds.
//
// Whatever fires that a scenario does not expect fails the test when its
// condition held as long as the shipped for: (the shipped rules would page
// too), and is logged as an effect of the shortened durations otherwise.
//
// SWARM_PIPELINE_BREAK (comma separated) breaks the pipeline on purpose, to
// show that the test catches it: no-inhibit (the copy of alertmanager.yml
// loses the SwarmQuorumLost inhibit rule), skewed-instance (one exporter runs
// with --no-collector.tasks), per-instance-rules
// (node:docker_swarm_node_state:max keeps the instance label),
// two-alertmanagers (Prometheus notifies two unclustered Alertmanagers).
func TestPipeline(t *testing.T) {
	monitoring.Tool(t, "prometheus")
	monitoring.Alertmanager(t)
	amtool := monitoring.Tool(t, "amtool")
	began := time.Now()
	s := swarmtest.StartForTest(t, swarmtest.Options{})
	p := pipeSetup(t, s, amtool)
	t.Logf("pipeline up %v after the start", time.Since(began).Round(time.Second))
	for _, step := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"1 healthy", p.healthy},
		{"2 worker down", p.workerDown},
		{"3 leader and its exporter down", p.managerDown},
		{"4 quorum lost", p.quorumLost},
		{"5 every panel had data", p.panelCoverage},
		{"6 notifications", p.notifications},
	} {
		t0 := time.Now()
		t.Logf("=== %s", step.name)
		step.f(t)
		t.Logf("=== %s: done after %v (%v since the start)", step.name, time.Since(t0).Round(time.Second), time.Since(began).Round(time.Second))
	}
}

// pipeline is the state TestPipeline carries from scenario to scenario.
type pipeline struct {
	s       *swarmtest.Swarm
	top     *testing.T // owns the processes, which outlive each scenario
	prom    *monitoring.Prometheus
	hook    *monitoring.Webhook
	ams     []*monitoring.AlertmanagerServer
	rules   map[string]monitoring.Rule // the shipped alerts, by name
	inst    []*pipeInstance            // one exporter per manager
	queries []monitoring.PanelQuery
	data    map[string][]string // query → scenarios in which it returned data
	muted   *regexp.Regexp      // alerts SwarmQuorumLost inhibits (shipped alertmanager.yml)
	start   time.Time
}

// pipeScenario is what one scenario expects to fire.
type pipeScenario struct {
	Name     string
	From, To time.Time
	Required []pipeMatch       // must be notified firing, one alert each, once
	Allowed  map[string]string // alertname → why it may fire too
	Carried  map[string]bool   // alerts (Key) already firing at From
}

func pipeSetup(t *testing.T, s *swarmtest.Swarm, amtool string) *pipeline {
	p := &pipeline{s: s, top: t, data: map[string][]string{}, start: time.Now()}
	img := swarmtest.WorkloadImage
	for _, args := range [][]string{
		{"--name", "web", "--replicas", "4", "--label", "com.docker.stack.namespace=shop", "--restart-delay", "1s", img},
		{"--name", "agent", "--mode", "global", "--restart-delay", "1s", img},
		{"--name", "batch", "--mode", "replicated-job", "--replicas", "2", "--restart-condition", "none", img, "exit", "0"},
	} {
		if _, err := s.CreateService(args...); err != nil {
			t.Fatal(err)
		}
	}

	rf, err := monitoring.LoadRuleFile(monitoring.Path("alerts", "swarm_exporter.alerts.yml"))
	faultMust(t, err)
	p.rules = map[string]monitoring.Rule{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			p.rules[r.Alert] = r
			if _, ok := pipeFor[r.Alert]; !ok {
				t.Fatalf("alert %s has no test duration: add it to pipeFor", r.Alert)
			}
		}
	}
	p.muted = pipeQuorumLostTargets(t)

	// Alertmanager: the shipped routes and inhibit rules, notifying the
	// webhook, with short grouping delays. The repeat interval outlasts the
	// test, so that a notification repeated unchanged is a duplicate.
	p.hook = monitoring.StartWebhook(t)
	dir := t.TempDir()
	amPath, err := monitoring.WriteAlertmanagerConfig(dir, monitoring.AlertmanagerOptions{
		Webhook:   func(receiver, _ string) string { return p.hook.URL + "/" + receiver },
		GroupWait: time.Second, GroupInterval: 2 * time.Second, RepeatInterval: 30 * time.Minute,
	})
	faultMust(t, err)
	if pipeBreak("no-inhibit") {
		pipeDropQuorumInhibition(t, amPath)
	}
	monitoring.Run(t, amtool, "check-config", amPath)
	p.ams = append(p.ams, monitoring.StartAlertmanager(t, amPath))
	if pipeBreak("two-alertmanagers") {
		p.ams = append(p.ams, monitoring.StartAlertmanager(t, amPath))
	}

	// One exporter per manager.
	var targets, amAddrs []string
	for i, m := range s.Managers() {
		in := &pipeInstance{Node: m, Addr: freeAddr(t)}
		if i == 1 && pipeBreak("skewed-instance") { // not m1, the first leader, killed in scenario 3
			in.Flags = []string{"--no-collector.tasks"}
		}
		p.startInstance(in)
		p.inst = append(p.inst, in)
		targets = append(targets, in.Addr)
	}
	for _, am := range p.ams {
		amAddrs = append(amAddrs, am.Addr)
	}

	// Prometheus: the shipped prometheus.yml and rules, durations shortened.
	var durErr error
	promPath, err := monitoring.WriteConfig(dir, monitoring.ConfigOptions{
		Targets: targets, Alertmanagers: amAddrs, ScrapeInterval: time.Second, EvaluationInterval: time.Second,
		RuleDurations: func(rule, key string, d time.Duration) time.Duration {
			if key == "for" {
				return pipeFor[rule]
			}
			durErr = fmt.Errorf("%s: unexpected duration key %s", rule, key)
			return d
		},
	})
	faultMust(t, err)
	faultMust(t, durErr)
	p.checkRuleCopy(t, dir)
	if pipeBreak("per-instance-rules") {
		path := filepath.Join(dir, "rules", "swarm_exporter.rules.yml")
		b, err := os.ReadFile(path)
		faultMust(t, err)
		broken := strings.Replace(string(b), "expr: max without (instance) (docker_swarm_node_state and ignoring (node_id, hostname, state) instance:docker_swarm_view:bool)", "expr: docker_swarm_node_state", 1)
		if broken == string(b) {
			t.Fatal("per-instance-rules: the rule to break is not there")
		}
		faultMust(t, os.WriteFile(path, []byte(broken), 0o644))
	}
	p.prom = monitoring.StartPrometheus(t, promPath)

	p.queries, err = monitoring.PanelQueries(map[string]string{"job": pipeJob})
	faultMust(t, err)
	return p
}

// checkRuleCopy checks that the copy Prometheus loads has the test's
// durations (WriteConfig checked that nothing else differs).
func (p *pipeline) checkRuleCopy(t *testing.T, dir string) {
	rf, err := monitoring.LoadRuleFile(filepath.Join(dir, "alerts", "swarm_exporter.alerts.yml"))
	faultMust(t, err)
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			n++
			shipped := p.rules[r.Alert]
			if r.For != pipeDur(pipeFor[r.Alert]) {
				t.Errorf("the copy of %s has for: %s, want %s", r.Alert, r.For, pipeDur(pipeFor[r.Alert]))
			}
			if (shipped.KeepFiringFor == "") != (r.KeepFiringFor == "") || r.Expr != shipped.Expr {
				t.Errorf("the copy of %s differs from the shipped rule beyond its durations", r.Alert)
			}
		}
	}
	if n != len(p.rules) {
		t.Errorf("the copy has %d alerts, the shipped file %d", n, len(p.rules))
	}
}

func pipeDur(d time.Duration) string { return model.Duration(d).String() }

// pipeQuorumLostTargets returns the alert names that the shipped
// alertmanager.yml inhibits while SwarmQuorumLost fires.
func pipeQuorumLostTargets(t *testing.T) *regexp.Regexp {
	b, err := os.ReadFile(monitoring.Path("alerts", "alertmanager.yml"))
	faultMust(t, err)
	var cfg struct {
		Inhibit []struct {
			Source []string `yaml:"source_matchers"`
			Target []string `yaml:"target_matchers"`
		} `yaml:"inhibit_rules"`
	}
	faultMust(t, yaml.Unmarshal(b, &cfg))
	re := regexp.MustCompile(`^alertname=~"(.*)"$`)
	for _, r := range cfg.Inhibit {
		if len(r.Source) == 1 && r.Source[0] == `alertname="SwarmQuorumLost"` {
			for _, m := range r.Target {
				if mm := re.FindStringSubmatch(m); mm != nil {
					return regexp.MustCompile("^(?:" + mm[1] + ")$")
				}
			}
		}
	}
	t.Fatal("alerts/alertmanager.yml has no inhibit rule for SwarmQuorumLost")
	return nil
}

// pipeDropQuorumInhibition removes the SwarmQuorumLost inhibit rule from a
// copy of alertmanager.yml (SWARM_PIPELINE_BREAK=no-inhibit).
func pipeDropQuorumInhibition(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	faultMust(t, err)
	var cfg yaml.MapSlice
	faultMust(t, yaml.Unmarshal(b, &cfg))
	for i, it := range cfg {
		if it.Key != "inhibit_rules" {
			continue
		}
		var kept []any
		for _, r := range it.Value.([]any) {
			if !strings.Contains(fmt.Sprint(r), `alertname="SwarmQuorumLost"`) {
				kept = append(kept, r)
			}
		}
		if len(kept) == len(it.Value.([]any)) {
			t.Fatal("no-inhibit: alertmanager.yml has no SwarmQuorumLost inhibit rule")
		}
		cfg[i].Value = kept
	}
	out, err := yaml.Marshal(cfg)
	faultMust(t, err)
	faultMust(t, os.WriteFile(path, out, 0o644))
}

// startInstance runs (or runs again) an instance's exporter on its address.
func (p *pipeline) startInstance(in *pipeInstance) {
	in.E = StartExporter(p.top, in.Node.Host(), append([]string{"--web.listen-address=" + in.Addr}, in.Flags...)...)
}

// stopInstance kills an instance's exporter, as a crash of its node kills
// the task.
func (p *pipeline) stopInstance(t *testing.T, in *pipeInstance) {
	faultMust(t, in.E.cmd.Process.Kill())
	pipeWaitHTTPDown(t, in.Addr)
	in.E = nil
}

func (p *pipeline) instance(n *swarmtest.Node) *pipeInstance {
	for _, in := range p.inst {
		if in.Node == n {
			return in
		}
	}
	panic("no instance for " + n.Name)
}

// begin starts a scenario: the alerts firing now are carried over.
func (p *pipeline) begin(t *testing.T, name string, required []pipeMatch, allowed map[string]string) *pipeScenario {
	sc := &pipeScenario{Name: name, From: time.Now(), Required: required, Allowed: allowed, Carried: map[string]bool{}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alerts, err := p.prom.Alerts(ctx)
	faultMust(t, err)
	for _, a := range alerts {
		if a.State == "firing" {
			sc.Carried[monitoring.LabelsKey(a.Labels)] = true
		}
	}
	if len(sc.Carried) > 0 {
		t.Logf("%s: firing at the start: %v", name, pipeKeys(sc.Carried))
	}
	return sc
}

func pipeKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// end checks what fired during the scenario against what it expects.
func (p *pipeline) end(t *testing.T, sc *pipeScenario) {
	sc.To = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	series, err := p.prom.QueryRange(ctx, `ALERTS{alertstate="firing"}`, sc.From, sc.To, time.Second)
	faultMust(t, err)
	fired := map[string]map[string]string{}
	for _, s := range series {
		l := map[string]string{}
		for k, v := range s.Metric {
			if k != "__name__" && k != "alertstate" {
				l[k] = v
			}
		}
		fired[monitoring.LabelsKey(l)] = l
	}
	for _, m := range sc.Required {
		n := 0
		for _, l := range fired {
			if m.matches(l) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d alerts %s fired in Prometheus, want 1", sc.Name, n, m)
		}
	}
	for _, key := range pipeSortedKeys(fired) {
		l := fired[key]
		name := l["alertname"]
		why := ""
		switch {
		case sc.Carried[key]:
			why = "firing since an earlier scenario"
		case sc.Allowed[name] != "":
			why = sc.Allowed[name]
		}
		for _, m := range sc.Required {
			if m.matches(l) {
				why = "expected"
			}
		}
		if why != "" {
			t.Logf("%s: fired: %s (%s)", sc.Name, key, why)
			continue
		}
		held := p.conditionHeld(t, l, sc.From.Add(-10*time.Minute), sc.To)
		shipped, _ := pipeParseDuration(p.rules[name].For)
		if held >= shipped {
			t.Errorf("%s: %s fired unexpectedly, and its condition held %v: the shipped for: %v would not have stopped it",
				sc.Name, key, held, shipped)
		} else {
			t.Logf("%s: %s fired because for: is shortened here (%v); its condition held %v, less than the shipped %v",
				sc.Name, key, pipeFor[name], held, shipped)
		}
	}
	// What was notified fired in Prometheus; each required alert was
	// notified firing once, as one alert (one label set, one episode).
	for _, d := range pipeDeliveries(p.hook, sc.From) {
		if d.At.After(sc.To) {
			break
		}
		if d.Status == "firing" && fired[d.Key()] == nil && !sc.Carried[d.Key()] {
			t.Errorf("%s: notified firing %s, which did not fire in Prometheus", sc.Name, d.Key())
		}
	}
	for _, m := range sc.Required {
		episodes := map[string]map[time.Time]bool{}
		for _, d := range pipeDeliveries(p.hook, sc.From) {
			if d.Status == "firing" && m.matches(d.Labels) && !d.At.After(sc.To) {
				if episodes[d.Key()] == nil {
					episodes[d.Key()] = map[time.Time]bool{}
				}
				episodes[d.Key()][d.StartsAt] = true
			}
		}
		if len(episodes) != 1 {
			t.Errorf("%s: %d different alerts %s notified, want 1: %v", sc.Name, len(episodes), m, episodes)
		}
		for k, e := range episodes {
			if len(e) != 1 {
				t.Errorf("%s: %s notified firing in %d episodes (it resolved and fired again): %v", sc.Name, k, len(e), e)
			}
		}
	}
}

func pipeSortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func pipeParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := model.ParseDuration(s)
	return time.Duration(d), err
}

// condKey identifies the series of an alert's expression that an alert
// comes from: its labels without the alert's name, state and rule labels.
func (p *pipeline) condKey(labels map[string]string) string {
	rule := p.rules[labels["alertname"]]
	l := map[string]string{}
	for k, v := range labels {
		if _, own := rule.Labels[k]; !own && k != "alertname" && k != "alertstate" && k != "__name__" {
			l[k] = v
		}
	}
	return monitoring.LabelsKey(l)
}

// conditionHeld returns the longest time the alert's expression held
// without a break between from and to.
func (p *pipeline) conditionHeld(t *testing.T, labels map[string]string, from, to time.Time) time.Duration {
	if from.Before(p.start) {
		from = p.start
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	series, err := p.prom.QueryRange(ctx, p.rules[labels["alertname"]].Expr, from, to, time.Second)
	faultMust(t, err)
	want := p.condKey(labels)
	for _, s := range series {
		if p.condKey(s.Metric) == want || monitoring.LabelsKey(pipeWithout(s.Metric, "__name__")) == want {
			return pipeRun(s.Points, time.Second)
		}
	}
	return 0
}

// conditionNow reports whether the alert's expression holds now.
func (p *pipeline) conditionNow(t *testing.T, labels map[string]string) bool {
	want := p.condKey(labels)
	for _, s := range pipeQ(t, p.prom, p.rules[labels["alertname"]].Expr) {
		if monitoring.LabelsKey(pipeWithout(s.Metric, "__name__")) == want {
			return true
		}
	}
	return false
}

func pipeWithout(m map[string]string, drop ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for _, d := range drop {
		delete(out, d)
	}
	return out
}

// checkNotified checks one notified alert against its rule: routed by
// severity, the documented labels and rendered annotations.
func (p *pipeline) checkNotified(t *testing.T, d pipeDelivery) {
	t.Helper()
	name := d.Labels["alertname"]
	rule, ok := p.rules[name]
	if !ok {
		t.Errorf("notified an alert that is not shipped: %s", d.Key())
		return
	}
	for k, v := range rule.Labels {
		if k == "swarm_labels" { // a template: the swarm's job and target labels
			v = fmt.Sprintf("job=%q", pipeJob)
		}
		if d.Labels[k] != v {
			t.Errorf("%s: label %s=%q, the rule says %q", d.Key(), k, d.Labels[k], v)
		}
	}
	if d.Labels["job"] != pipeJob {
		t.Errorf("%s: no job label %s", d.Key(), pipeJob)
	}
	if _, ok := d.Labels["instance"]; ok && name != "SwarmExporterCannotRead" {
		t.Errorf("%s: an alert about the swarm carries the instance label", d.Key())
	}
	if want := "/swarm-" + rule.Labels["severity"]; d.Path != want {
		t.Errorf("%s: severity %s notified to %s, want %s", d.Key(), rule.Labels["severity"], d.Path, want)
	}
	for _, a := range []string{"summary", "description", "runbook_url"} {
		v := d.Annotations[a]
		if strings.TrimSpace(v) == "" {
			t.Errorf("%s: no %s annotation", d.Key(), a)
		}
		if pipeTemplateJunk.MatchString(v) {
			t.Errorf("%s: annotation %s did not render cleanly: %q", d.Key(), a, v)
		}
	}
	if want := "https://github.com/swarm-exporter/swarm_exporter/blob/main/docs/runbook.md#" + strings.ToLower(name); d.Annotations["runbook_url"] != want {
		t.Errorf("%s: runbook_url %q, want %q", d.Key(), d.Annotations["runbook_url"], want)
	}
	if len(d.Annotations) != 3 {
		t.Errorf("%s: annotations %v, want summary, description and runbook_url", d.Key(), pipeSortedKeys(d.Annotations))
	}
	t.Logf("notified %s %s to %s %v after it started:\n  summary: %s\n  description: %s",
		d.Status, d.Key(), d.Path, d.At.Sub(d.StartsAt).Round(100*time.Millisecond), d.Annotations["summary"], d.Annotations["description"])
}

// runPanels runs every dashboard query now: each must run, and those that
// return data are recorded for the scenario.
func (p *pipeline) runPanels(t *testing.T, scenario string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var empty []string
	for _, q := range p.queries {
		res, err := p.prom.Query(ctx, q.Expr)
		if err != nil {
			t.Errorf("%s: %s fails: %v\n%s", scenario, q, err, q.Expr)
			continue
		}
		if len(res) > 0 {
			p.data[q.String()] = append(p.data[q.String()], scenario)
		} else {
			empty = append(empty, q.String())
		}
	}
	t.Logf("%s: %d of %d panel queries return data; empty: %v", scenario, len(p.queries)-len(empty), len(p.queries), empty)
}

// checkPanelsPerInstance checks every dashboard query that is not about the
// exporter instances: it carries no instance label, gives one series per
// node or service, and gives with all the live instances what it gives
// with any one of them alone (labels, and values unless it counts the
// instances). Each query is retried until it agrees, since the instances
// are scraped at different moments.
func (p *pipeline) checkPanelsPerInstance(t *testing.T, live []*pipeInstance, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	pending := map[string]string{}
	for _, q := range p.queries {
		if q.PerInstance() {
			continue
		}
		pending[q.String()] = "not run"
	}
	for len(pending) > 0 {
		for _, q := range p.queries {
			if _, ok := pending[q.String()]; !ok {
				continue
			}
			problem := p.comparePanel(t, q, live)
			if problem == "" {
				delete(pending, q.String())
			} else {
				pending[q.String()] = problem
			}
		}
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, k := range pipeSortedKeys(pending) {
				t.Errorf("with %d instances, %s: %s", len(live), k, pending[k])
			}
			return
		}
		time.Sleep(time.Second)
	}
	t.Logf("every dashboard query that is not per instance gives with the %d live instances what it gives with each alone", len(live))
}

func (p *pipeline) comparePanel(t *testing.T, q monitoring.PanelQuery, live []*pipeInstance) string {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	all, err := p.prom.Query(ctx, q.Expr)
	if err != nil {
		return err.Error()
	}
	ids := append([]string{"hostname", "service_name"}, pipeLegendLabels(q.Legend)...)
	seen := map[string]int{}
	for _, s := range all {
		if _, ok := s.Metric["instance"]; ok {
			return "a series keeps the instance label: " + monitoring.LabelsKey(s.Metric)
		}
		var id []string
		for _, l := range ids {
			if v, ok := s.Metric[l]; ok {
				id = append(id, l+"="+v)
			}
		}
		if len(id) > 0 {
			seen[strings.Join(id, ",")]++
		}
	}
	for id, n := range seen {
		if n > 1 {
			return fmt.Sprintf("%d series for %s: %s", n, id, pipeSamples(all))
		}
	}
	valuesToo := !pipeIsInstances.MatchString(q.Raw)
	allV := pipeValues(all)
	for _, in := range live {
		expr, err := monitoring.Substitute(q.Raw, map[string]string{"job": pipeJob, "instance": in.Addr})
		if err != nil {
			return err.Error()
		}
		one, err := p.prom.Query(ctx, expr)
		if err != nil {
			return err.Error()
		}
		oneV := pipeValues(one)
		same := len(oneV) == len(allV)
		for k, v := range allV {
			ov, ok := oneV[k]
			same = same && ok && (!valuesToo || ov == v)
		}
		if !same {
			return fmt.Sprintf("all instances give %s; %s alone gives %s", pipeSamples(all), in.Node.Name, pipeSamples(one))
		}
	}
	return ""
}

// waitConditionsClear waits until none of the alerts' conditions has held
// for quiet, polling every second, and returns when one last held.
func (p *pipeline) waitConditionsClear(t *testing.T, alerts []map[string]string, quiet, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	lastTrue := time.Now()
	for time.Since(lastTrue) < quiet {
		for _, a := range alerts {
			if p.conditionNow(t, a) {
				lastTrue = time.Now()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the conditions of %v still hold now and then", timeout, alerts)
		}
		time.Sleep(time.Second)
	}
	return lastTrue
}

func pipeWith(m map[string]string, kv ...string) map[string]string {
	out := pipeWithout(m)
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// heldAlerts returns the firing alerts that hold while no leader is seen
// (the node and service alerts: their expression holds on
// job:docker_swarm_nodes_read:bool or services_read) and whose condition
// holds now.
func (p *pipeline) heldAlerts(t *testing.T) []map[string]string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alerts, err := p.prom.Alerts(ctx)
	faultMust(t, err)
	var out []map[string]string
	for _, a := range alerts {
		expr := p.rules[a.Labels["alertname"]].Expr
		holds := strings.Contains(expr, "job:docker_swarm_nodes_read:bool == 0") || strings.Contains(expr, "job:docker_swarm_services_read:bool == 0")
		if a.State == "firing" && holds && p.conditionNow(t, a.Labels) {
			out = append(out, a.Labels)
		}
	}
	return out
}

// pipeSelector selects an alert's ALERTS series, in a state (firing,
// pending) or in any.
func pipeSelector(labels map[string]string, state string) string {
	var m []string
	for _, k := range pipeSortedKeys(labels) {
		if k != "alertstate" {
			m = append(m, fmt.Sprintf("%s=%q", k, labels[k]))
		}
	}
	if state != "" {
		m = append(m, fmt.Sprintf("alertstate=%q", state))
	}
	return "ALERTS{" + strings.Join(m, ", ") + "}"
}

// waitInstancesRead waits until Prometheus scrapes the given instances and
// each reads the swarm with a leader, and returns when.
func (p *pipeline) waitInstancesRead(t *testing.T, live []*pipeInstance, timeout time.Duration) time.Time {
	var addrs []string
	for _, in := range live {
		addrs = append(addrs, regexp.QuoteMeta(in.Addr))
	}
	sel := fmt.Sprintf(`{job=%q, instance=~%q}`, pipeJob, strings.Join(addrs, "|"))
	pipeWaitQuery(t, p.prom, "every live instance reads the swarm through a leader",
		fmt.Sprintf(`count(docker_swarm_up%s == 1 and docker_swarm_managers_reachable%s >= 0)`, sel, sel), timeout,
		func(r []monitoring.Sample) bool { return len(r) == 1 && int(r[0].Value) == len(live) })
	return time.Now()
}

func pipeInstanceRegex(live []*pipeInstance) string {
	var addrs []string
	for _, in := range live {
		addrs = append(addrs, regexp.QuoteMeta(in.Addr))
	}
	return strings.Join(addrs, "|")
}

// Scenario 1: a healthy swarm.
func (p *pipeline) healthy(t *testing.T) {
	s := p.s
	faultMust(t, s.WaitRunning("web", 4, 2*time.Minute))
	faultMust(t, s.WaitRunning("agent", 5, 2*time.Minute))
	// One update, so that the update panels have something to show.
	faultMust(t, s.UpdateService("--env-add", "PIPELINE=1", "web"))
	sc := p.begin(t, "1 healthy", nil, nil)
	p.waitInstancesRead(t, p.inst, 90*time.Second)
	for _, c := range []struct{ what, expr string }{
		{"cluster and services OK", `job:docker_swarm_status:severity == 0`},
		{"web updated", `max without (instance, state) (docker_swarm_service_update_state{service_name="web", state="completed"}) == 1`},
		{"web runs 4 tasks", `service:docker_swarm_service_replicas_running:max{service_name="web"} == 4`},
		{"agent runs 5 tasks", `service:docker_swarm_service_replicas_running:max{service_name="agent"} == 5`},
		{"batch completed", `max without (instance) (docker_swarm_service_tasks_completed{service_name="batch"}) == 2`},
		{"5 nodes ready", `sum(job:docker_swarm_nodes:max{state="ready"}) == 5`},
	} {
		pipeWaitQuery(t, p.prom, c.what, c.expr, 2*time.Minute, func(r []monitoring.Sample) bool { return len(r) == 1 })
	}
	// No alert pending or firing on the healthy swarm, and none fired since
	// Prometheus started.
	pipeWaitQuery(t, p.prom, "no alert pending or firing on a healthy swarm", `ALERTS`, 30*time.Second,
		func(r []monitoring.Sample) bool { return len(r) == 0 })
	since := int(time.Since(p.start).Seconds()) + 1
	if res := pipeQ(t, p.prom, fmt.Sprintf(`count_over_time(ALERTS{alertstate="firing"}[%ds])`, since)); len(res) > 0 {
		t.Errorf("alerts fired while the swarm came up healthy: %s", pipeSamples(res))
	}
	if n := p.hook.Notifications(); len(n) > 0 {
		t.Errorf("%d notifications on a healthy swarm: %+v", len(n), n)
	}
	p.runPanels(t, "healthy")
	ds, err := monitoring.LoadDashboards()
	faultMust(t, err)
	for _, d := range ds {
		sels, err := monitoring.VariableSelectors(d, map[string]string{"job": pipeJob})
		faultMust(t, err)
		for name, sel := range sels {
			if res := pipeQ(t, p.prom, sel); len(res) == 0 {
				t.Errorf("%s: variable %s: %s finds nothing", filepath.Base(d.File), name, sel)
			}
		}
	}
	p.end(t, sc)
}

// Scenario 2: a worker crashes, and comes back.
func (p *pipeline) workerDown(t *testing.T) {
	s := p.s
	w := s.Workers()[0]
	nodeDown := pipeMatch{"SwarmNodeDown", map[string]string{"hostname": w.Hostname}}
	sc := p.begin(t, "2 worker down", []pipeMatch{nodeDown}, nil)
	faultMust(t, s.Kill(w))
	killed := time.Now()
	t.Logf("killed %s", w.Name)

	d := pipeWaitDelivered(t, p.hook, nodeDown, "firing", killed, 2*time.Minute)
	t.Logf("%s notified %v after the kill", d.Key(), d.At.Sub(killed).Round(100*time.Millisecond))
	p.checkNotified(t, d)
	if d.Labels["node_id"] != w.ID() {
		t.Errorf("%s: node_id %q, want %s", d.Key(), d.Labels["node_id"], w.ID())
	}
	if !strings.Contains(d.Annotations["description"], "Worker "+w.Hostname) || !strings.Contains(d.Annotations["description"], "down") {
		t.Errorf("%s: the description does not say worker %s is down: %q", d.Key(), w.Hostname, d.Annotations["description"])
	}
	p.runPanels(t, "worker down")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	faultMust(t, s.Restart(ctx, w))
	restarted := time.Now()
	d = pipeWaitDelivered(t, p.hook, nodeDown, "resolved", restarted, 90*time.Second)
	t.Logf("%s resolved %v after the restart", d.Key(), d.At.Sub(restarted).Round(100*time.Millisecond))
	pipeWaitQuery(t, p.prom, w.Name+" ready", fmt.Sprintf(`node:docker_swarm_node_state:max{hostname=%q, state="ready"} == 1`, w.Hostname),
		time.Minute, func(r []monitoring.Sample) bool { return len(r) == 1 })
	p.end(t, sc)
}

// Scenario 3: the leader crashes, and with it the exporter it hosts.
func (p *pipeline) managerDown(t *testing.T) {
	s := p.s
	victim, err := s.Leader()
	faultMust(t, err)
	vi := p.instance(victim)
	var live []*pipeInstance
	for _, in := range p.inst {
		if in != vi {
			live = append(live, in)
		}
	}
	// A service whose image exists nowhere: KO, its tasks rejected.
	_, err = s.CreateService("--name", "ghost", "--replicas", "2", "nosuchimage:1")
	faultMust(t, err)
	host := map[string]string{"hostname": victim.Hostname}
	required := []pipeMatch{
		{"SwarmNodeDown", host},
		{"SwarmServiceDown", map[string]string{"service_name": "ghost"}},
	}
	sc := p.begin(t, "3 leader and its exporter down", required, map[string]string{
		"SwarmExporterTargetDown":   "the crashed manager's exporter cannot be scraped before its node is seen down",
		"SwarmServiceTasksRejected": "ghost's image exists nowhere (until SwarmServiceDown outranks it)",
	})
	p.stopInstance(t, vi)
	faultMust(t, s.Kill(victim))
	killed := time.Now()
	t.Logf("killed %s (the leader) and the exporter at %s", victim.Name, vi.Addr)

	// The other instances see a new leader.
	pipeWaitQuery(t, p.prom, "the other instances see a new leader",
		fmt.Sprintf(`count(docker_swarm_node_leader{job=%q, instance=~%q, hostname!=%q} == 1)`, pipeJob, pipeInstanceRegex(live), victim.Hostname),
		2*time.Minute, func(r []monitoring.Sample) bool { return len(r) == 1 && int(r[0].Value) == len(live) })
	reading := p.waitInstancesRead(t, live, time.Minute)
	t.Logf("the %d other instances read the swarm through the new leader %v after the kill", len(live), reading.Sub(killed).Round(100*time.Millisecond))
	for _, m := range required {
		d := pipeWaitDelivered(t, p.hook, m, "firing", killed, 2*time.Minute)
		t.Logf("%s notified %v after the kill", d.Key(), d.At.Sub(killed).Round(100*time.Millisecond))
		p.checkNotified(t, d)
		if m.Labels["hostname"] != "" {
			if d.Labels["node_id"] != victim.ID() || !strings.Contains(d.Annotations["description"], victim.Hostname) {
				t.Errorf("%s does not name %s (%s): %v", d.Key(), victim.Hostname, victim.ID(), d.Annotations)
			}
			if !strings.Contains(d.Annotations["description"], "one more manager loss stops the swarm") {
				t.Errorf("%s does not say what the manager's loss does to the quorum: %q", d.Key(), d.Annotations["description"])
			}
		}
	}
	p.checkPanelsPerInstance(t, live, 45*time.Second)
	p.runPanels(t, "leader down")
	// The other instances kept being scraped, and read the swarm since the
	// new leader was elected.
	re := pipeInstanceRegex(live)
	for _, c := range []struct {
		what  string
		expr  string
		since time.Time
	}{
		{"scraped without a failure since the kill", "up", killed},
		{"read the swarm since the election", "docker_swarm_up", reading.Add(2 * time.Second)},
	} {
		expr := fmt.Sprintf(`min_over_time(%s{job=%q, instance=~%q}[%ds])`, c.expr, pipeJob, re, int(time.Since(c.since).Seconds()))
		res := pipeQ(t, p.prom, expr)
		if len(res) != len(live) {
			t.Errorf("the other instances were not all %s: %s", c.what, pipeSamples(res))
		}
		for _, r := range res {
			if r.Value != 1 {
				t.Errorf("%s was not %s: %s", r.Metric["instance"], c.what, pipeSamples(res))
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	faultMust(t, s.Restart(ctx, victim))
	p.startInstance(vi)
	restarted := time.Now()
	d := pipeWaitDelivered(t, p.hook, required[0], "resolved", restarted, 2*time.Minute)
	t.Logf("%s resolved %v after the restart", d.Key(), d.At.Sub(restarted).Round(100*time.Millisecond))
	p.waitInstancesRead(t, p.inst, time.Minute)
	// The alerts about it must no longer hold when scenario 4 begins: wait
	// until their conditions have been false for 10 s. Any instance that
	// says it is down or unreachable keeps them true (the recording rules
	// take the worst state of the instances), the restarted one included.
	ids := map[string]string{"hostname": victim.Hostname, "node_id": victim.ID(), "job": pipeJob}
	lastTrue := p.waitConditionsClear(t, []map[string]string{
		pipeWith(ids, "alertname", "SwarmNodeDown"), pipeWith(ids, "alertname", "SwarmManagerUnreachable"),
	}, 10*time.Second, 2*time.Minute)
	t.Logf("the conditions of SwarmNodeDown and SwarmManagerUnreachable for %s held until %v after the restart",
		victim.Name, lastTrue.Sub(restarted).Round(100*time.Millisecond))
	t.Logf("nodes not ready, as each instance saw them since the kill (t=0), restart at %.0fs:\n%s", restarted.Sub(killed).Seconds(),
		pipeTimeline(p.prom, fmt.Sprintf(`docker_swarm_node_state{job=%q, state!="ready"} == 1`, pipeJob), killed, time.Now()))
	for _, c := range []struct{ what, expr string }{
		{"reachability of " + victim.Hostname, fmt.Sprintf(`docker_swarm_node_manager_reachability{job=%q, hostname=%q} == 1`, pipeJob, victim.Hostname)},
		{"leader", fmt.Sprintf(`docker_swarm_node_leader{job=%q} == 1`, pipeJob)},
		{"local node leader", fmt.Sprintf(`docker_swarm_local_node_leader{job=%q}`, pipeJob)},
	} {
		t.Logf("%s seen by each instance since the kill (t=0):\n%s", c.what, pipeTimeline(p.prom, c.expr, killed, time.Now()))
	}
	t.Logf("cluster status, conditions and reads of each instance since the kill (t=0):\n%s\n%s\n%s",
		pipeTimeline(p.prom, fmt.Sprintf(`docker_swarm_cluster_status{job=%q} == 1`, pipeJob), killed, time.Now()),
		pipeTimeline(p.prom, fmt.Sprintf(`docker_swarm_cluster_condition{job=%q} == 1`, pipeJob), killed, time.Now()),
		pipeTimeline(p.prom, fmt.Sprintf(`docker_swarm_up{job=%q}`, pipeJob), killed, time.Now()))
	p.end(t, sc)
}

// Scenario 4: two managers of three crash with their exporters; the third
// keeps its exporter. Then both come back.
func (p *pipeline) quorumLost(t *testing.T) {
	s := p.s
	leader, err := s.Leader()
	faultMust(t, err)
	var survivor *swarmtest.Node
	var victims []*swarmtest.Node
	for _, m := range s.Managers() {
		if survivor == nil && m != leader {
			survivor = m
		} else {
			victims = append(victims, m)
		}
	}
	held := p.heldAlerts(t)
	var heldKeys []string
	ghostHeld := false
	for _, h := range held {
		heldKeys = append(heldKeys, monitoring.LabelsKey(h))
		ghostHeld = ghostHeld || (h["alertname"] == "SwarmServiceDown" && h["service_name"] == "ghost")
	}
	if !ghostHeld {
		t.Fatalf("SwarmServiceDown for ghost does not fire before the quorum loss; firing and held: %v", heldKeys)
	}
	t.Logf("firing, their condition true, before the quorum loss: %v", heldKeys)
	ql := pipeMatch{"SwarmQuorumLost", nil}
	sc := p.begin(t, "4 quorum lost", []pipeMatch{ql}, map[string]string{
		"SwarmExporterTargetDown":    "the crashed managers' exporters cannot be scraped",
		"SwarmClusterStatusWarning":  "the restarted managers come back",
		"SwarmLeaderChangesFrequent": "the test changes the leader several times within the hour",
	})
	for _, v := range victims {
		p.stopInstance(t, p.instance(v))
	}
	faultMust(t, pipeParallel(victims, s.Kill))
	killed := time.Now()
	t.Logf("killed %s and %s (the leader) with their exporters; %s survives", victims[0].Name, victims[1].Name, survivor.Name)

	d := pipeWaitDelivered(t, p.hook, ql, "firing", killed, 3*time.Minute)
	qlAt := d.At
	t.Logf("%s notified %v after the kill", d.Key(), qlAt.Sub(killed).Round(100*time.Millisecond))
	p.checkNotified(t, d)
	if !strings.Contains(d.Annotations["description"], "3 managers") {
		t.Errorf("%s: the description does not count the managers: %q", d.Key(), d.Annotations["description"])
	}

	// The cluster KO does not fire (the lost quorum is its reason), and
	// Alertmanager mutes the held alerts.
	if res := pipeQ(t, p.prom, `ALERTS{alertname="SwarmClusterStatusKO"}`); len(res) > 0 {
		t.Errorf("SwarmClusterStatusKO fires with SwarmQuorumLost: %s", pipeSamples(res))
	}
	for _, am := range p.ams {
		p.waitMuted(t, am, held, 15*time.Second)
	}
	p.runPanels(t, "quorum lost")
	// Two group intervals after SwarmQuorumLost, the managers come back.
	deadline := qlAt.Add(5 * time.Second)
	for time.Now().Before(deadline) && !t.Failed() {
		time.Sleep(500 * time.Millisecond)
	}
	restarting := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	faultMust(t, pipeParallel(victims, func(n *swarmtest.Node) error { return s.Restart(ctx, n) }))
	for _, v := range victims {
		p.startInstance(p.instance(v))
	}
	t.Logf("restarted %s and %s %v after the kill", victims[0].Name, victims[1].Name, time.Since(killed).Round(100*time.Millisecond))
	d = pipeWaitDelivered(t, p.hook, ql, "resolved", restarting, 3*time.Minute)
	t.Logf("%s resolved %v after the restart", d.Key(), d.At.Sub(restarting).Round(100*time.Millisecond))
	back := p.waitInstancesRead(t, p.inst, 2*time.Minute)
	t.Logf("the three instances read the swarm through a leader %v after the restart", back.Sub(restarting).Round(100*time.Millisecond))
	pipeWaitQuery(t, p.prom, "the cluster OK again", `job:docker_swarm_cluster_status:severity == 0`, 2*time.Minute,
		func(r []monitoring.Sample) bool { return len(r) == 1 })
	pipeWaitQuery(t, p.prom, "no quorum or KO alert left", `ALERTS{alertname=~"SwarmQuorumLost|SwarmClusterStatusKO"}`, time.Minute,
		func(r []monitoring.Sample) bool { return len(r) == 0 })
	recovered := time.Now()
	t.Logf("the outage seen by each instance since the kill (t=0), restart at %.0fs: reads, cluster status, conditions:\n%s\n%s\n%s",
		restarting.Sub(killed).Seconds(),
		pipeTimeline(p.prom, fmt.Sprintf(`docker_swarm_up{job=%q}`, pipeJob), killed, recovered),
		pipeTimeline(p.prom, fmt.Sprintf(`docker_swarm_cluster_status{job=%q} == 1`, pipeJob), killed, recovered),
		pipeTimeline(p.prom, fmt.Sprintf(`docker_swarm_cluster_condition{job=%q} == 1`, pipeJob), killed, recovered))

	// The held alerts never stopped firing in Prometheus while their series
	// were missing.
	for _, h := range held {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		series, err := p.prom.QueryRange(ctx, pipeSelector(h, "firing"), killed, recovered, time.Second)
		cancel()
		faultMust(t, err)
		var run time.Duration
		if len(series) == 1 {
			run = pipeRun(series[0].Points, time.Second)
		}
		if span := recovered.Sub(killed); run < span-2*time.Second {
			t.Errorf("%s stopped firing during the %v without quorum (it fired without a break for %v at most): the rules did not hold it",
				monitoring.LabelsKey(h), span.Round(time.Second), run)
		}
	}
	// Nothing that SwarmQuorumLost mutes was notified while it fired, the
	// KO not at all, and no held alert resolved.
	heldSet := map[string]bool{}
	for _, k := range heldKeys {
		heldSet[k] = true
	}
	for _, d := range pipeDeliveries(p.hook, killed) {
		name := d.Labels["alertname"]
		switch {
		case name == "SwarmClusterStatusKO":
			t.Errorf("notified %s %s at %s, although SwarmQuorumLost fired with it", d.Status, d.Key(), d.At.Format("15:04:05.0"))
		case heldSet[d.Key()] && d.Status == "resolved":
			t.Errorf("notified %s resolved at %s, in the middle of the outage", d.Key(), d.At.Format("15:04:05.0"))
		case p.muted.MatchString(name) && !d.At.Before(qlAt) && d.At.Before(restarting):
			t.Errorf("notified %s %s at %s while SwarmQuorumLost fired (notified at %s)", d.Status, d.Key(),
				d.At.Format("15:04:05.0"), qlAt.Format("15:04:05.0"))
		}
	}
	p.end(t, sc)
}

// waitMuted waits until Alertmanager holds each alert (matched by its
// labels) as suppressed by an inhibition.
func (p *pipeline) waitMuted(t *testing.T, am *monitoring.AlertmanagerServer, want []map[string]string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, err := am.Alerts(ctx)
		cancel()
		faultMust(t, err)
		var problems []string
		for _, w := range want {
			found := false
			for _, a := range got {
				if !(pipeMatch{Name: w["alertname"], Labels: w}).matches(a.Labels) {
					continue
				}
				found = true
				if a.Status == nil || a.Status.State != "suppressed" || len(a.Status.InhibitedBy) == 0 {
					problems = append(problems, fmt.Sprintf("%s is %+v", monitoring.LabelsKey(a.Labels), a.Status))
				}
			}
			if !found {
				problems = append(problems, monitoring.LabelsKey(w)+" is not in Alertmanager")
			}
		}
		if len(problems) == 0 {
			t.Logf("Alertmanager %s mutes %d alerts while SwarmQuorumLost fires", am.Addr, len(want))
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("Alertmanager %s does not mute what SwarmQuorumLost should: %v", am.Addr, problems)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Check 5: every dashboard query returned data in some scenario.
func (p *pipeline) panelCoverage(t *testing.T) {
	for _, q := range p.queries {
		if len(p.data[q.String()]) == 0 {
			t.Errorf("%s returned no data in any scenario:\n%s", q, q.Expr)
		}
	}
}

// Check 6: the notifications as a whole.
func (p *pipeline) notifications(t *testing.T) {
	// Every alert notified firing is notified resolved, unless its
	// condition still holds (ghost is still KO).
	deadline := time.Now().Add(90 * time.Second)
	for {
		last := map[string]pipeDelivery{}
		for _, d := range pipeDeliveries(p.hook, time.Time{}) {
			last[d.Key()] = d
		}
		var open []string
		for _, k := range pipeSortedKeys(last) {
			d := last[k]
			if d.Status == "firing" && !p.conditionNow(t, d.Labels) {
				open = append(open, k)
			}
		}
		if len(open) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("notified firing, never resolved, although their condition no longer holds: %v", open)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			alerts, err := p.prom.Alerts(ctx)
			cancel()
			for _, a := range alerts {
				t.Logf("Prometheus holds %s: %s since %s", monitoring.LabelsKey(a.Labels), a.State, a.ActiveAt.Format("15:04:05"))
			}
			for _, k := range open {
				l := last[k].Labels
				t.Logf("%s: ALERTS and condition since the start (t=0, err %v):\n%s\n%s", k, err,
					pipeTimeline(p.prom, pipeSelector(l, ""), p.start, time.Now()),
					pipeTimeline(p.prom, p.rules[l["alertname"]].Expr, p.start, time.Now()))
				if h := l["hostname"]; h != "" {
					t.Logf("state of %s seen by each instance since the start:\n%s", h,
						pipeTimeline(p.prom, fmt.Sprintf(`docker_swarm_node_state{hostname=%q} == 1`, h), p.start, time.Now()))
				}
			}
			break
		}
		time.Sleep(time.Second)
	}
	ns := p.hook.Notifications()
	var history []string
	for i, n := range ns {
		var as []string
		for _, a := range n.Alerts {
			id := a.Labels["hostname"] + a.Labels["service_name"]
			as = append(as, fmt.Sprintf("%s %s(%s) since %s", a.Status, a.Labels["alertname"], id, a.StartsAt.Format("15:04:05")))
		}
		history = append(history, fmt.Sprintf("%2d %s +%3.0fs %-15s %s", i, n.Received.Format("15:04:05.0"), n.Received.Sub(p.start).Seconds(), n.Path, strings.Join(as, ", ")))
	}
	t.Logf("the webhook received:\n  %s", strings.Join(history, "\n  "))
	type groupState struct {
		last string
		n    int
	}
	groups := map[string]*groupState{}
	episodes := map[string]map[time.Time]bool{}
	delivered := map[string][]int{} // status, alert, episode → notifications
	for i, n := range ns {
		seen := map[string]bool{}
		var state []string
		for _, a := range n.Alerts {
			if seen[a.Key()] {
				t.Errorf("notification %d lists %s twice", i, a.Key())
			}
			seen[a.Key()] = true
			if _, ok := a.Labels["instance"]; ok && a.Labels["alertname"] != "SwarmExporterCannotRead" {
				t.Errorf("notification %d: %s is per instance", i, a.Key())
			}
			state = append(state, a.Status+" "+a.Key()+" "+a.StartsAt.String())
			k := a.Status + " " + a.Key() + " since " + a.StartsAt.Format("15:04:05.000")
			delivered[k] = append(delivered[k], i)
			if a.Status == "firing" {
				if episodes[a.Key()] == nil {
					episodes[a.Key()] = map[time.Time]bool{}
				}
				episodes[a.Key()][a.StartsAt] = true
			}
		}
		if n.TruncatedAlerts > 0 {
			t.Errorf("notification %d truncated %d alerts", i, n.TruncatedAlerts)
		}
		sort.Strings(state)
		key := n.Path + " " + n.GroupKey
		g := groups[key]
		if g == nil {
			g = &groupState{}
			groups[key] = g
		}
		cur := strings.Join(state, "\n")
		if g.n > 0 && cur == g.last {
			t.Errorf("notification %d (%s) repeats the group's previous notification unchanged: delivered twice:\n%s", i, key, cur)
		}
		g.last, g.n = cur, g.n+1
	}
	// Each alert is notified firing once and resolved once per episode (the
	// repeat interval outlasts the test): never again with its group, never
	// once per Alertmanager.
	for _, k := range pipeSortedKeys(delivered) {
		if len(delivered[k]) > 1 {
			t.Errorf("notified %s %d times, in notifications %v", k, len(delivered[k]), delivered[k])
		}
	}
	var summary []string
	for _, k := range pipeSortedKeys(episodes) {
		summary = append(summary, fmt.Sprintf("%s: %d episode(s)", k, len(episodes[k])))
	}
	t.Logf("%d notifications in %d groups; alerts notified firing:\n  %s", len(ns), len(groups), strings.Join(summary, "\n  "))
}
