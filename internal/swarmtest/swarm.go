package swarmtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Role is the role a node has in the swarm, or RoleStandalone for a daemon
// that never joins it.
type Role string

// The roles of a node.
const (
	RoleManager    Role = "manager"
	RoleWorker     Role = "worker"
	RoleStandalone Role = "standalone"
)

// Defaults and fixed paths of the harness.
const (
	// DefaultPrefix prefixes the names of everything the harness creates on
	// the host (network namespaces, links, cgroups, directories), so that
	// leftovers of a crashed run can be found and cleared.
	DefaultPrefix = "swx"
	// DefaultSubnet is the private /24 on which the nodes talk to each other;
	// the host side of the bridge takes its first address.
	DefaultSubnet = "10.213.0.0/24"
	// DefaultBaseDir holds one directory per prefix with the nodes' data
	// roots, sockets, logs and the harness state file.
	DefaultBaseDir = "/var/lib/swarmtest"
	// LockPath is the machine-wide lock file. Every running swarm holds a
	// shared flock on it, so that a tool that needs the whole machine can
	// take it exclusively; two swarms of different prefixes run at once.
	LockPath = "/run/swarmtest.lock"
	// PrefixLockPattern names the file the harness holds an exclusive flock
	// on while a swarm of one prefix runs (%s is the prefix), so that two
	// runs of the same prefix never overlap: the later one waits.
	PrefixLockPattern = "/run/swarmtest-%s.lock"
	// SubnetLockPattern names the file the harness holds an exclusive flock
	// on while a swarm uses a subnet (%s is e.g. 10.213.0.0-24), so that
	// swarms of different prefixes on the same subnet queue too.
	SubnetLockPattern = "/run/swarmtest-subnet-%s.lock"
	// IptablesComment tags the host FORWARD rule the harness adds.
	IptablesComment = "swarmtest"
	// DockerdPath is the daemon binary of Debian's engine (DebianEngine).
	DockerdPath = "/usr/sbin/dockerd"
	// DockerCLIPath is the docker client the harness runs: Debian's 20.10,
	// which speaks Engine API 1.41 to every engine (Docker 29 accepts 1.40
	// and newer); /usr/local/bin/docker on the development machine is an
	// unrelated client.
	DockerCLIPath = "/usr/bin/docker"
	// WorkloadImage is the tag of the image built from ./workload and loaded
	// on every node by Start (unless Options.NoWorkloadImage).
	WorkloadImage = "swarmtest/workload:latest"
	// APIVersion is the newest Engine API version dockerd 20.10 speaks. The
	// harness's own requests to a node use the version the node's daemon
	// announces (Node.APIVersion).
	APIVersion = "1.41"
	// TLSPort is the TCP port a TLS node listens on, on its netns address.
	TLSPort = 2376
)

