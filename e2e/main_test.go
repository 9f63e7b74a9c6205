// Package e2e proves the exporter on real swarms: real dockerd processes in
// network namespaces (internal/swarmtest), real faults (killed daemons,
// drained nodes, lost quorum), and the exporter's real /metrics polled until
// the expected value or a deadline. It runs as root with SWARMTEST=1 (see
// swarmtest.RequireSwarmTest; under CI=true missing prerequisites fail).
//
// Every exporter started here reads its daemon through a filtering proxy
// that refuses and records any request outside the documented read set, so
// the whole suite also proves that the exporter only reads.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// exporterBin is the swarm_exporter binary under test, built once.
var exporterBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "swarm-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	exporterBin = filepath.Join(dir, "swarm_exporter")
	build := exec.Command(swarmtest.GoTool(), "build", "-trimpath", "-o", exporterBin, "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the exporter: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}
