package monitoring

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	yaml "go.yaml.in/yaml/v2"
)

// RuleFile is a Prometheus rule file.
type RuleFile struct {
	Groups []RuleGroup `yaml:"groups"`
}

// RuleGroup is a group of rules.
type RuleGroup struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval,omitempty"`
	Rules    []Rule `yaml:"rules"`
}

// Rule is a recording or alerting rule.
type Rule struct {
	Record        string            `yaml:"record,omitempty"`
	Alert         string            `yaml:"alert,omitempty"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for,omitempty"`
	KeepFiringFor string            `yaml:"keep_firing_for,omitempty"`
	Labels        map[string]string `yaml:"labels,omitempty"`
	Annotations   map[string]string `yaml:"annotations,omitempty"`
}

// LoadRuleFile reads a rule file; unknown fields are an error.
func LoadRuleFile(path string) (*RuleFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f RuleFile
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// AllRules returns every rule of the shipped rule files (recording rules
// first), with the file each comes from.
func AllRules() (map[string][]Rule, error) {
	files, err := RuleFiles()
	if err != nil {
		return nil, err
	}
	out := map[string][]Rule{}
	for _, f := range files {
		rf, err := LoadRuleFile(f)
		if err != nil {
			return nil, err
		}
		for _, g := range rf.Groups {
			out[f] = append(out[f], g.Rules...)
		}
	}
	return out, nil
}

// AlertingRules returns the alerting rules of alerts/*.alerts.yml, in file
// order. A recording rule there is an error: it belongs in rules/.
func AlertingRules() ([]Rule, error) { return rulesOfKind(AlertRuleFiles, true) }

// RecordingRules returns the recording rules of rules/*.rules.yml, in file
// order. An alerting rule there is an error: it belongs in alerts/.
func RecordingRules() ([]Rule, error) { return rulesOfKind(RecordingRuleFiles, false) }

func rulesOfKind(files func() ([]string, error), alerting bool) ([]Rule, error) {
	paths, err := files()
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no rule file")
	}
	var out []Rule
	for _, f := range paths {
		rf, err := LoadRuleFile(f)
		if err != nil {
			return nil, err
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				switch {
				case alerting && r.Record != "":
					return nil, fmt.Errorf("%s: recording rule %s belongs in %s/", f, r.Record, RulesDir)
				case !alerting && r.Alert != "":
					return nil, fmt.Errorf("%s: alert %s belongs in %s/", f, r.Alert, AlertsDir)
				}
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// RecordedNames returns the names of the series the recording rules record.
func RecordedNames() (map[string]bool, error) {
	all, err := AllRules()
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, rules := range all {
		for _, r := range rules {
			if r.Record != "" {
				names[r.Record] = true
			}
		}
	}
	return names, nil
}

// DurationFunc maps the duration of a for: or keep_firing_for: field
// (key) to the one to use.
type DurationFunc func(key string, d time.Duration) time.Duration

// Scale returns a DurationFunc that multiplies every duration by factor,
// rounded down to whole seconds, and never below min (nor above the
// original).
func Scale(factor float64, min time.Duration) DurationFunc {
	return func(_ string, d time.Duration) time.Duration {
		s := time.Duration(float64(d) * factor).Truncate(time.Second)
		if s < min {
			s = min
		}
		if s > d {
			s = d
		}
		return s
	}
}

// RuleDurationFunc is a DurationFunc that is also told the name of the
// rule (the alert) whose for: or keep_firing_for: it maps, so that a test
// can shorten each alert by its own measure.
type RuleDurationFunc func(rule, key string, d time.Duration) time.Duration

var (
	durationLine = regexp.MustCompile(`^(\s*)(for|keep_firing_for):(\s*)(\S+)(\s*)$`)
	ruleNameLine = regexp.MustCompile(`^\s*-?\s*(?:alert|record):\s*(\S+)\s*$`)
)

// RewriteDurations returns a rule file's text with the for: and
// keep_firing_for: durations replaced by fn's, and nothing else changed.
func RewriteDurations(text []byte, fn DurationFunc) ([]byte, error) {
	return RewriteRuleDurations(text, func(_, key string, d time.Duration) time.Duration { return fn(key, d) })
}

// RewriteRuleDurations is RewriteDurations with the rule's name passed to
// fn: the name of the last "alert:" (or "record:") line above the duration.
func RewriteRuleDurations(text []byte, fn RuleDurationFunc) ([]byte, error) {
	lines := bytes.Split(text, []byte("\n"))
	rule := ""
	for i, line := range lines {
		if m := ruleNameLine.FindSubmatch(line); m != nil {
			rule = string(m[1])
			continue
		}
		m := durationLine.FindSubmatch(line)
		if m == nil {
			continue
		}
		d, err := model.ParseDuration(string(m[4]))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		nd := model.Duration(fn(rule, string(m[2]), time.Duration(d)))
		lines[i] = []byte(fmt.Sprintf("%s%s:%s%s%s", m[1], m[2], m[3], nd, m[5]))
	}
	return bytes.Join(lines, []byte("\n")), nil
}

// CheckOnlyDurationsDiffer fails unless copy is original with only the
// values of for: and keep_firing_for: lines changed.
func CheckOnlyDurationsDiffer(original, copy []byte) error {
	a := strings.Split(string(original), "\n")
	b := strings.Split(string(copy), "\n")
	if len(a) != len(b) {
		return fmt.Errorf("the copy has %d lines, the original %d", len(b), len(a))
	}
	for i := range a {
		if a[i] == b[i] {
			continue
		}
		ma := durationLine.FindStringSubmatch(a[i])
		mb := durationLine.FindStringSubmatch(b[i])
		if ma == nil || mb == nil || ma[1] != mb[1] || ma[2] != mb[2] {
			return fmt.Errorf("line %d differs beyond a for:/keep_firing_for: duration:\n- %s\n+ %s", i+1, a[i], b[i])
		}
		if _, err := model.ParseDuration(mb[4]); err != nil {
			return fmt.Errorf("line %d: %w", i+1, err)
		}
	}
	return nil
}

// ConfigOptions say how to adapt alerts/prometheus.yml for a test.
type ConfigOptions struct {
	// Job is the name of the exporter's scrape job; empty means
	// DefaultJob. The rules assume no job name: a test may pick any.
	Job string
	// Targets are the exporter's targets (host:port), replacing the
	// example's service discovery.
	Targets []string
	// TargetLabels are added to every target of Targets (e.g. cluster).
	TargetLabels map[string]string
	// TargetGroups are more targets of the same job, each group with its
	// own labels: several swarms scraped by one Prometheus.
	TargetGroups []TargetGroup
	// Alertmanagers are host:port of Alertmanagers; none removes the
	// alerting section.
	Alertmanagers []string
	// ScrapeInterval and EvaluationInterval replace the global ones when
	// not zero.
	ScrapeInterval, EvaluationInterval time.Duration
	// Durations, when not nil, rewrites the rules' for: and
	// keep_firing_for: durations (see Scale).
	Durations DurationFunc
	// RuleDurations, when not nil, does the same knowing each alert's
	// name; it takes precedence over Durations.
	RuleDurations RuleDurationFunc
}

// TargetGroup is a static_configs entry: targets and the labels they share.
type TargetGroup struct {
	Targets []string
	Labels  map[string]string
}

// DefaultJob is the scrape job's name in alerts/prometheus.yml.
const DefaultJob = "swarm_exporter"

// WriteConfig lays out a copy of alerts/ and rules/ in dir, keeping their
// relative layout so that the copied dir/alerts/prometheus.yml loads the
// copied rule files, and returns the path of that prometheus.yml. The rule
// files are copied with their durations rewritten by opts.Durations, and
// the copy is checked to differ from the shipped files in those durations
// only. Start Prometheus on it with StartPrometheus.
func WriteConfig(dir string, opts ConfigOptions) (string, error) {
	files, err := RuleFiles()
	if err != nil {
		return "", err
	}
	for _, f := range files {
		rel, err := filepath.Rel(Root(), f)
		if err != nil {
			return "", err
		}
		orig, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		out := orig
		fn := opts.RuleDurations
		if fn == nil && opts.Durations != nil {
			fn = func(_, key string, d time.Duration) time.Duration { return opts.Durations(key, d) }
		}
		if fn != nil {
			if out, err = RewriteRuleDurations(orig, fn); err != nil {
				return "", fmt.Errorf("%s: %w", rel, err)
			}
			if err := CheckOnlyDurationsDiffer(orig, out); err != nil {
				return "", fmt.Errorf("%s: %w", rel, err)
			}
		}
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(dst, out, 0o644); err != nil {
			return "", err
		}
	}

	b, err := os.ReadFile(Path(AlertsDir, "prometheus.yml"))
	if err != nil {
		return "", err
	}
	var cfg yaml.MapSlice
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return "", err
	}
	global := yaml.MapSlice{}
	if g, ok := get(cfg, "global").(yaml.MapSlice); ok {
		global = g
	}
	if opts.ScrapeInterval > 0 {
		global = set(global, "scrape_interval", model.Duration(opts.ScrapeInterval).String())
		if to, ok := get(global, "scrape_timeout").(string); ok {
			if d, err := model.ParseDuration(to); err == nil && time.Duration(d) > opts.ScrapeInterval {
				global = set(global, "scrape_timeout", model.Duration(opts.ScrapeInterval).String())
			}
		}
	}
	if opts.EvaluationInterval > 0 {
		global = set(global, "evaluation_interval", model.Duration(opts.EvaluationInterval).String())
	}
	cfg = set(cfg, "global", global)
	if len(opts.Alertmanagers) > 0 {
		cfg = set(cfg, "alerting", yaml.MapSlice{{Key: "alertmanagers", Value: []any{
			yaml.MapSlice{{Key: "static_configs", Value: []any{yaml.MapSlice{{Key: "targets", Value: opts.Alertmanagers}}}}},
		}}})
	} else {
		cfg = del(cfg, "alerting")
	}
	var statics []any
	for _, g := range append([]TargetGroup{{Targets: opts.Targets, Labels: opts.TargetLabels}}, opts.TargetGroups...) {
		if len(g.Targets) == 0 {
			continue
		}
		static := yaml.MapSlice{{Key: "targets", Value: g.Targets}}
		if len(g.Labels) > 0 {
			static = append(static, yaml.MapItem{Key: "labels", Value: g.Labels})
		}
		statics = append(statics, static)
	}
	job := opts.Job
	if job == "" {
		job = DefaultJob
	}
	cfg = set(cfg, "scrape_configs", []any{yaml.MapSlice{
		{Key: "job_name", Value: job},
		{Key: "static_configs", Value: statics},
	}})
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, AlertsDir, "prometheus.yml")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, out, 0o644)
}

func get(m yaml.MapSlice, key string) any {
	for _, it := range m {
		if it.Key == key {
			return it.Value
		}
	}
	return nil
}

func set(m yaml.MapSlice, key string, v any) yaml.MapSlice {
	for i, it := range m {
		if it.Key == key {
			m[i].Value = v
			return m
		}
	}
	return append(m, yaml.MapItem{Key: key, Value: v})
}

func del(m yaml.MapSlice, key string) yaml.MapSlice {
	out := m[:0:0]
	for _, it := range m {
		if it.Key != key {
			out = append(out, it)
		}
	}
	return out
}
