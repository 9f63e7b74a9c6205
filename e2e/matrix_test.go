package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	yaml "go.yaml.in/yaml/v2"

	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// TestAlertMatrix proves what pages when, end to end: real swarms, the
// exporters deployed as deploy/exporter.yml runs them, the shipped rules on
// a real Prometheus, the shipped alertmanager.yml on a real Alertmanager,
// and a webhook that records every notification. Each row of the matrix is
// a real event on a real swarm and the exact notifications it must
// produce, taken from the runbook's "What pages when" table (see
// matrix_runbook_test.go): alert, severity, object (swarm, node, service or
// exporter instance), once firing and once resolved, within a bound from
// the fault to the first notification and from the swarm healing to the
// resolved one (2 minutes). Whatever else is notified fails the row. At the
// end the matrix is logged as a table (go test -v shows it).
//
// The pipeline. One Prometheus scrapes two swarms under the job "matrix"
// (the rules must not depend on the job's name), each target with a
// cluster label: a 3-manager, 2-worker swarm of Debian's Docker 20.10
// (cluster "swarm-20.10") and one of Docker 29 (cluster "swarm-29", built
// by `make engine`). Each swarm has one exporter per manager, run on the
// host against its manager's socket through the read-only proxy of
// proxy_test.go, with the flags of deploy/exporter.yml (read from the file,
// so that they cannot drift; only --read.max-age is scaled to the shorter
// scrape interval, see mxDeployFlags). A lane registers its exporters as
// targets (file_sd) once its swarm is up. A manager's exporter dies and
// comes back with its node, as a task of the global service does; on a
// locked manager it keeps running, as one run outside the swarm's tasks
// does (a task would not start there).
//
// What differs from the shipped configuration, and why:
//   - scrape_interval and evaluation_interval are 2 s instead of 15 s, so
//     that detection adds seconds, not tens of seconds, to each row;
//   - Alertmanager's group_wait is 1 s and group_interval 2 s (30 s and 5 m
//     shipped), so that a notification follows its alert at once, and the
//     repeat interval is 6 h: a notification repeated within the test is a
//     duplicate;
//   - for: durations up to 2 minutes are kept as shipped; above that, the
//     excess is divided by 5 (5m becomes 2m36s, 10m 3m36s), but a for:
//     longer than a window its condition counts over stays longer than
//     the window by a minute (SwarmServiceCrashLooping's 15m over a 5m rate
//     becomes 6m), and a longer shipped for: stays longer in the copy (see
//     mxForCopy). So every alert that a blip could raise (an election, a
//     node restart, a scrape that fails once) keeps its shipped for:, one
//     burst of task replacements fires no crash loop, the rules' ranking
//     of the alerts of one object (which fires first) holds, and the
//     matrix fits in make test's time (docs/testing.md). A shorter for: only makes an alert
//     fire sooner: a row that expects no page holds its state longer than
//     the copy's for: of every alert it names as one that could fire
//     (mxRow.CouldFire), so the shipped rules would not page either. The
//     expressions, their windows and keep_firing_for: are as shipped.
//   - nothing else: monitoring.WriteConfig and WriteAlertmanagerConfig
//     check that the copies differ from the shipped files in those values
//     only.
//
// Rows. Each lane runs its steps one after the other, the two lanes at
// the same time; a step is one row, or several rows about different
// services run at once. Each row starts on a quiet cluster (no alert of
// it pending or firing, nor held by Alertmanager), injects its fault,
// holds it until every expected alert was notified and every alert that
// went pending has fired or cleared (and at least the for: of what it
// names as could fire), heals the swarm (timed when the harness sees it
// whole again), and the step ends once the cluster is quiet again.
// Notifications are told apart by their cluster label and belong to the
// step during which their alert started; a notification for no lane's
// cluster, or outside a lane's steps (a lane that is done keeps its swarm
// up and watched until the other is done), fails the test. The services
// run on nodes that no row of their lane faults, so that node faults
// replace no task (see mxLanes).
//
// Also checked: every dashboard panel query runs against the real
// Prometheus at the peak of each row and had data in some row, and one
// that is not about the instances returns no series per instance nor two
// series for one object; every dashboard variable finds values; every
// notification is routed to the receiver that amtool finds for its labels
// in the copied alertmanager.yml, keeps the target labels, carries a
// rendered summary, description and runbook_url naming its node or
// service, and no alert episode is notified twice.
//
// SWARMTEST_ENGINE=20.10 or 29 runs that engine's lane only, as it runs
// the other real-swarm tests on that engine only. Run one lane or one row
// with -run, e.g. -run 'TestAlertMatrix$/29' or
// -run 'TestAlertMatrix$/20.10/2_services/crash'. SWARM_MATRIX_BREAK breaks
// the pipeline on purpose to show that the matrix catches it (comma
// separated): no-inhibit (the copy of alertmanager.yml loses its inhibit
// rules), two-alertmanagers (Prometheus notifies two unclustered
// Alertmanagers: every notification twice).
func TestAlertMatrix(t *testing.T) {
	swarmtest.RequireSwarmTest(t)
	m := mxSetup(t)
	// The lanes run at once: subtests started from goroutines, not
	// t.Parallel, whose slots (-parallel, the number of CPUs by default)
	// would queue them.
	lanes := mxLanes()
	m.lanesLeft = len(lanes)
	engines := swarmtest.EngineNames()
	mxAtOnce(lanes, func(spec mxLaneSpec) {
		ran := false
		t.Run(spec.Name, func(t *testing.T) {
			ran = true
			if !slices.Contains(engines, spec.Engine) {
				m.laneDone()
				t.Skipf("%s=%s: the lane of Docker %s does not run", swarmtest.EngineEnv, os.Getenv(swarmtest.EngineEnv), spec.Engine)
			}
			m.runLane(t, spec)
		})
		if !ran { // not selected by -run
			m.laneDone()
		}
	})
	m.checkAll(t)
	m.report(t)
}

