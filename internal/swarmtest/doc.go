// Package swarmtest boots real Docker swarms on one Linux machine for
// end-to-end tests of the exporter.
//
// Every node is a real dockerd — Debian's docker.io 20.10 (/usr/sbin/dockerd)
// or Docker 29 built from Go modules by scripts/build-engine.sh (see Engine;
// Options.Engine and Options.NodeEngines pick them per node, SWARMTEST_ENGINE
// for whole runs) — running in
//
//   - its own network namespace (named PREFIX-NODE, e.g. swx-m1), wired to a
//     Linux bridge in the host namespace (PREFIX-br0) by a veth pair; the host
//     side of the bridge has the first address of the subnet (10.213.0.1/24 by
//     default), so the host reaches every node's address directly;
//   - its own UTS namespace, so each node has its own hostname (PREFIX-NODE),
//     which is what `docker node ls` shows;
//   - its own private mount namespace, in which a tmpfs is mounted over /run.
//     The node's daemon therefore has a private /var/run/docker.sock (a task
//     that bind-mounts it reaches its OWN node), a private exec root and
//     private netns/mount points that vanish with its processes. The daemon
//     also listens on a second unix socket on the shared filesystem
//     (BASEDIR/PREFIX/NODE/docker.sock) that the harness and the exporter under
//     test use from the host;
//   - its own data root, pidfile and config directory under BASEDIR/PREFIX/NODE;
//   - its own cgroup subtree (/swarmtest-PREFIX/NODE in the pids hierarchy on
//     cgroup v1), which the daemon also uses as --cgroup-parent, so that every
//     process of a node (dockerd, containerd, shims, task processes) can be
//     found and killed, even ones left by an earlier, crashed run.
//
// Start boots a topology (3 managers + 2 workers by default), Close tears it
// down, and the fault verbs (Kill, Restart, Drain, Promote, EnableAutolock, …)
// change it while a test runs. Swarms of different prefixes and subnets run
// at once, in one process or several; runs of the same prefix or subnet
// queue behind each other (flocks on /run/swarmtest-PREFIX.lock and
// /run/swarmtest-subnet-SUBNET.lock). Start first clears
// what an earlier run with the same prefix left behind and refuses to start
// if it cannot.
//
// The tests of this package, and tests that use it, need root and docker.io;
// see RequireSwarmTest for when they run, skip or fail:
//
//	SWARMTEST=1 go test ./internal/swarmtest
//
// A test uses it like this:
//
//	s := swarmtest.StartForTest(t, swarmtest.Options{}) // 3M+2W, torn down by t.Cleanup
//	m1 := s.Node("m1")
//	// point the exporter at m1.Host() (unix:///var/lib/swarmtest/swx/m1/docker.sock)
//	s.CreateService("--name", "web", "--replicas", "3", swarmtest.WorkloadImage)
//	s.Kill(s.Node("w1"))
//	s.WaitNodeState(s.Node("w1"), "down", time.Minute)
//
// and on each engine, as subtests "20.10" and "29":
//
//	swarmtest.OnEachEngine(t, func(t *testing.T, eng swarmtest.Engine) {
//		s := swarmtest.StartForTest(t, swarmtest.Options{Engine: eng})
//		…
//	})
//
// On this machine a 3-manager + 2-worker boot takes about 3 s (image build
// included) and a teardown about 0.6 s; a killed node shows down after
// 10-15 s. `go run ./internal/swarmtest/cmd/swarmup` keeps a swarm up for
// manual work, and `swarmup -cleanup` clears leftovers.
package swarmtest
