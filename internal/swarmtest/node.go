package swarmtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Node is one dockerd of the harness. Its exported fields never change
// after Start; Role and ID can (Promote, Demote, a node that rejoins).
type Node struct {
	// Name is the harness name: m1…, w1…, s1….
	Name string
	// Hostname is the node's hostname (PREFIX-NAME), shown by `docker node ls`.
	Hostname string
	// Netns is the name of the node's network namespace (PREFIX-NAME).
	Netns string
	// IP is the node's address on the harness bridge.
	IP string
	// Dir holds the node's data root, sockets, pidfile and daemon log.
	Dir string
	// Socket is the path of the daemon's unix socket on the shared
	// filesystem; Host returns it as a DOCKER_HOST value.
	Socket string
	// TLS reports whether the daemon also listens on TCPHost with --tlsverify.
	TLS bool

	s       *Swarm
	initial Role
	engine  Engine

	mu     sync.Mutex
	role   Role
	id     string
	cmd    *exec.Cmd
	done   chan struct{} // closed when the current dockerd exited
	exitEr error
	client *http.Client
	api    string // the Api-Version header of the daemon's last ping
}

// Engine returns the Docker engine the node runs.
func (n *Node) Engine() Engine { return n.engine }

// APIVersion returns the Engine API version the node's daemon announced
// (its newest: 1.41 for 20.10, 1.54 for 29); the harness's own requests to
// the node use it. Before the daemon first answered, it is APIVersion.
func (n *Node) APIVersion() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.api == "" {
		return APIVersion
	}
	return n.api
}

// Role returns the node's current role (RoleStandalone for daemons that are
// not in the swarm).
func (n *Node) Role() Role {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.role
}

func (n *Node) setRole(r Role) {
	n.mu.Lock()
	n.role = r
	n.mu.Unlock()
}

// ID returns the node's swarm node ID ("" for standalone daemons).
func (n *Node) ID() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.id
}

// Host returns the daemon's unix socket as a DOCKER_HOST value
// (unix:///var/lib/swarmtest/PREFIX/NAME/docker.sock), usable from the host.
func (n *Node) Host() string { return "unix://" + n.Socket }

// TCPHost returns tcp://IP:2376 for a TLS node and "" otherwise.
func (n *Node) TCPHost() string {
	if !n.TLS {
		return ""
	}
	return fmt.Sprintf("tcp://%s:%d", n.IP, TLSPort)
}

// LogPath is the file the daemon's output goes to.
func (n *Node) LogPath() string { return filepath.Join(n.Dir, "dockerd.log") }

// Pid returns the pid of the running dockerd, or 0.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil || isClosed(n.done) {
		return 0
	}
	return n.cmd.Process.Pid
}

// Running reports whether the node's dockerd process is alive.
func (n *Node) Running() bool { return n.Pid() != 0 }

// String returns the node's name.
func (n *Node) String() string { return n.Name }

