package swarmtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupLayout places each node in /swarmtest-PREFIX/NODE of one cgroup
// hierarchy (pids on cgroup v1, the unified tree on v2):
//
//	/swarmtest-PREFIX/NODE/daemon  dockerd, containerd and the shims
//	/swarmtest-PREFIX/NODE/ctr/ID  task containers (dockerd --cgroup-parent)
//
// On cgroup v1 dockerd creates the ctr/ID groups in every hierarchy; those
// are all removed at cleanup.
type cgroupLayout struct {
	mount  string // the hierarchy that tracks processes
	prefix string
}

func detectCgroups(prefix string) (cgroupLayout, error) {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return cgroupLayout{mount: "/sys/fs/cgroup", prefix: prefix}, nil
	}
	for _, h := range []string{"pids", "systemd", "memory"} {
		p := filepath.Join("/sys/fs/cgroup", h)
		if _, err := os.Stat(filepath.Join(p, "cgroup.procs")); err == nil {
			return cgroupLayout{mount: p, prefix: prefix}, nil
		}
	}
	return cgroupLayout{}, errors.New("swarmtest: no usable cgroup hierarchy under /sys/fs/cgroup")
}

func cgroupName(prefix string) string { return "swarmtest-" + prefix }

func (c cgroupLayout) root() string { return filepath.Join(c.mount, cgroupName(c.prefix)) }
func (c cgroupLayout) node(name string) string {
	return filepath.Join(c.root(), name)
}
func (c cgroupLayout) daemon(name string) string { return filepath.Join(c.node(name), "daemon") }
func (c cgroupLayout) containerParent(name string) string {
	return "/" + cgroupName(c.prefix) + "/" + name + "/ctr"
}

func mkCgroup(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("swarmtest: cgroup %s: %w", dir, err)
	}
	return nil
}

// cgroupDirs returns dir and every cgroup below it, deepest first.
func cgroupDirs(dir string) []string {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	return dirs
}

// cgroupPids lists the processes in dir and below.
func cgroupPids(dir string) []int {
	var pids []int
	for _, d := range cgroupDirs(dir) {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// killCgroupTree SIGKILLs every process in dir and below (thawing frozen
// groups first) until none is left, then removes the cgroups.
func killCgroupTree(dir string, timeout time.Duration) error {
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return nil
	}
	deadline := time.Now().Add(timeout)
	for {
		thaw(dir)
		pids := cgroupPids(dir)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("swarmtest: processes %v in %s survive SIGKILL", pids, dir)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return removeCgroupTree(dir, time.Until(deadline))
}

// thaw unfreezes frozen v1 freezer groups of the same name, in which
// SIGKILL would stay pending.
func thaw(dir string) {
	rel := strings.TrimPrefix(dir, "/sys/fs/cgroup/")
	if i := strings.IndexByte(rel, '/'); i >= 0 {
		rel = rel[i+1:]
	}
	for _, d := range cgroupDirs(filepath.Join("/sys/fs/cgroup/freezer", rel)) {
		_ = os.WriteFile(filepath.Join(d, "freezer.state"), []byte("THAWED"), 0o644)
	}
}

// removeCgroupTree removes dir and its children, retrying while the kernel
// still counts exiting processes.
func removeCgroupTree(dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var last error
		for _, d := range cgroupDirs(dir) {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
				last = fmt.Errorf("swarmtest: rmdir %s: %w", d, err)
			}
		}
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return last
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// allCgroupRoots returns /sys/fs/cgroup/*/swarmtest-PREFIX (v1) or
// /sys/fs/cgroup/swarmtest-PREFIX (v2) that exist.
func allCgroupRoots(prefix string) []string {
	var roots []string
	name := cgroupName(prefix)
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", name)); err == nil {
		roots = append(roots, filepath.Join("/sys/fs/cgroup", name))
	}
	m, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", name))
	return append(roots, m...)
}
