package swarmtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func bg() context.Context { return context.Background() }

// runLock is what a running swarm holds: a shared flock on LockPath and an
// exclusive one on its prefix's lock file.
type runLock struct {
	machine, prefix *os.File
	subnet          *os.File // once Start has taken it (see acquireSubnet)
}

func prefixLockPath(prefix string) string { return fmt.Sprintf(PrefixLockPattern, prefix) }

// acquireLock takes the locks of a run of prefix, polling until ctx ends.
func acquireLock(ctx context.Context, prefix string, logf func(string, ...any)) (*runLock, error) {
	machine, err := flockWait(ctx, LockPath, syscall.LOCK_SH, logf)
	if err != nil {
		return nil, err
	}
	own, err := flockWait(ctx, prefixLockPath(prefix), syscall.LOCK_EX, logf)
	if err != nil {
		unflock(machine)
		return nil, err
	}
	_ = own.Truncate(0)
	_, _ = own.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &runLock{machine: machine, prefix: own}, nil
}

// flockWait opens path and takes a flock of kind (LOCK_SH or LOCK_EX) on
// it, polling until ctx ends; it logs once that it waits, with the pid the
// file names (the holder of an exclusive lock writes its pid there).
func flockWait(ctx context.Context, path string, kind int, logf func(string, ...any)) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("swarmtest: lock: %w", err)
	}
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), kind|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("swarmtest: flock %s: %w", path, err)
		}
		if !logged {
			holder := "another harness"
			if pid, _ := os.ReadFile(path); len(strings.TrimSpace(string(pid))) > 0 {
				holder = "pid " + strings.TrimSpace(string(pid))
			}
			logf("swarmtest: waiting for %s (held by %s)", path, holder)
			logged = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("swarmtest: another harness holds %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func unflock(f *os.File) {
	if f != nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}

// acquireSubnet takes the lock of a subnet (an exclusive flock on
// SubnetLockPattern), then waits until no host interface has an address in
// it: swarms of different prefixes on the same subnet queue behind each
// other, also behind a harness that does not know this lock. Both waits
// end with ctx; a bridge that never goes (a crashed run's) is named in the
// error.
func acquireSubnet(ctx context.Context, l *runLock, subnet netip.Prefix, logf func(string, ...any)) error {
	path := fmt.Sprintf(SubnetLockPattern, strings.ReplaceAll(subnet.String(), "/", "-"))
	f, err := flockWait(ctx, path, syscall.LOCK_EX, logf)
	if err != nil {
		return err
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	l.subnet = f
	logged := false
	for {
		dev, err := subnetUser(subnet)
		if err != nil || dev == "" {
			return err
		}
		if !logged {
			logf("swarmtest: waiting for subnet %s, in use on %s", subnet, dev)
			logged = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("swarmtest: subnet %s is in use on %s (another swarm's, or what a crashed run left: `swarmup -cleanup` clears it): %w", subnet, dev, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func releaseLock(l *runLock) {
	if l != nil {
		unflock(l.subnet)
		unflock(l.prefix)
		unflock(l.machine)
	}
}

// state is what a run records in BaseDir/PREFIX/state.json so that the next
// run can clear it after a crash.
type state struct {
	Prefix  string    `json:"prefix"`
	BaseDir string    `json:"base_dir"`
	Bridge  string    `json:"bridge"`
	Owner   int       `json:"owner_pid"`
	Started time.Time `json:"started"`
	Nodes   []struct {
		Name  string `json:"name"`
		Netns string `json:"netns"`
		Pid   int    `json:"dockerd_pid"`
	} `json:"nodes"`
}

func statePath(baseDir, prefix string) string {
	return filepath.Join(baseDir, prefix, "state.json")
}

func (s *Swarm) writeState() {
	st := state{Prefix: s.opts.Prefix, BaseDir: s.opts.BaseDir, Bridge: s.bridge, Owner: os.Getpid(), Started: time.Now()}
	for _, n := range s.Nodes() {
		st.Nodes = append(st.Nodes, struct {
			Name  string `json:"name"`
			Netns string `json:"netns"`
			Pid   int    `json:"dockerd_pid"`
		}{n.Name, n.Netns, n.Pid()})
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	p := statePath(s.opts.BaseDir, s.opts.Prefix)
	_ = os.WriteFile(p+".tmp", b, 0o644)
	_ = os.Rename(p+".tmp", p)
}

// Leftovers lists what a run with opts.Prefix (DefaultPrefix when empty)
// left on the machine: processes, cgroups, network namespaces, links,
// iptables rules, mounts and the run directory under opts.BaseDir. An empty
// list means the machine is clean for that prefix.
func Leftovers(opts Options) ([]string, error) {
	opts.Managers = 1 // only prefix, base dir and subnet matter here
	opts.Engine = DebianEngine()
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	return leftovers(opts.BaseDir, opts.Prefix)
}

func leftovers(baseDir, prefix string) ([]string, error) {
	var out []string
	dir := filepath.Join(baseDir, prefix)
	for _, pid := range prefixPids(baseDir, prefix) {
		out = append(out, fmt.Sprintf("process %d (%s)", pid, cmdline(pid)))
	}
	for _, r := range allCgroupRoots(prefix) {
		out = append(out, "cgroup "+r)
	}
	for _, ns := range prefixedNetns(prefix) {
		out = append(out, "netns "+ns)
	}
	links, err := prefixedLinks(prefix)
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		out = append(out, "link "+l)
	}
	rules, err := prefixedIptables(prefix)
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		out = append(out, "iptables "+r)
	}
	for _, m := range prefixedMounts(baseDir, prefix) {
		out = append(out, "mount "+m)
	}
	if _, err := os.Stat(dir); err == nil {
		out = append(out, "directory "+dir)
	}
	return out, nil
}

// cleanupPrefix removes everything leftovers reports for the prefix and
// returns an error listing what it could not remove.
func cleanupPrefix(baseDir, prefix string, logf func(string, ...any)) error {
	dir := filepath.Join(baseDir, prefix)
	before, err := leftovers(baseDir, prefix)
	if err != nil {
		return err
	}
	if len(before) == 0 {
		return nil
	}
	logf("swarmtest: clearing %d leftovers of prefix %q", len(before), prefix)
	var errs []error
	// Processes: the recorded daemons, everything in the cgroups, and any
	// process still running from the run directory.
	if b, err := os.ReadFile(statePath(baseDir, prefix)); err == nil {
		var st state
		if json.Unmarshal(b, &st) == nil {
			for _, n := range st.Nodes {
				if n.Pid > 0 && strings.Contains(cmdline(n.Pid), dir+"/") {
					_ = syscall.Kill(n.Pid, syscall.SIGKILL)
				}
			}
		}
	}
	for _, pid := range prefixPids(baseDir, prefix) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, r := range allCgroupRoots(prefix) {
		if err := killCgroupTree(r, 20*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	waitGone(func() bool { return len(prefixPids(baseDir, prefix)) == 0 }, 10*time.Second)

	for _, ns := range prefixedNetns(prefix) {
		if err := mustRun("ip", "netns", "del", ns); err != nil {
			// A netns file whose mount is already gone.
			if rerr := os.Remove(filepath.Join("/run/netns", ns)); rerr != nil {
				errs = append(errs, err)
			}
		}
	}
	if links, err := prefixedLinks(prefix); err == nil {
		for _, l := range links {
			// Deleting a netns also deletes the host ends of its veths,
			// sometimes only after the listing above.
			if err := mustRun("ip", "link", "del", l); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
				errs = append(errs, err)
			}
		}
	}
	if rules, err := prefixedIptables(prefix); err == nil {
		for _, r := range rules {
			f := strings.Fields(r)
			if len(f) > 2 && f[0] == "-A" {
				f[0] = "-D"
				if err := mustRun("iptables", append([]string{"-w"}, f...)...); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	for _, m := range prefixedMounts(baseDir, prefix) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("swarmtest: umount %s: %w", m, err))
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	_ = os.Remove(baseDir) // only if no other run's directory is in it
	after, err := leftovers(baseDir, prefix)
	if err != nil {
		errs = append(errs, err)
	} else if len(after) > 0 {
		errs = append(errs, fmt.Errorf("swarmtest: cannot clear leftovers of prefix %q: %s", prefix, strings.Join(after, "; ")))
	}
	return errors.Join(errs...)
}

func waitGone(cond func() bool, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for !cond() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// Cleanup clears the leftovers of earlier runs: those of DefaultPrefix,
// of every run that has a directory under DefaultBaseDir, and of every
// prefix that still has a swarmtest cgroup. It takes each prefix's lock in
// turn, waiting up to a minute in all for swarms that still run, and
// returns an error naming whatever it could not remove.
func Cleanup() error {
	ctx, cancel := context.WithTimeout(bg(), time.Minute)
	defer cancel()
	prefixes := map[string]bool{DefaultPrefix: true}
	dirs, _ := os.ReadDir(DefaultBaseDir)
	for _, d := range dirs {
		if d.IsDir() {
			prefixes[d.Name()] = true
		}
	}
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/swarmtest-*")
	v2, _ := filepath.Glob("/sys/fs/cgroup/swarmtest-*")
	for _, r := range append(roots, v2...) {
		prefixes[strings.TrimPrefix(filepath.Base(r), "swarmtest-")] = true
	}
	var errs []error
	for p := range prefixes {
		if !prefixRE.MatchString(p) {
			continue
		}
		lock, err := acquireLock(ctx, p, func(string, ...any) {})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := cleanupPrefix(DefaultBaseDir, p, func(string, ...any) {}); err != nil {
			errs = append(errs, err)
		}
		releaseLock(lock)
	}
	releaseNetnsDir()
	return errors.Join(errs...)
}

// releaseNetnsDir undoes what the first `ip netns add` on a machine does:
// it bind-mounts /run/netns onto itself. Once no network namespace is left
// there, the mount is the harness's last trace, so it goes too.
func releaseNetnsDir() {
	const dir = "/run/netns"
	unlock := netnsLock()
	defer unlock()
	if ents, err := os.ReadDir(dir); err != nil || len(ents) > 0 {
		return
	}
	if isMountPoint(dir) {
		_ = syscall.Unmount(dir, syscall.MNT_DETACH)
	}
	_ = os.Remove(dir)
}

// netnsLockPath serialises creating a network namespace and releasing
// /run/netns, which two swarms of different prefixes may do at once.
const netnsLockPath = "/run/swarmtest-netns.lock"

// netnsLock takes the lock of netnsLockPath (briefly held: no timeout) and
// returns its release.
func netnsLock() func() {
	f, err := os.OpenFile(netnsLockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return func() {}
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
	return func() { unflock(f) }
}

func isMountPoint(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 5 && unescapeMount(fields[4]) == dir {
			return true
		}
	}
	return false
}

func prefixedNetns(prefix string) []string {
	ents, _ := os.ReadDir("/run/netns")
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// prefixedMounts lists host mount points under the run directory or of the
// prefix's network namespaces, deepest first.
func prefixedMounts(baseDir, prefix string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	dir := filepath.Join(baseDir, prefix)
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") || strings.HasPrefix(mp, "/run/netns/"+prefix+"-") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// prefixPids lists processes of the prefix: those in its cgroups and those
// whose command line names the run directory (the daemons).
func prefixPids(baseDir, prefix string) []int {
	seen := map[int]bool{}
	for _, r := range allCgroupRoots(prefix) {
		for _, pid := range cgroupPids(r) {
			seen[pid] = true
		}
	}
	dir := filepath.Join(baseDir, prefix) + "/"
	ents, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if strings.Contains(cmdline(pid), dir) {
			seen[pid] = true
		}
	}
	var out []int
	for pid := range seen {
		if processAlive(pid) {
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	return out
}

// processAlive is false for gone and zombie processes.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// The live swarms of this process, torn down on SIGINT/SIGTERM.
var registry struct {
	mu   sync.Mutex
	live map[*Swarm]bool
	ch   chan os.Signal
}

func register(s *Swarm) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.live == nil {
		registry.live = map[*Swarm]bool{}
	}
	if registry.ch == nil {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		registry.ch = ch
		go onSignal(ch)
	}
	registry.live[s] = true
}

func unregister(s *Swarm) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	delete(registry.live, s)
	if len(registry.live) == 0 && registry.ch != nil {
		signal.Stop(registry.ch)
		close(registry.ch)
		registry.ch = nil
	}
}

// onSignal tears every live swarm down, then lets the signal do what it
// would have done (end the process).
func onSignal(ch chan os.Signal) {
	sig, ok := <-ch
	if !ok {
		return
	}
	fmt.Fprintf(os.Stderr, "swarmtest: %v: tearing down\n", sig)
	registry.mu.Lock()
	var live []*Swarm
	for s := range registry.live {
		live = append(live, s)
	}
	registry.mu.Unlock()
	for _, s := range live {
		if err := s.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "swarmtest: teardown: %v\n", err)
		}
	}
	signal.Reset(sig)
	_ = syscall.Kill(os.Getpid(), sig.(syscall.Signal))
}