func isClosed(c chan struct{}) bool {
	if c == nil {
		return true
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (n *Node) cgroup() string { return n.s.cgroups.node(n.Name) }

// startScript runs inside the node's network namespace and its fresh UTS
// and mount namespaces, then execs dockerd ("$@").
//
// Why it is built like this (each point verified on Debian 12, cgroup v1):
//   - nsenter --net=/var/run/netns/NAME, NOT `ip netns exec`: the latter
//     remounts /sys, which hides /sys/fs/cgroup, and dockerd then dies with
//     "Devices cgroup isn't mounted".
//   - nsenter first, unshare second: once a tmpfs covers /run inside the new
//     mount namespace, /var/run/netns/NAME is no longer visible.
//   - unshare --uts gives the node its own hostname (= swarm node name).
//   - unshare --mount --propagation private + a tmpfs over /run gives the
//     daemon its own /var/run/docker.sock (/var/run -> /run on Debian), so
//     a task bind-mounting /var/run/docker.sock reaches its own node, and a
//     private exec root; the mounts it makes (overlay, netns) never reach
//     the host and vanish with the node's processes.
//   - the shell moves itself into the node's cgroup before exec, so that
//     every process the daemon starts, including daemonized shims, stays
//     findable and killable.
//   - the daemon is the node's engine's ($SWARMTEST_DOCKERD), and its PATH
//     starts with the engine's own directory, where containerd's shim
//     finds the engine's runc.
const startScript = `set -e
echo $$ > "$SWARMTEST_CGROUP/cgroup.procs"
echo "$SWARMTEST_HOSTNAME" > /proc/sys/kernel/hostname
mount -t tmpfs -o mode=0755,size=256m swarmtest-run /run
mkdir -p /run/lock
exec "$SWARMTEST_DOCKERD" "$@"
`

func (n *Node) daemonArgs() []string {
	args := []string{
		"--data-root", filepath.Join(n.Dir, "root"),
		"--exec-root", "/var/run/docker",
		"--pidfile", filepath.Join(n.Dir, "dockerd.pid"),
		// key.json (the engine ID) is kept beside the config file.
		"--config-file", filepath.Join(n.Dir, "daemon.json"),
		"-H", "unix:///var/run/docker.sock",
		"-H", n.Host(),
		"--cgroup-parent", n.s.cgroups.containerParent(n.Name),
		"--storage-driver", "overlay2",
		"--userland-proxy=false",
		"--shutdown-timeout", "5",
	}
	if n.TLS {
		d := n.s.tls.serverDir(n.Name)
		args = append(args,
			"--tlsverify",
			"--tlscacert", filepath.Join(d, "ca.pem"),
			"--tlscert", filepath.Join(d, "cert.pem"),
			"--tlskey", filepath.Join(d, "key.pem"),
			"-H", n.TCPHost(),
		)
	}
	return append(args, n.s.opts.DaemonArgs...)
}

// start launches dockerd, with env added to its environment, and waits
// until it answers /_ping.
func (n *Node) start(ctx context.Context, env ...string) error {
	if n.Running() {
		return fmt.Errorf("swarmtest: %s: dockerd already running", n.Name)
	}
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(n.Dir, "daemon.json"), []byte("{}\n"), 0o644); err != nil {
		return err
	}
	if err := mkCgroup(n.s.cgroups.daemon(n.Name)); err != nil {
		return err
	}
	_ = os.Remove(n.Socket)
	logf, err := os.OpenFile(n.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "\n==== swarmtest: starting dockerd %s (%s) at %s ====\n", n.engine.Version, n.engine.Dockerd, time.Now().Format(time.RFC3339Nano))
	args := append([]string{
		"--net=/var/run/netns/" + n.Netns, "--",
		tool("unshare"), "--uts", "--mount", "--propagation", "private", "--",
		tool("sh"), "-c", startScript, "dockerd",
	}, n.daemonArgs()...)
	cmd := exec.Command(tool("nsenter"), args...)
	cmd.Env = append(daemonEnv(n.engine.BinDir),
		"SWARMTEST_CGROUP="+n.s.cgroups.daemon(n.Name),
		"SWARMTEST_HOSTNAME="+n.Hostname,
		"SWARMTEST_DOCKERD="+n.engine.Dockerd,
	)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: a Ctrl-C on the terminal reaches the test
		// binary (whose handler tears down) but not the daemons.
		Setpgid: true,
		// If the test binary dies without tearing down, the daemon dies
		// too; the rest of the node is cleared by the next Start.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("swarmtest: %s: start dockerd: %w", n.Name, err)
	}
	done := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.done, n.exitEr = cmd, done, nil
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		n.mu.Lock()
		n.exitEr = err
		n.mu.Unlock()
		close(done)
	}()
	return n.waitPing(ctx, done, 60*time.Second)
}

func (n *Node) waitPing(ctx context.Context, done chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		st, api, err := n.ping(pctx)
		cancel()
		if err == nil && st == http.StatusOK {
			n.mu.Lock()
			n.api = api
			n.mu.Unlock()
			return nil
		}
		select {
		case <-done:
			n.mu.Lock()
			e := n.exitEr
			n.mu.Unlock()
			return fmt.Errorf("swarmtest: %s: dockerd exited (%v) before answering; log tail:\n%s", n.Name, e, n.logTail(30))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("swarmtest: %s: dockerd did not answer /_ping within %v; log tail:\n%s", n.Name, timeout, n.logTail(30))
		}
	}
}

