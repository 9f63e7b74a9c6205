package monitoring

import (
	"path/filepath"

	"github.com/swarm-exporter/swarm_exporter/internal/testkit"
)

// Root returns the repository's root directory (see testkit.Root).
func Root() string { return testkit.Root() }

// Path returns a path inside the repository, from slash-separated elements.
func Path(elem ...string) string {
	return filepath.Join(append([]string{Root()}, elem...)...)
}

// Directories and files of the monitoring configuration.
var (
	AlertsDir     = "alerts"
	RulesDir      = "rules"
	DashboardsDir = "dashboards"
	RunbookFile   = "docs/runbook.md"
)

// AlertRuleFiles returns the alerting rule files (alerts/*.alerts.yml).
func AlertRuleFiles() ([]string, error) {
	return filepath.Glob(Path(AlertsDir, "*.alerts.yml"))
}

// RecordingRuleFiles returns the recording rule files (rules/*.rules.yml).
func RecordingRuleFiles() ([]string, error) {
	return filepath.Glob(Path(RulesDir, "*.rules.yml"))
}

// RuleFiles returns every rule file: recording rules first.
func RuleFiles() ([]string, error) {
	rec, err := RecordingRuleFiles()
	if err != nil {
		return nil, err
	}
	al, err := AlertRuleFiles()
	if err != nil {
		return nil, err
	}
	return append(rec, al...), nil
}
