package swarmtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// formSwarm initialises the swarm on m1 and joins every other swarm node,
// then waits until all are Ready and every manager Reachable.
func (s *Swarm) formSwarm(ctx context.Context) error {
	managers := s.Managers()
	if len(managers) == 0 {
		return nil
	}
	t0 := time.Now()
	first := managers[0]
	args := []string{"swarm", "init", "--advertise-addr", first.IP, "--listen-addr", first.IP + ":2377"}
	if d := s.opts.DispatcherHeartbeat; d > 0 {
		args = append(args, "--dispatcher-heartbeat", d.String())
	}
	if _, err := first.DockerContext(ctx, nil, args...); err != nil {
		return err
	}
	if err := s.refreshID(ctx, first); err != nil {
		return err
	}
	s.opts.Logf("swarmtest: swarm initialised on %s after %v", first.Name, time.Since(t0).Round(time.Millisecond))
	// Workers join all at once; managers one after the other (each raft
	// membership change is a consensus round; concurrent ones only queue).
	workers := s.Workers()
	errc := make(chan error, 1)
	go func() {
		errc <- parallel(workers, func(n *Node) error { return s.join(ctx, n) })
	}()
	var errs []error
	for _, m := range managers[1:] {
		if err := s.join(ctx, m); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, <-errc)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.opts.Logf("swarmtest: %d nodes joined after %v", len(managers)+len(workers), time.Since(t0).Round(time.Millisecond))
	return s.waitNodes(ctx, 2*time.Minute)
}

func (s *Swarm) joinToken(ctx context.Context, role Role) (string, error) {
	m, err := s.liveManager(ctx)
	if err != nil {
		return "", err
	}
	return m.DockerContext(ctx, nil, "swarm", "join-token", "-q", string(role))
}

// join makes n join the swarm with the role n.Role(), through the first
// live manager, retrying a few times.
func (s *Swarm) join(ctx context.Context, n *Node) error {
	var last error
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
		}
		tok, err := s.joinToken(ctx, n.Role())
		if err != nil {
			last = err
			continue
		}
		m, err := s.liveManager(ctx)
		if err != nil {
			last = err
			continue
		}
		jctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		_, err = n.DockerContext(jctx, nil, "swarm", "join", "--token", tok,
			"--advertise-addr", n.IP, "--listen-addr", n.IP+":2377", m.IP+":2377")
		cancel()
		if err == nil {
			return s.refreshID(ctx, n)
		}
		last = err
		if info, ierr := n.Info(ctx); ierr == nil && info.Swarm.NodeID != "" && info.Swarm.LocalNodeState != "inactive" {
			// The join went through although the client gave up.
			return s.refreshID(ctx, n)
		}
	}
	return last
}

func (s *Swarm) refreshID(ctx context.Context, n *Node) error {
	info, err := n.Info(ctx)
	if err != nil {
		return err
	}
	if info.Swarm.NodeID == "" {
		return fmt.Errorf("swarmtest: %s: no swarm node ID after join (state %q, error %q)", n.Name, info.Swarm.LocalNodeState, info.Swarm.Error)
	}
	n.mu.Lock()
	n.id = info.Swarm.NodeID
	n.mu.Unlock()
	return nil
}

// liveManager returns a manager whose daemon answers GET /nodes (a manager
// of a swarm that has a leader), preferring the leader.
func (s *Swarm) liveManager(ctx context.Context) (*Node, error) {
	var last error
	var candidates []*Node
	for _, m := range s.Managers() {
		if m.Running() {
			candidates = append(candidates, m)
		}
	}
	for _, m := range candidates {
		nodes, err := m.listNodes(ctx)
		if err != nil {
			last = err
			continue
		}
		for _, sn := range nodes {
			if sn.Leader {
				if l := s.NodeByID(sn.ID); l != nil && l.Running() {
					return l, nil
				}
			}
		}
		return m, nil
	}
	if last == nil {
		last = errors.New("swarmtest: no manager is running")
	}
	return nil, last
}

// SwarmNode is one entry of GET /nodes, reduced to what tests check.
type SwarmNode struct {
	ID, Hostname, Role, Availability string
	// State is Status.State: ready, down, unknown or disconnected.
	State string
	Addr  string
	// Reachability is ManagerStatus.Reachability ("" for workers).
	Reachability string
	Leader       bool
}

type apiNode struct {
	ID   string
	Spec struct {
		Role, Availability string
	}
	Description struct{ Hostname string }
	Status      struct {
		State, Addr string
	}
	ManagerStatus *struct {
		Leader       bool
		Reachability string
	}
}