func (n *Node) logTail(lines int) string {
	b, _ := os.ReadFile(n.LogPath())
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// signalDaemon sends SIGKILL to the running dockerd, if any.
func (n *Node) signalDaemon() {
	if pid := n.Pid(); pid != 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func (n *Node) waitExited(timeout time.Duration) bool {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// kill simulates a crash of the whole node: SIGKILL to dockerd, then to
// every other process of the node (containerd, shims, task processes).
func (n *Node) kill() error {
	n.signalDaemon()
	if !n.waitExited(10 * time.Second) {
		return fmt.Errorf("swarmtest: %s: dockerd survived SIGKILL", n.Name)
	}
	return killCgroupTree(n.cgroup(), 20*time.Second)
}

// stop shuts dockerd down gracefully (SIGTERM), then clears what is left of
// the node's processes.
func (n *Node) stop(timeout time.Duration) error {
	if pid := n.Pid(); pid != 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		if !n.waitExited(timeout) {
			n.signalDaemon()
			n.waitExited(5 * time.Second)
		}
	}
	return killCgroupTree(n.cgroup(), 20*time.Second)
}

// Docker runs `/usr/bin/docker -H <node socket> args...` and returns its
// standard output, trimmed. On failure the error includes standard error.
func (n *Node) Docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return n.DockerContext(ctx, nil, args...)
}

// DockerContext is Docker with a context and an optional standard input.
func (n *Node) DockerContext(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, DockerCLIPath, append([]string{"-H", n.Host()}, args...)...)
	cmd.Env = cliEnv(n.s.dir)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return strings.TrimSpace(out.String()), fmt.Errorf("swarmtest: %s: docker %s: %w: %s",
			n.Name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// daemonEnv is the host's environment with binDir (when not empty) and then
// the system directories on PATH (dockerd looks up containerd, runc,
// docker-init and docker-proxy there), without DOCKER_* settings.
func daemonEnv(binDir string) []string {
	var env []string
	path := ""
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "DOCKER_"):
		case strings.HasPrefix(kv, "PATH="):
			path = strings.TrimPrefix(kv, "PATH=")
		default:
			env = append(env, kv)
		}
	}
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if !strings.Contains(":"+path+":", ":"+d+":") {
			path = strings.TrimPrefix(path+":"+d, ":")
		}
	}
	if binDir != "" {
		path = binDir + ":" + path
	}
	return append(env, "PATH="+path)
}

// cliEnv is the environment of docker CLI runs: the host's, without any
// DOCKER_* setting that would redirect or reconfigure the client, with a
// private config directory and the classic builder.
func cliEnv(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DOCKER_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "DOCKER_CONFIG="+filepath.Join(dir, "cli-config"), "DOCKER_BUILDKIT=0")
}

// HTTPClient returns an *http.Client that talks to the node's daemon over
// its unix socket; use it with URLs like http://docker/v1.41/info.
func (n *Node) HTTPClient() *http.Client {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.client == nil {
		sock := n.Socket
		n.client = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
			DisableKeepAlives: true,
		}}
	}
	return n.client
}

func (n *Node) request(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://docker"+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := n.HTTPClient().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// ping sends GET /_ping and returns the status and the Api-Version header.
func (n *Node) ping(ctx context.Context) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := n.HTTPClient().Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Api-Version"), nil
}

// Get sends GET path (e.g. "/v1.41/nodes") to the daemon and returns the
// status code and the body, unchanged.
func (n *Node) Get(ctx context.Context, path string) (int, []byte, error) {
	return n.request(ctx, http.MethodGet, path, nil)
}

// GetJSON sends GET path and decodes a 200 answer into v; any other status
// is an *APIError.
func (n *Node) GetJSON(ctx context.Context, path string, v any) error {
	st, b, err := n.Get(ctx, path)
	if err != nil {
		return err
	}
	if st != http.StatusOK {
		return &APIError{Node: n.Name, Path: path, Status: st, Body: string(b)}
	}
	return json.Unmarshal(b, v)
}

// APIError is a non-200 answer of a daemon.
type APIError struct {
	Node, Path string
	Status     int
	Body       string
}

// Error describes the failed request.
func (e *APIError) Error() string {
	return fmt.Sprintf("swarmtest: %s: GET %s: HTTP %d: %s", e.Node, e.Path, e.Status, strings.TrimSpace(e.Body))
}

// Info is the part of GET /info the harness reads.
type Info struct {
	ID, Name string
	Swarm    struct {
		NodeID           string
		NodeAddr         string
		LocalNodeState   string
		ControlAvailable bool
		Error            string
	}
}

// Info returns the daemon's GET /info.
func (n *Node) Info(ctx context.Context) (*Info, error) {
	var info Info
	if err := n.GetJSON(ctx, "/v"+n.APIVersion()+"/info", &info); err != nil {
		return nil, err
	}
	return &info, nil
}

func ctxTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

var errClosed = errors.New("swarmtest: swarm is closed")
