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
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/testkit"
)

// workloadSourceDir is ./workload beside this file.
func workloadSourceDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("swarmtest: cannot locate the workload source")
	}
	dir := filepath.Join(filepath.Dir(file), "workload")
	if _, err := os.Stat(filepath.Join(dir, "main.go")); err != nil {
		return "", fmt.Errorf("swarmtest: workload source: %w", err)
	}
	return dir, nil
}

// GoTool returns the go command to build with (see testkit.GoTool).
func GoTool() string { return testkit.GoTool() }

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// BuildStatic builds the Go main package in srcDir as a static binary
// (CGO_ENABLED=0, -trimpath, stripped) at out.
func BuildStatic(ctx context.Context, srcDir, out string) error {
	cmd := exec.CommandContext(ctx, GoTool(), "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = srcDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("swarmtest: go build %s: %w: %s", srcDir, err, b)
	}
	return nil
}

// loadWorkloadImage builds WorkloadImage on the first node and loads it on
// every other node.
func (s *Swarm) loadWorkloadImage(ctx context.Context) error {
	t0 := time.Now()
	src, err := workloadSourceDir()
	if err != nil {
		return err
	}
	ctxDir := filepath.Join(s.dir, "build", "workload")
	if err := os.MkdirAll(ctxDir, 0o755); err != nil {
		return err
	}
	if err := BuildStatic(ctx, src, filepath.Join(ctxDir, "workload")); err != nil {
		return err
	}
	df := "FROM scratch\nCOPY workload /workload\nENTRYPOINT [\"/workload\"]\n"
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return err
	}
	if err := s.BuildImage(ctx, ctxDir, WorkloadImage); err != nil {
		return err
	}
	s.opts.Logf("swarmtest: %s on every node after %v", WorkloadImage, time.Since(t0).Round(time.Millisecond))
	return nil
}

// BuildImage builds the Docker build context dir as tag with the classic
// builder (DOCKER_BUILDKIT=0) on the first node, saves it to a tarball that
// is cached for the rest of the run, and loads it on every other running
// node (nodes added later get it too, see AddNode).
func (s *Swarm) BuildImage(ctx context.Context, dir, tag string) error {
	nodes := s.Nodes()
	if len(nodes) == 0 {
		return errors.New("swarmtest: no node")
	}
	builder := nodes[0]
	for _, n := range nodes {
		if n.Running() {
			builder = n
			break
		}
	}
	if _, err := builder.DockerContext(ctx, nil, "build", "-q", "-t", tag, dir); err != nil {
		return err
	}
	tar := filepath.Join(s.dir, "images", strings.NewReplacer("/", "_", ":", "_").Replace(tag)+".tar")
	if err := os.MkdirAll(filepath.Dir(tar), 0o755); err != nil {
		return err
	}
	if _, err := builder.DockerContext(ctx, nil, "save", "-o", tar, tag); err != nil {
		return err
	}
	s.mu.Lock()
	s.images[tag] = tar
	s.mu.Unlock()
	var others []*Node
	for _, n := range nodes {
		if n != builder && n.Running() {
			others = append(others, n)
		}
	}
	return parallel(others, func(n *Node) error { return n.LoadImage(tar) })
}

// LoadImage runs `docker load -i tarball` on every running node.
func (s *Swarm) LoadImage(tarball string) error {
	var nodes []*Node
	for _, n := range s.Nodes() {
		if n.Running() {
			nodes = append(nodes, n)
		}
	}
	return parallel(nodes, func(n *Node) error { return n.LoadImage(tarball) })
}

// LoadImage runs `docker load -i tarball` on the node.
func (n *Node) LoadImage(tarball string) error {
	_, err := n.Docker("load", "-q", "-i", tarball)
	return err
}

func (s *Swarm) cachedImage(tag string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.images[tag]
	return p, ok
}

// ImageTarball returns the saved tarball of an image built by BuildImage
// during this run (WorkloadImage included).
func (s *Swarm) ImageTarball(tag string) (string, bool) { return s.cachedImage(tag) }