func (n *Node) listNodes(ctx context.Context) ([]SwarmNode, error) {
	var raw []apiNode
	if err := n.GetJSON(ctx, "/v"+n.APIVersion()+"/nodes", &raw); err != nil {
		return nil, err
	}
	out := make([]SwarmNode, 0, len(raw))
	for _, r := range raw {
		sn := SwarmNode{ID: r.ID, Hostname: r.Description.Hostname, Role: r.Spec.Role,
			Availability: r.Spec.Availability, State: r.Status.State, Addr: r.Status.Addr}
		if r.ManagerStatus != nil {
			sn.Reachability, sn.Leader = r.ManagerStatus.Reachability, r.ManagerStatus.Leader
		}
		out = append(out, sn)
	}
	return out, nil
}

// ListNodes returns GET /nodes of a live manager.
func (s *Swarm) ListNodes() ([]SwarmNode, error) {
	ctx, cancel := ctxTimeout(10 * time.Second)
	defer cancel()
	m, err := s.liveManager(ctx)
	if err != nil {
		return nil, err
	}
	return m.listNodes(ctx)
}

// SwarmNode returns what a live manager says about n.
func (s *Swarm) SwarmNode(n *Node) (SwarmNode, error) {
	nodes, err := s.ListNodes()
	if err != nil {
		return SwarmNode{}, err
	}
	for _, sn := range nodes {
		if sn.ID == n.ID() {
			return sn, nil
		}
	}
	return SwarmNode{}, fmt.Errorf("swarmtest: %s (%s) is not in the node list", n.Name, n.ID())
}

// Leader returns the manager that is the raft leader.
func (s *Swarm) Leader() (*Node, error) {
	nodes, err := s.ListNodes()
	if err != nil {
		return nil, err
	}
	for _, sn := range nodes {
		if sn.Leader {
			if n := s.NodeByID(sn.ID); n != nil {
				return n, nil
			}
		}
	}
	return nil, errors.New("swarmtest: no leader")
}