// laneDone says that a lane ran its steps (or stopped); once per lane.
func (m *matrix) laneDone() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lanesLeft--
	m.lanesCond.Broadcast()
}

// waitLanes waits until every lane ran its steps.
func (m *matrix) waitLanes() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.lanesLeft > 0 {
		m.lanesCond.Wait()
	}
}

// mxAtOnce calls f for each item at once and waits for all.
func mxAtOnce[T any](items []T, f func(T)) {
	var wg sync.WaitGroup
	for _, it := range items {
		wg.Go(func() { f(it) })
	}
	wg.Wait()
}

// The matrix's timing (see TestAlertMatrix).
const (
	mxJob            = "matrix"
	mxScrape         = 2 * time.Second
	mxEval           = 2 * time.Second
	mxGroupWait      = time.Second
	mxGroupInterval  = 2 * time.Second
	mxRepeatInterval = 6 * time.Hour
	mxForKept        = 2 * time.Minute
	mxForDivisor     = 5
	// mxResolveBound is the longest a resolution may take after the swarm
	// healed.
	mxResolveBound = 2 * time.Minute
	// mxDetect is added to an alert's for: to bound the time from the
	// fault to its first notification by default: the swarm noticing the
	// fault (a node is seen down 10-15 s after its death), a scrape, an
	// evaluation, group_wait.
	mxDetect = 75 * time.Second
)

// mxFor shortens a shipped for: d: kept up to mxForKept, the excess
// divided by mxForDivisor.
func mxFor(d time.Duration) time.Duration {
	if d <= mxForKept {
		return d
	}
	return mxForKept + ((d - mxForKept) / mxForDivisor).Truncate(time.Second)
}

// mxForGap is the least difference between the copy's for: of two alerts
// whose shipped for: differ: several evaluations, so that the one that
// fires first is firing (in ALERTS) when the other would.
const mxForGap = 10 * time.Second

