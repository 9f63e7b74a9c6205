package monitoring

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
)

// Root returns the repository's root directory: the one holding go.mod,
// found from this source file's location (so that it works from any test's
// working directory).
func Root() string {
	_, file, _, ok := runtime.Caller(0)
	if ok {
		if root, err := findRoot(filepath.Dir(file)); err == nil {
			return root
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	root, err := findRoot(wd)
	if err != nil {
		panic(err)
	}
	return root
}

func findRoot(dir string) (string, error) {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above " + dir)
		}
		dir = parent
	}
}

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
