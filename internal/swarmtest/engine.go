package swarmtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Engine is the Docker engine a node runs: a dockerd binary and the
// directory of the helpers it needs. Debian's containerd runs under every
// engine; the docker CLI the harness drives every engine with is Debian's
// 20.10 (/usr/bin/docker), which talks Engine API 1.41 to both.
type Engine struct {
	// Name is what tests and logs call it: "20.10" or "29".
	Name string
	// Version is the version the daemon reports (`dockerd --version`,
	// /info's ServerVersion), e.g. "20.10.24+dfsg1" or "29.5.2".
	Version string
	// Dockerd is the daemon binary.
	Dockerd string
	// BinDir, when not empty, comes first in the daemon's PATH. It holds
	// the engine's own runc: containerd's shim looks runc up there, and
	// Debian's runc 1.1.5 fails every container of Docker 29.
	BinDir string
}

// Names of the engines the harness knows.
const (
	// EngineDebian is Debian 12's docker.io 20.10 (Engine API 1.41), the
	// default engine.
	EngineDebian = "20.10"
	// EngineCurrent is Docker 29 (Engine API 1.54) with runc 1.4.4, built
	// from Go modules by scripts/build-engine.sh into a cache outside the
	// repository (`make engine`).
	EngineCurrent = "29"
)

// EngineEnv names the environment variable that picks the engine of every
// swarm whose Options leave Engine unset ("20.10" or "29"), and the only
// engine of the tests that run on every engine (see Engines). Unset means
// 20.10 for the former and both engines for the latter.
const EngineEnv = "SWARMTEST_ENGINE"

// String returns the engine's name.
func (e Engine) String() string { return e.Name }

func (e Engine) isZero() bool { return e.Dockerd == "" }

var debianVersion = sync.OnceValue(func() string {
	out, err := exec.Command(DockerdPath, "--version").Output()
	if v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "Docker version "); err == nil && ok {
		v, _, _ = strings.Cut(v, ",")
		return v
	}
	return EngineDebian
})

// DebianEngine returns Debian's docker.io 20.10 (/usr/sbin/dockerd and the
// system's runc).
func DebianEngine() Engine {
	return Engine{Name: EngineDebian, Version: debianVersion(), Dockerd: DockerdPath}
}

var current struct {
	once sync.Once
	eng  Engine
	err  error
}

// CurrentEngine returns Docker 29 as scripts/build-engine.sh built it into
// its cache, or an error that says how to build it. It never builds.
func CurrentEngine() (Engine, error) {
	current.once.Do(func() { current.eng, current.err = findCurrentEngine() })
	return current.eng, current.err
}

func findCurrentEngine() (Engine, error) {
	script, err := buildEngineScript()
	if err != nil {
		return Engine{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", script, "-print").Output()
	if err != nil {
		return Engine{}, fmt.Errorf("swarmtest: %s -print: %w", script, err)
	}
	dir := strings.TrimSpace(string(out))
	hint := fmt.Sprintf("build it once with `make engine` (or %s, as root; about 6 minutes)", script)
	for _, f := range []string{"STAMP", "dockerd", "runc"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return Engine{}, fmt.Errorf("swarmtest: engine %s is not built in %s: %w; %s", EngineCurrent, dir, err, hint)
		}
	}
	// The stamp's third line is `dockerd --version`: "Docker version
	// 29.5.2, build 568f755".
	stamp, err := os.ReadFile(filepath.Join(dir, "STAMP"))
	if err != nil {
		return Engine{}, err
	}
	version := ""
	for _, l := range strings.Split(string(stamp), "\n") {
		if v, ok := strings.CutPrefix(l, "Docker version "); ok {
			version, _, _ = strings.Cut(v, ",")
		}
	}
	if version == "" || !strings.HasPrefix(version, EngineCurrent+".") {
		return Engine{}, fmt.Errorf("swarmtest: %s/STAMP names no Docker %s version: %q; %s", dir, EngineCurrent, stamp, hint)
	}
	return Engine{Name: EngineCurrent, Version: version, Dockerd: filepath.Join(dir, "dockerd"), BinDir: dir}, nil
}

// buildEngineScript returns the path of scripts/build-engine.sh, found
// from this file's location like the workload's source.
func buildEngineScript() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("swarmtest: cannot locate scripts/build-engine.sh")
	}
	p := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "build-engine.sh")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("swarmtest: %w", err)
	}
	return filepath.Clean(p), nil
}

// LookupEngine returns the engine called name: "20.10" (also "debian") or
// "29" (also "current").
func LookupEngine(name string) (Engine, error) {
	switch strings.TrimSpace(name) {
	case EngineDebian, "debian":
		return DebianEngine(), nil
	case EngineCurrent, "current":
		return CurrentEngine()
	}
	return Engine{}, fmt.Errorf("swarmtest: unknown engine %q (want %s or %s)", name, EngineDebian, EngineCurrent)
}

// DefaultEngine returns the engine SWARMTEST_ENGINE names, or 20.10 when it
// is unset.
func DefaultEngine() (Engine, error) {
	if name := os.Getenv(EngineEnv); name != "" {
		return LookupEngine(name)
	}
	return DebianEngine(), nil
}

// EngineNames returns the names of the engines that tests meant to run on
// every engine run on: the one SWARMTEST_ENGINE names, or both.
func EngineNames() []string {
	if name := os.Getenv(EngineEnv); name != "" {
		return []string{strings.TrimSpace(name)}
	}
	return []string{EngineDebian, EngineCurrent}
}
