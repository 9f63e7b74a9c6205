package collector_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The same swarm gives the same exposition on Docker 20.10 and Docker 29:
// the golden files of each scenario captured on both engines agree once the
// IDs, the engine versions and the timestamps are left out (and the series
// sorted, since they are ordered by ID). In worker-down and manager-down the
// tasks' states depend on the moment of the capture (replacements in their
// restart delay), so there only the cluster's and the nodes' series are
// compared.
func TestExpositionsAgreeAcrossEngines(t *testing.T) {
	for _, sc := range []string{"healthy-3m2w", "worker-down", "manager-down", "quorum-lost", "missing-image",
		"drained-paused", "worker-node", "locked", "no-swarm"} {
		t.Run(sc, func(t *testing.T) {
			timing := sc == "worker-down" || sc == "manager-down"
			old := comparable(t, sc, timing)
			cur := comparable(t, sc+"-docker29", timing)
			if d := lineDiff(old, cur); d != "" {
				t.Errorf("20.10 (-) and 29 (+) differ:\n%s", d)
			}
		})
	}
}

var (
	idLabels       = regexp.MustCompile(`(node_id|service_id|engine_version)="[^"]*"`)
	timestampValue = regexp.MustCompile(`(?m)^([a-z_:]+_timestamp_seconds(?:\{[^}]*\})?) \S+$`)
)

// comparable returns the golden exposition of a scenario without what
// differs from one capture to the next, its series sorted; without the
// per-service series when timing says the tasks depend on the moment.
func comparable(t *testing.T, scenario string, timing bool) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", scenario+".prom"))
	if err != nil {
		t.Fatal(err)
	}
	b = idLabels.ReplaceAll(b, []byte(`$1=""`))
	b = timestampValue.ReplaceAll(b, []byte("$1 0"))
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		name := strings.TrimPrefix(strings.TrimPrefix(l, "# HELP "), "# TYPE ")
		if timing && (strings.HasPrefix(name, "docker_swarm_service") || strings.HasPrefix(name, "docker_swarm_status")) {
			continue
		}
		lines = append(lines, l)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