// mxForCopy returns the for: of each alert in the test's copy. It is
// mxFor's, with two corrections that keep what the shipped durations mean:
//   - an alert whose condition counts over a window (a [5m] in its
//     expression or in a recording rule it reads) and whose shipped for:
//     is longer than the window keeps a for: longer than the window by a
//     minute: one burst, which holds such a condition for one window, must
//     not fire the copy when it does not fire the shipped rule;
//   - the order: an alert whose shipped for: is longer than another's
//     fires at least mxForGap later in the copy too (the rules rank the
//     alerts of one object by which fires first).
func mxForCopy(alerts, recording []monitoring.Rule) (map[string]time.Duration, error) {
	exprs := map[string][]string{}
	for _, r := range recording {
		exprs[r.Record] = append(exprs[r.Record], r.Expr)
	}
	type item struct {
		name          string
		shipped, copy time.Duration
	}
	var items []item
	for _, r := range alerts {
		f, err := mxParseDuration(r.For)
		if err != nil {
			return nil, fmt.Errorf("%s: for: %w", r.Alert, err)
		}
		c := mxFor(f)
		w, err := mxWindow(r.Expr, exprs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.Alert, err)
		}
		if f > w && c < w+time.Minute {
			c = min(f, w+time.Minute)
		}
		items = append(items, item{r.Alert, f, c})
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].shipped < items[j].shipped })
	out := map[string]time.Duration{}
	var below, group time.Duration // the longest copy of the shorter shipped for:, of this one
	for i := range items {
		if i > 0 && items[i].shipped > items[i-1].shipped {
			below = max(below, group)
			group = 0
		}
		if i > 0 && items[i].shipped > 0 && below > 0 {
			items[i].copy = max(items[i].copy, below+mxForGap)
		}
		group = max(group, items[i].copy)
		out[items[i].name] = items[i].copy
	}
	return out, nil
}

var mxRange = regexp.MustCompile(`\[([0-9]+[smhdwy](?:[0-9]+[smhdwy])*)(?::[^\]]*)?\]`)

// mxWindow returns the longest range ([5m]) in expr and in the
// expressions of the recording rules it names.
func mxWindow(expr string, recording map[string][]string) (time.Duration, error) {
	all := []string{expr}
	names, err := monitoring.MetricNames(expr)
	if err != nil {
		return 0, err
	}
	for _, n := range names {
		all = append(all, recording[n]...)
	}
	var w time.Duration
	for _, e := range all {
		for _, m := range mxRange.FindAllStringSubmatch(e, -1) {
			if d, err := mxParseDuration(m[1]); err == nil {
				w = max(w, d)
			}
		}
	}
	return w, nil
}

// matrix is the pipeline the lanes share.
type matrix struct {
	prom   *monitoring.Prometheus
	hook   *monitoring.Webhook
	ams    []*monitoring.AlertmanagerServer
	amPath string
	amtool string
	sdDir  string
	rules  map[string]monitoring.Rule // shipped alerts by name
	forOf  map[string]time.Duration   // the copy's for: by alert
	flags  []string                   // the exporters' flags from deploy/exporter.yml
	// runbook is the runbook's What pages when table: event → notified.
	runbook map[string][]mxNotified
	start   time.Time

	queries []monitoring.PanelQuery

	mu        sync.Mutex
	lanesLeft int                // lanes still running their steps
	lanesCond *sync.Cond         // signalled as lanesLeft falls
	lanes     map[string]*mxLane // by cluster
	laneOrder []string
	panelData map[string][]string // query → rows in which it returned data
	mutes     *mxMuteLog
}

func mxBreak(name string) bool {
	for _, b := range strings.Split(os.Getenv("SWARM_MATRIX_BREAK"), ",") {
		if strings.TrimSpace(b) == name {
			return true
		}
	}
	return false
}