// Options selects the topology and the knobs of a harness run. The zero
// value boots 3 managers and 2 workers.
type Options struct {
	// Managers and Workers are the numbers of swarm nodes (named m1…mN and
	// w1…wN). When Managers, Workers and Standalone are all zero the
	// default 3 managers + 2 workers are used. Workers without a manager
	// are refused. At most 9 managers, 19 workers.
	Managers, Workers int
	// Standalone is the number of daemons (named s1…sN, at most 9) that run
	// beside the swarm but never join it.
	Standalone int
	// TLSNodes names nodes (e.g. "m1" or "s1") whose daemon also listens on
	// tcp://IP:2376 with --tlsverify and the run's throwaway CA; see TLS.
	TLSNodes []string
	// Prefix names everything the run creates; DefaultPrefix when empty.
	// It must match [a-z][a-z0-9]{0,7}.
	Prefix string
	// Subnet is the private IPv4 /24 of the nodes; DefaultSubnet when empty.
	Subnet string
	// BaseDir is where node directories live; DefaultBaseDir when empty.
	BaseDir string
	// NoWorkloadImage skips building and loading WorkloadImage.
	NoWorkloadImage bool
	// DispatcherHeartbeat, when set, is passed to `docker swarm init
	// --dispatcher-heartbeat`; dockerd's default is 5s, with which a killed
	// node shows Down after about 15 s.
	DispatcherHeartbeat time.Duration
	// DaemonArgs are added to every dockerd command line.
	DaemonArgs []string
	// Engine is the Docker engine of every node that NodeEngines does not
	// name. The zero value means DefaultEngine(): the engine SWARMTEST_ENGINE
	// names, else Debian's 20.10.
	Engine Engine
	// NodeEngines gives nodes, by name ("m1", "w2"; nodes AddNode adds
	// too), another engine than Engine: a swarm of mixed versions.
	NodeEngines map[string]Engine
	// Logf receives progress messages; nothing is logged when nil.
	Logf func(format string, args ...any)
}

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,7}$`)

func (o *Options) normalize() error {
	if o.Managers == 0 && o.Workers == 0 && o.Standalone == 0 {
		o.Managers, o.Workers = 3, 2
	}
	switch {
	case o.Managers < 0 || o.Workers < 0 || o.Standalone < 0:
		return errors.New("swarmtest: negative node count")
	case o.Workers > 0 && o.Managers == 0:
		return errors.New("swarmtest: workers need at least one manager")
	case o.Managers > 9 || o.Workers > 19 || o.Standalone > 9:
		return errors.New("swarmtest: at most 9 managers, 19 workers and 9 standalone daemons")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if !prefixRE.MatchString(o.Prefix) {
		return fmt.Errorf("swarmtest: prefix %q does not match %s", o.Prefix, prefixRE)
	}
	if o.Subnet == "" {
		o.Subnet = DefaultSubnet
	}
	p, err := netip.ParsePrefix(o.Subnet)
	if err != nil || !p.Addr().Is4() || p.Bits() != 24 || p.Masked() != p {
		return fmt.Errorf("swarmtest: subnet %q is not an IPv4 /24", o.Subnet)
	}
	if o.BaseDir == "" {
		o.BaseDir = DefaultBaseDir
	}
	if !filepath.IsAbs(o.BaseDir) {
		return fmt.Errorf("swarmtest: base dir %q is not absolute", o.BaseDir)
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Engine.isZero() {
		e, err := DefaultEngine()
		if err != nil {
			return err
		}
		o.Engine = e
	}
	for name, e := range o.NodeEngines {
		if e.isZero() {
			return fmt.Errorf("swarmtest: node %s: engine without a dockerd", name)
		}
	}
	return nil
}

// engineOf returns the engine of the node called name.
func (o *Options) engineOf(name string) Engine {
	if e, ok := o.NodeEngines[name]; ok {
		return e
	}
	return o.Engine
}

// Swarm is a running harness: the nodes, their network and the swarm they
// form. Its methods are safe for concurrent use unless said otherwise.
type Swarm struct {
	opts    Options
	dir     string // BaseDir/Prefix
	bridge  string
	hostIP  string
	subnet  netip.Prefix
	cgroups cgroupLayout
	lock    *runLock
	tls     *TLSMaterial

	mu       sync.Mutex
	nodes    []*Node
	closed   bool
	images   map[string]string // image tag -> saved tarball
	watchdog *time.Timer

	closeOnce sync.Once
	closeErr  error
}

// Start boots the topology opts asks for and returns once every daemon
// answers, every swarm node is Ready (managers Reachable) and the workload
// image is loaded on every node. It first takes the locks of its prefix
// (waiting for them as long as ctx allows), clears what an earlier run with
// the same prefix left behind, and refuses to start if something is left
// that it cannot clear; then it takes its subnet (waiting as long, see
// acquireSubnet). On error everything started so far is torn down.
func Start(ctx context.Context, opts Options) (_ *Swarm, err error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	if err := checkPrereqs(); err != nil {
		return nil, err
	}
	for _, e := range append([]Engine{opts.Engine}, slices.Collect(maps.Values(opts.NodeEngines))...) {
		if _, err := os.Stat(e.Dockerd); err != nil {
			return nil, fmt.Errorf("swarmtest: engine %s: %w", e.Name, err)
		}
	}
	t0 := time.Now()
	lock, err := acquireLock(ctx, opts.Prefix, opts.Logf)
	if err != nil {
		return nil, err
	}
	s := &Swarm{
		opts:   opts,
		dir:    filepath.Join(opts.BaseDir, opts.Prefix),
		bridge: opts.Prefix + "-br0",
		lock:   lock,
		images: map[string]string{},
	}
	s.subnet = netip.MustParsePrefix(opts.Subnet)
	s.hostIP = s.addr(1)
	s.cgroups, err = detectCgroups(opts.Prefix)
	if err != nil {
		releaseLock(lock)
		return nil, err
	}
	if err := cleanupPrefix(opts.BaseDir, opts.Prefix, opts.Logf); err != nil {
		releaseLock(lock)
		return nil, fmt.Errorf("swarmtest: refusing to start: %w", err)
	}
	if err := acquireSubnet(ctx, lock, s.subnet, opts.Logf); err != nil {
		releaseLock(lock)
		return nil, err
	}
	register(s)
	defer func() {
		if err != nil {
			if cerr := s.Close(); cerr != nil {
				opts.Logf("swarmtest: teardown after failed start: %v", cerr)
			}
		}
	}()
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, err
	}
	s.writeState()

	specs, err := s.planNodes()
	if err != nil {
		return nil, err
	}
	if len(opts.TLSNodes) > 0 {
		s.tls, err = newTLSMaterial(filepath.Join(s.dir, "tls"), specs)
		if err != nil {
			return nil, err
		}
	}
	if err := s.setupBridge(); err != nil {
		return nil, err
	}
	for _, n := range specs {
		if err := s.setupNode(n); err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.nodes = append(s.nodes, n)
		s.mu.Unlock()
		s.writeState()
	}
	opts.Logf("swarmtest: network of %d nodes ready after %v; engines: %s", len(specs), time.Since(t0).Round(time.Millisecond), engineSummary(specs))

	if err := parallel(specs, func(n *Node) error { return n.start(ctx) }); err != nil {
		return nil, err
	}
	s.writeState()
	opts.Logf("swarmtest: %d daemons answer after %v", len(specs), time.Since(t0).Round(time.Millisecond))

	var wg sync.WaitGroup
	var imgErr error
	if !opts.NoWorkloadImage {
		wg.Add(1)
		go func() {
			defer wg.Done()
			imgErr = s.loadWorkloadImage(ctx)
		}()
	}
	swErr := s.formSwarm(ctx)
	wg.Wait()
	if swErr != nil {
		return nil, swErr
	}
	if imgErr != nil {
		return nil, imgErr
	}
	opts.Logf("swarmtest: %d managers + %d workers + %d standalone ready after %v",
		opts.Managers, opts.Workers, opts.Standalone, time.Since(t0).Round(time.Millisecond))
	return s, nil
}

// engineSummary says which nodes run which engine: "29.5.2 (m1 m2 m3 w1 w2)".
func engineSummary(nodes []*Node) string {
	var order []string
	byVersion := map[string][]string{}
	for _, n := range nodes {
		v := n.engine.Version
		if byVersion[v] == nil {
			order = append(order, v)
		}
		byVersion[v] = append(byVersion[v], n.Name)
	}
	var parts []string
	for _, v := range order {
		parts = append(parts, fmt.Sprintf("%s (%s)", v, strings.Join(byVersion[v], " ")))
	}
	return strings.Join(parts, ", ")
}

// addr returns the subnet address with the given last octet.
func (s *Swarm) addr(host int) string {
	b := s.subnet.Addr().As4()
	b[3] = byte(host)
	return netip.AddrFrom4(b).String()
}

func (s *Swarm) planNodes() ([]*Node, error) {
	var nodes []*Node
	add := func(role Role, letter string, count, firstHost int) {
		for i := 1; i <= count; i++ {
			nodes = append(nodes, s.newNode(fmt.Sprintf("%s%d", letter, i), role, s.addr(firstHost+i-1)))
		}
	}
	add(RoleManager, "m", s.opts.Managers, 11)
	add(RoleWorker, "w", s.opts.Workers, 21)
	add(RoleStandalone, "s", s.opts.Standalone, 41)
	for _, name := range s.opts.TLSNodes {
		found := false
		for _, n := range nodes {
			if n.Name == name {
				n.TLS = true
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("swarmtest: TLS node %q is not in the topology", name)
		}
	}
	return nodes, nil
}

func (s *Swarm) newNode(name string, role Role, ip string) *Node {
	dir := filepath.Join(s.dir, name)
	return &Node{
		Name:     name,
		Hostname: s.opts.Prefix + "-" + name,
		Netns:    s.opts.Prefix + "-" + name,
		IP:       ip,
		Dir:      dir,
		Socket:   filepath.Join(dir, "docker.sock"),
		s:        s,
		role:     role,
		initial:  role,
		engine:   s.opts.engineOf(name),
	}
}

// AddNode starts one more node while the swarm runs: a worker or manager
// joins the swarm, a standalone daemon does not. With tlsNode the daemon
// also listens on tcp://IP:2376 with --tlsverify (see TLS). It returns once
// the daemon answers and, for swarm roles, the node is Ready.
func (s *Swarm) AddNode(ctx context.Context, role Role, tlsNode bool) (*Node, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("swarmtest: swarm is closed")
	}
	count := 0
	for _, n := range s.nodes {
		if n.initial == role {
			count++
		}
	}
	s.mu.Unlock()
	var letter string
	var first, max int
	switch role {
	case RoleManager:
		letter, first, max = "m", 11, 9
	case RoleWorker:
		letter, first, max = "w", 21, 19
	case RoleStandalone:
		letter, first, max = "s", 41, 9
	default:
		return nil, fmt.Errorf("swarmtest: unknown role %q", role)
	}
	if count >= max {
		return nil, fmt.Errorf("swarmtest: too many %s nodes", role)
	}
	n := s.newNode(fmt.Sprintf("%s%d", letter, count+1), role, s.addr(first+count))
	n.TLS = tlsNode
	if tlsNode {
		if err := s.ensureTLS(n); err != nil {
			return nil, err
		}
	}
	if err := s.setupNode(n); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.nodes = append(s.nodes, n)
	s.mu.Unlock()
	s.writeState()
	if err := n.start(ctx); err != nil {
		return nil, err
	}
	if img, ok := s.cachedImage(WorkloadImage); ok {
		if err := n.LoadImage(img); err != nil {
			return nil, err
		}
	}
	if role == RoleStandalone {
		return n, nil
	}
	if err := s.join(ctx, n); err != nil {
		return nil, err
	}
	return n, s.waitNodes(ctx, 90*time.Second)
}

// Nodes returns every node in start order: managers, workers, standalone
// daemons, then nodes added by AddNode.
func (s *Swarm) Nodes() []*Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Node(nil), s.nodes...)
}

// Node returns the node with the given name (e.g. "m1", "w2", "s1") or nil.
func (s *Swarm) Node(name string) *Node {
	for _, n := range s.Nodes() {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Managers returns the nodes whose current role is manager.
func (s *Swarm) Managers() []*Node { return s.byRole(RoleManager) }

// Workers returns the nodes whose current role is worker.
func (s *Swarm) Workers() []*Node { return s.byRole(RoleWorker) }

// Standalone returns the daemons that are not in the swarm.
func (s *Swarm) Standalone() []*Node { return s.byRole(RoleStandalone) }

func (s *Swarm) byRole(r Role) []*Node {
	var out []*Node
	for _, n := range s.Nodes() {
		if n.Role() == r {
			out = append(out, n)
		}
	}
	return out
}

// NodeByID returns the node with the given swarm node ID, or nil.
func (s *Swarm) NodeByID(id string) *Node {
	for _, n := range s.Nodes() {
		if n.ID() == id {
			return n
		}
	}
	return nil
}

// TLS returns the certificates of the run's TLS nodes, or nil when
// Options.TLSNodes was empty and AddNode never added a TLS node.
func (s *Swarm) TLS() *TLSMaterial {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tls
}

// Prefix returns the prefix of every name the run created.
func (s *Swarm) Prefix() string { return s.opts.Prefix }

// HostIP returns the address of the host side of the bridge.
func (s *Swarm) HostIP() string { return s.hostIP }

// Dir returns the run's directory (BaseDir/Prefix); it is removed by Close.
func (s *Swarm) Dir() string { return s.dir }

// Close tears everything down: it kills every process of every node
// (dockerd, containerd, shims, task processes), deletes the network
// namespaces, veths, the bridge and the iptables rule, removes the cgroups
// and the run directory, and releases the lock. It returns an error if
// something could not be removed. It is idempotent: a concurrent call (from
// the signal handler, say) waits until the first one has finished; later
// calls return nil.
func (s *Swarm) Close() error {
	first := false
	s.closeOnce.Do(func() {
		first = true
		s.closeErr = s.teardown()
	})
	if first {
		return s.closeErr
	}
	return nil
}

func (s *Swarm) teardown() error {
	s.mu.Lock()
	s.closed = true
	if s.watchdog != nil {
		s.watchdog.Stop()
	}
	nodes := append([]*Node(nil), s.nodes...)
	s.mu.Unlock()
	defer unregister(s)
	t0 := time.Now()
	for _, n := range nodes {
		n.signalDaemon()
	}
	var errs []error
	if err := killCgroupTree(s.cgroups.root(), 20*time.Second); err != nil {
		errs = append(errs, err)
	}
	for _, n := range nodes {
		n.waitExited(5 * time.Second)
	}
	if err := cleanupPrefix(s.opts.BaseDir, s.opts.Prefix, s.opts.Logf); err != nil {
		errs = append(errs, err)
	}
	releaseNetnsDir()
	releaseLock(s.lock)
	s.opts.Logf("swarmtest: teardown took %v", time.Since(t0).Round(time.Millisecond))
	return errors.Join(errs...)
}

// parallel runs f for every node at once and joins the errors.
func parallel(nodes []*Node, f func(*Node) error) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func checkPrereqs() error {
	if os.Geteuid() != 0 {
		return errors.New("swarmtest: needs root")
	}
	for _, p := range []string{DockerdPath, DockerCLIPath} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("swarmtest: %s missing (install the docker.io package): %w", p, err)
		}
	}
	for _, name := range []string{"nsenter", "unshare", "ip", "iptables", "sh"} {
		if p := tool(name); !filepath.IsAbs(p) {
			return fmt.Errorf("swarmtest: %s not found on PATH nor in /usr/sbin, /sbin, /usr/bin, /bin", name)
		}
	}
	return nil
}

// tool returns the path of a system tool: from PATH, else from the usual
// system directories (a CI environment may lack /usr/sbin on PATH), else
// the bare name.
func tool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if p := filepath.Join(d, name); fileExists(p) {
			return p
		}
	}
	return name
}

// run runs a host command and returns its trimmed combined output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, tool(name), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return strings.TrimSpace(string(out)), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

func mustRun(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := run(ctx, name, args...)
	return err
}

func itoa(i int) string { return strconv.Itoa(i) }
