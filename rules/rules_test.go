// Package rules_test checks the recording rules: promtool's syntax check,
// the promtool unit tests of rules/tests, and the level:metric:operations
// naming convention. The promtool checks skip when promtool is missing,
// unless CI=true.
package rules_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
)

func recordingRules(t *testing.T) []monitoring.Rule {
	t.Helper()
	rules, err := monitoring.RecordingRules()
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

func TestPromtoolCheckRules(t *testing.T) {
	promtool := monitoring.Tool(t, "promtool")
	files, _ := monitoring.RecordingRuleFiles()
	out := monitoring.Run(t, promtool, append([]string{"check", "rules"}, files...)...)
	if strings.Contains(out, "WARNING") {
		t.Errorf("promtool check rules warns:\n%s", out)
	}
}

func TestPromtoolUnitTests(t *testing.T) {
	promtool := monitoring.Tool(t, "promtool")
	files, err := filepath.Glob(monitoring.Path("rules", "tests", "*.test.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool test file in rules/tests: %v", err)
	}
	monitoring.Run(t, promtool, append([]string{"test", "rules"}, files...)...)
}

// What no recording rule may contain: a job name or target label (kept by
// `without` and `ignoring` instead), and aggregations or matchings that
// name the labels they keep, which would drop the target labels that tell
// swarms apart.
var forbidden = map[string]*regexp.Regexp{
	"a job selector":                         regexp.MustCompile(`\bjob\s*(=|!=|=~|!~)`),
	"a target label":                         regexp.MustCompile(`\b(cluster|env|environment|region)\b`),
	"an aggregation by labels (use without)": regexp.MustCompile(`\bby\s*\(`),
	"a matching on labels (use ignoring)":    regexp.MustCompile(`\bon\s*\(`),
	"a grouping that names the kept labels":  regexp.MustCompile(`group_(left|right)\s*\(\s*[a-z]`),
}

func TestNoJobOrTargetLabel(t *testing.T) {
	for _, r := range recordingRules(t) {
		for what, re := range forbidden {
			if re.MatchString(r.Expr) {
				t.Errorf("%s: the expression has %s: %s", r.Record, what, re.FindString(r.Expr))
			}
		}
	}
}

// level:metric:operations, with the levels the rules document.
var recordName = regexp.MustCompile(`^(instance|job|node|service):(docker_swarm_[a-z0-9_]+):([a-z0-9_]+)$`)

func TestNamingConvention(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range recordingRules(t) {
		m := recordName.FindStringSubmatch(r.Record)
		if m == nil {
			t.Errorf("%s: not named level:docker_swarm_metric:operations with level instance, job, node or service", r.Record)
			continue
		}
		if seen[r.Record] {
			t.Errorf("%s: recorded twice", r.Record)
		}
		seen[r.Record] = true
		level := m[1]
		dedup := strings.Contains(r.Expr, "without (instance")
		switch level {
		case "job", "node", "service":
			// De-duplicated across exporter instances, directly or from
			// another de-duplicated series.
			if !dedup && !regexp.MustCompile(`(^|[^_a-z])(job|node|service):`).MatchString(r.Expr) {
				t.Errorf("%s: a %s-level rule must aggregate away the instance label", r.Record, level)
			}
		case "instance":
			if strings.Contains(r.Expr, "without (instance)") && !strings.Contains(r.Expr, "group_left") {
				t.Errorf("%s: an instance-level rule must keep the instance label", r.Record)
			}
		}
	}
}