func mxSetup(t *testing.T) *matrix {
	monitoring.Tool(t, "prometheus")
	monitoring.Alertmanager(t)
	m := &matrix{amtool: monitoring.Tool(t, "amtool"), start: time.Now(), lanes: map[string]*mxLane{},
		panelData: map[string][]string{}, rules: map[string]monitoring.Rule{}}
	m.lanesCond = sync.NewCond(&m.mu)
	var alerts, recording []monitoring.Rule
	for _, files := range []func() ([]string, error){monitoring.AlertRuleFiles, monitoring.RecordingRuleFiles} {
		paths, err := files()
		faultMust(t, err)
		for _, f := range paths {
			rf, err := monitoring.LoadRuleFile(f)
			faultMust(t, err)
			for _, g := range rf.Groups {
				for _, r := range g.Rules {
					if r.Alert != "" {
						m.rules[r.Alert] = r
						alerts = append(alerts, r)
					} else {
						recording = append(recording, r)
					}
				}
			}
		}
	}
	var err error
	m.forOf, err = mxForCopy(alerts, recording)
	faultMust(t, err)
	m.runbook, err = mxRunbookEvents()
	faultMust(t, err)
	m.flags, err = mxDeployFlags(mxScrape)
	faultMust(t, err)
	t.Logf("exporter flags from deploy/exporter.yml: %s", strings.Join(m.flags, " "))

	dir := t.TempDir()
	m.hook = monitoring.StartWebhook(t)
	m.amPath, err = monitoring.WriteAlertmanagerConfig(dir, monitoring.AlertmanagerOptions{
		Webhook:   func(receiver, _ string) string { return m.hook.URL + "/" + receiver },
		GroupWait: mxGroupWait, GroupInterval: mxGroupInterval, RepeatInterval: mxRepeatInterval,
	})
	faultMust(t, err)
	if mxBreak("no-inhibit") {
		mxDropInhibitRules(t, m.amPath)
	}
	monitoring.Run(t, m.amtool, "check-config", m.amPath)
	m.ams = append(m.ams, monitoring.StartAlertmanager(t, m.amPath))
	if mxBreak("two-alertmanagers") {
		m.ams = append(m.ams, monitoring.StartAlertmanager(t, m.amPath))
	}
	var amAddrs []string
	for _, am := range m.ams {
		amAddrs = append(amAddrs, am.Addr)
	}

	var durErr error
	promPath, err := monitoring.WriteConfig(dir, monitoring.ConfigOptions{
		Alertmanagers: amAddrs, ScrapeInterval: mxScrape, EvaluationInterval: mxEval,
		RuleDurations: func(rule, key string, d time.Duration) time.Duration {
			switch key {
			case "for":
				if c, ok := m.forOf[rule]; ok {
					return c
				}
				durErr = fmt.Errorf("%s: a for: that is not an alert's", rule)
				return d
			case "keep_firing_for":
				return d
			}
			durErr = fmt.Errorf("%s: unexpected duration key %s", rule, key)
			return d
		},
	})
	faultMust(t, err)
	faultMust(t, durErr)
	m.sdDir = filepath.Join(dir, "targets")
	faultMust(t, os.MkdirAll(m.sdDir, 0o755))
	faultMust(t, mxFileSD(promPath, m.sdDir))
	monitoring.Run(t, monitoring.Tool(t, "promtool"), "check", "config", promPath)
	m.prom = monitoring.StartPrometheus(t, promPath)

	m.queries, err = monitoring.PanelQueries(mxVars())
	faultMust(t, err)
	m.mutes = startMuteLog(t, m.ams)
	var fors []string
	for _, name := range mxSortedKeys(m.rules) {
		fors = append(fors, fmt.Sprintf("%s %s→%s", name, m.rules[name].For, model.Duration(m.forOf[name])))
	}
	t.Logf("pipeline up after %v; for: of the copy: %s", time.Since(m.start).Round(time.Second), strings.Join(fors, ", "))
	return m
}

// mxSortedKeys returns a map's keys, sorted.
func mxSortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// mxVars are the dashboards' variables when the matrix runs their queries:
// every job, cluster and stack.
func mxVars() map[string]string {
	return map[string]string{"job": mxJob, "cluster": ".+", "stack": ".*"}
}

func mxParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := model.ParseDuration(s)
	return time.Duration(d), err
}

// mxFileSD replaces the scrape configuration of the copied prometheus.yml
// with one job, mxJob, whose targets the lanes write to dir/*.json.
func mxFileSD(promPath, dir string) error {
	b, err := os.ReadFile(promPath)
	if err != nil {
		return err
	}
	var cfg yaml.MapSlice
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return err
	}
	job := yaml.MapSlice{
		{Key: "job_name", Value: mxJob},
		{Key: "file_sd_configs", Value: []any{yaml.MapSlice{
			{Key: "files", Value: []string{filepath.Join(dir, "*.json")}},
			{Key: "refresh_interval", Value: "5s"},
		}}},
	}
	found := false
	for i, it := range cfg {
		if it.Key == "scrape_configs" {
			cfg[i].Value = []any{job}
			found = true
		}
	}
	if !found {
		return fmt.Errorf("%s has no scrape_configs", promPath)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(promPath, out, 0o644)
}

// mxDropInhibitRules removes every inhibit rule from a copy of
// alertmanager.yml (SWARM_MATRIX_BREAK=no-inhibit).
func mxDropInhibitRules(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	faultMust(t, err)
	var cfg yaml.MapSlice
	faultMust(t, yaml.Unmarshal(b, &cfg))
	var kept yaml.MapSlice
	for _, it := range cfg {
		if it.Key != "inhibit_rules" {
			kept = append(kept, it)
		}
	}
	out, err := yaml.Marshal(kept)
	faultMust(t, err)
	faultMust(t, os.WriteFile(path, out, 0o644))
	t.Log("SWARM_MATRIX_BREAK=no-inhibit: the copy of alertmanager.yml has no inhibit rule")
}

// mxDeployFlags returns the exporter's command line in deploy/exporter.yml,
// with --read.max-age scaled from the shipped scrape interval
// (deploy/prometheus.yml) to scrape: it stays "just under the scrape
// interval" in the same proportion.
func mxDeployFlags(scrape time.Duration) ([]string, error) {
	b, err := os.ReadFile(monitoring.Path("deploy", "exporter.yml"))
	if err != nil {
		return nil, err
	}
	var stack struct {
		Services map[string]struct {
			Command []string `yaml:"command"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &stack); err != nil {
		return nil, err
	}
	svc, ok := stack.Services["swarm-exporter"]
	if !ok {
		return nil, fmt.Errorf("deploy/exporter.yml has no swarm-exporter service")
	}
	b, err = os.ReadFile(monitoring.Path("deploy", "prometheus.yml"))
	if err != nil {
		return nil, err
	}
	var prom struct {
		Global struct {
			ScrapeInterval string `yaml:"scrape_interval"`
		} `yaml:"global"`
	}
	if err := yaml.Unmarshal(b, &prom); err != nil {
		return nil, err
	}
	shipped, err := mxParseDuration(prom.Global.ScrapeInterval)
	if err != nil || shipped <= 0 {
		return nil, fmt.Errorf("deploy/prometheus.yml: scrape_interval %q: %v", prom.Global.ScrapeInterval, err)
	}
	var out []string
	for _, f := range svc.Command {
		name, value, _ := strings.Cut(f, "=")
		switch name {
		case "--web.listen-address", "--docker.host":
			return nil, fmt.Errorf("deploy/exporter.yml sets %s, which the matrix sets per instance", name)
		case "--read.max-age":
			d, err := mxParseDuration(value)
			if err != nil {
				return nil, fmt.Errorf("deploy/exporter.yml: %s: %w", f, err)
			}
			scaled := time.Duration(float64(d) * float64(scrape) / float64(shipped)).Truncate(time.Millisecond)
			if scaled <= 0 || scaled >= scrape {
				return nil, fmt.Errorf("deploy/exporter.yml: %s scales to %v for a scrape interval of %v", f, scaled, scrape)
			}
			f = name + "=" + scaled.String()
		}
		out = append(out, f)
	}
	return out, nil
}