// waitNodes waits until every swarm node of the harness is Ready and every
// manager Reachable.
func (s *Swarm) waitNodes(ctx context.Context, timeout time.Duration) error {
	var want []*Node
	for _, n := range s.Nodes() {
		if n.Role() != RoleStandalone {
			want = append(want, n)
		}
	}
	var last string
	err := s.WaitFor(timeout, "all swarm nodes ready", func() (bool, error) {
		nodes, err := s.ListNodes()
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("%+v", nodes)
		byID := map[string]SwarmNode{}
		for _, sn := range nodes {
			byID[sn.ID] = sn
		}
		for _, n := range want {
			sn, ok := byID[n.ID()]
			if !ok || sn.State != "ready" || (sn.Role == "manager" && sn.Reachability != "reachable") {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil && last != "" {
		err = fmt.Errorf("%w; last seen: %s", err, last)
	}
	return err
}

// WaitReady waits until every swarm node is Ready and every manager
// Reachable.
func (s *Swarm) WaitReady(timeout time.Duration) error {
	return s.waitNodes(bg(), timeout)
}

// WaitFor polls cond every 100 ms until it returns true, returns an error,
// or timeout passes; what names the condition in the timeout error.
func (s *Swarm) WaitFor(timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if s.isClosed() {
			return errClosed
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("swarmtest: timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *Swarm) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// WaitNodeState waits until a live manager reports n with Status.State
// state ("ready", "down", "unknown", "disconnected").
func (s *Swarm) WaitNodeState(n *Node, state string, timeout time.Duration) error {
	return s.WaitFor(timeout, fmt.Sprintf("%s state %s", n.Name, state), func() (bool, error) {
		sn, err := s.SwarmNode(n)
		return err == nil && sn.State == state, nil
	})
}

// WaitReachability waits until a live manager reports manager n with
// ManagerStatus.Reachability r ("reachable", "unreachable", "unknown").
func (s *Swarm) WaitReachability(n *Node, r string, timeout time.Duration) error {
	return s.WaitFor(timeout, fmt.Sprintf("%s reachability %s", n.Name, r), func() (bool, error) {
		sn, err := s.SwarmNode(n)
		return err == nil && sn.Reachability == r, nil
	})
}

// WaitLocalState waits until n's own GET /info reports
// Swarm.LocalNodeState state ("active", "locked", "inactive", "pending",
// "error").
func (s *Swarm) WaitLocalState(n *Node, state string, timeout time.Duration) error {
	return s.WaitFor(timeout, fmt.Sprintf("%s local node state %s", n.Name, state), func() (bool, error) {
		ctx, cancel := ctxTimeout(5 * time.Second)
		defer cancel()
		info, err := n.Info(ctx)
		return err == nil && info.Swarm.LocalNodeState == state, nil
	})
}

// Kill simulates a crash of n: SIGKILL to its dockerd, then to every other
// process of the node (containerd, shims, task processes). Its data root is
// kept; Restart brings it back.
func (s *Swarm) Kill(n *Node) error {
	err := n.kill()
	s.writeState()
	return err
}

// Stop shuts n's dockerd down gracefully (SIGTERM, up to 30 s, then
// SIGKILL) and clears the rest of its processes.
func (s *Swarm) Stop(n *Node) error {
	err := n.stop(30 * time.Second)
	s.writeState()
	return err
}

// Restart stops n gracefully if it runs, starts its dockerd again on the
// same data root, and returns once the daemon answers /_ping. A swarm node
// then rejoins by itself (use WaitNodeState to wait for Ready); a manager of
// an autolocked swarm comes back locked (see Unlock).
func (s *Swarm) Restart(ctx context.Context, n *Node) error {
	return s.RestartEnv(ctx, n)
}

// RestartEnv is Restart with env ("NAME=value") added to the environment
// of the daemon, for this start only: e.g. DOCKER_MIN_API_VERSION=1.44,
// with which Docker 29 refuses the older API versions that Docker 29.0
// refused by default.
func (s *Swarm) RestartEnv(ctx context.Context, n *Node, env ...string) error {
	if s.isClosed() {
		return errClosed
	}
	if n.Running() {
		if err := n.stop(30 * time.Second); err != nil {
			return err
		}
	} else if err := killCgroupTree(n.cgroup(), 20*time.Second); err != nil {
		return err
	}
	err := n.start(ctx, env...)
	s.writeState()
	return err
}

// managerDocker runs a docker command on a live manager.
func (s *Swarm) managerDocker(args ...string) (string, error) {
	ctx, cancel := ctxTimeout(2 * time.Minute)
	defer cancel()
	m, err := s.liveManager(ctx)
	if err != nil {
		return "", err
	}
	return m.DockerContext(ctx, nil, args...)
}

// SetAvailability runs `docker node update --availability a` for n
// (active, pause or drain).
func (s *Swarm) SetAvailability(n *Node, a string) error {
	_, err := s.managerDocker("node", "update", "--availability", a, n.ID())
	return err
}

// Drain sets n's availability to drain.
func (s *Swarm) Drain(n *Node) error { return s.SetAvailability(n, "drain") }

// Pause sets n's availability to pause.
func (s *Swarm) Pause(n *Node) error { return s.SetAvailability(n, "pause") }

// Activate sets n's availability to active.
func (s *Swarm) Activate(n *Node) error { return s.SetAvailability(n, "active") }

// Promote makes worker n a manager and waits until it is Reachable.
func (s *Swarm) Promote(n *Node) error {
	if _, err := s.managerDocker("node", "promote", n.ID()); err != nil {
		return err
	}
	n.setRole(RoleManager)
	return s.WaitReachability(n, "reachable", time.Minute)
}

// Demote makes manager n a worker and waits until the managers agree.
func (s *Swarm) Demote(n *Node) error {
	if _, err := s.managerDocker("node", "demote", n.ID()); err != nil {
		return err
	}
	n.setRole(RoleWorker)
	return s.WaitFor(time.Minute, n.Name+" demoted", func() (bool, error) {
		sn, err := s.SwarmNode(n)
		return err == nil && sn.Role == "worker", nil
	})
}

// RemoveImage removes image from n (docker image rm -f).
func (s *Swarm) RemoveImage(n *Node, image string) error {
	_, err := n.Docker("image", "rm", "-f", image)
	return err
}

// CreateService runs `docker service create --no-resolve-image --detach
// args...` on a live manager and returns the new service's ID. Images
// cannot be resolved against a registry here, hence --no-resolve-image.
func (s *Swarm) CreateService(args ...string) (string, error) {
	return s.managerDocker(append([]string{"service", "create", "--no-resolve-image", "--detach"}, args...)...)
}

// UpdateService runs `docker service update --no-resolve-image --detach
// args...` (the last argument names the service) on a live manager.
func (s *Swarm) UpdateService(args ...string) error {
	_, err := s.managerDocker(append([]string{"service", "update", "--no-resolve-image", "--detach"}, args...)...)
	return err
}

// RemoveService removes the named services.
func (s *Swarm) RemoveService(names ...string) error {
	_, err := s.managerDocker(append([]string{"service", "rm"}, names...)...)
	return err
}

// Scale sets the replicas of a replicated service (docker service scale
// --detach service=n).
func (s *Swarm) Scale(service string, n int) error {
	_, err := s.managerDocker("service", "scale", "--detach", service+"="+strconv.Itoa(n))
	return err
}

// Task is one entry of GET /tasks, reduced to what tests check.
type Task struct {
	ID, ServiceID, NodeID string
	Slot                  int
	DesiredState          string
	State, Message, Err   string
}

// Tasks returns the tasks of service (name or ID; every task when empty)
// from a live manager.
func (s *Swarm) Tasks(service string) ([]Task, error) {
	ctx, cancel := ctxTimeout(10 * time.Second)
	defer cancel()
	m, err := s.liveManager(ctx)
	if err != nil {
		return nil, err
	}
	path := "/v" + m.APIVersion() + "/tasks"
	if service != "" {
		path += "?filters=" + url.QueryEscape(`{"service":["`+service+`"]}`)
	}
	var raw []struct {
		ID, ServiceID, NodeID, DesiredState string
		Slot                                int
		Status                              struct{ State, Message, Err string }
	}
	if err := m.GetJSON(ctx, path, &raw); err != nil {
		return nil, err
	}
	out := make([]Task, 0, len(raw))
	for _, r := range raw {
		out = append(out, Task{ID: r.ID, ServiceID: r.ServiceID, NodeID: r.NodeID, Slot: r.Slot,
			DesiredState: r.DesiredState, State: r.Status.State, Message: r.Status.Message, Err: r.Status.Err})
	}
	return out, nil
}

// WaitTasks waits until exactly want tasks of service are in state (e.g.
// "running", "complete", "rejected") with any desired state.
func (s *Swarm) WaitTasks(service, state string, want int, timeout time.Duration) error {
	return s.WaitFor(timeout, fmt.Sprintf("%d %s tasks of %s", want, state, service), func() (bool, error) {
		tasks, err := s.Tasks(service)
		if err != nil {
			return false, nil
		}
		c := 0
		for _, t := range tasks {
			if t.State == state {
				c++
			}
		}
		return c == want, nil
	})
}

// WaitRunning waits until exactly want tasks of service run and are meant to.
func (s *Swarm) WaitRunning(service string, want int, timeout time.Duration) error {
	return s.WaitFor(timeout, fmt.Sprintf("%d running tasks of %s", want, service), func() (bool, error) {
		tasks, err := s.Tasks(service)
		if err != nil {
			return false, nil
		}
		c := 0
		for _, t := range tasks {
			if t.State == "running" && t.DesiredState == "running" {
				c++
			}
		}
		return c == want, nil
	})
}

var unlockKeyRE = regexp.MustCompile(`SWMKEY-1-[A-Za-z0-9+/=_-]+`)

// EnableAutolock turns autolock on and returns the unlock key. Managers
// restarted afterwards (Restart) come back locked until Unlock.
func (s *Swarm) EnableAutolock() (string, error) {
	if _, err := s.managerDocker("swarm", "update", "--autolock=true"); err != nil {
		return "", err
	}
	out, err := s.managerDocker("swarm", "unlock-key", "-q")
	if err != nil {
		return "", err
	}
	key := unlockKeyRE.FindString(out)
	if key == "" {
		return "", fmt.Errorf("swarmtest: no unlock key in %q", out)
	}
	return key, nil
}

// DisableAutolock turns autolock off.
func (s *Swarm) DisableAutolock() error {
	_, err := s.managerDocker("swarm", "update", "--autolock=false")
	return err
}

// Unlock unlocks the locked manager n with key and waits until it is
// active again.
func (s *Swarm) Unlock(n *Node, key string) error {
	ctx, cancel := ctxTimeout(time.Minute)
	defer cancel()
	if _, err := n.DockerContext(ctx, strings.NewReader(key+"\n"), "swarm", "unlock"); err != nil {
		return err
	}
	return s.WaitLocalState(n, "active", time.Minute)
}

// Ping reports whether n's daemon answers GET /_ping with 200.
func (n *Node) Ping(ctx context.Context) bool {
	st, _, err := n.request(ctx, http.MethodGet, "/_ping", nil)
	return err == nil && st == http.StatusOK
}
