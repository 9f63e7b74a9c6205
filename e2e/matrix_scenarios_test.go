package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// The rows of the alert matrix (see TestAlertMatrix) and what each must
// notify: docs/runbook.md's "What pages when" table, event by event.

// The runbook's events (the first column of its What pages when table)
// that the rows produce.
const (
	evWorkerDown    = "A worker goes down"
	evManagerDown   = "One manager of three goes down, with its exporter"
	evQuorumLost    = "Two managers of three go down: the quorum is lost"
	evElection      = "The leader restarts: an election"
	evRollingUpdate = "A service is updated (rolling update)"
	evScaledToZero  = "A service is scaled to 0 replicas"
	evDrainedWorker = "A drained worker is shut down for maintenance"
	evImageMissing  = "A service's image is missing everywhere"
	evCrashLoop     = "A service's tasks crash again and again"
	evLocked        = "A manager restarts locked (autolock)"
	evExportersStop = "Every exporter stops"
)

var mxRowEvents = []string{evWorkerDown, evManagerDown, evQuorumLost, evElection, evRollingUpdate, evScaledToZero,
	evDrainedWorker, evImageMissing, evCrashLoop, evLocked, evExportersStop}

// mxLanes are the two swarms and their steps. Each lane's rows run one
// after the other; rows of one step run at once (they touch different
// services). The lanes split the rows so that both end in about the same
// time; the Docker 29 lane has the quorum loss and the locked manager,
// where the engines differ most.
//
// Every service runs on nodes that no row of its lane faults: a node
// fault replaces the tasks it hosts, which the crash-loop alert counts
// over 5 minutes (pending, never firing, after one burst); bursts of
// row after row would add up to a crash loop that no single event
// makes. Task replacements are the crash-loop and rolling-update rows'
// business.
func mxLanes() []mxLaneSpec {
	return []mxLaneSpec{
		{
			Name: "20.10", Engine: swarmtest.EngineDebian, Prefix: "mx20", Subnet: "10.229.20.0/24", Cluster: "swarm-20.10",
			// The rows fault the workers only.
			Pin:   func(s *swarmtest.Swarm) (string, int) { return "node.role==manager", len(s.Managers()) },
			Setup: func(l *mxLane) { mxBaseServices(l, true) },
			Steps: []mxStep{
				{Name: "healthy", Rows: []*mxRow{mxHealthy()}},
				{Name: "services", Rows: []*mxRow{mxRollingUpdate(), mxScaledToZero(), mxImageMissing(), mxCrashLoop()}},
				{Name: "worker killed", Rows: []*mxRow{mxWorkerKilled()}},
				{Name: "drained node stopped", Rows: []*mxRow{mxDrainedStopped()}},
			},
		},
		{
			Name: "29", Engine: swarmtest.EngineCurrent, Prefix: "mx29", Subnet: "10.229.29.0/24", Cluster: "swarm-29",
			// The rows fault the managers and w1.
			Pin:   func(s *swarmtest.Swarm) (string, int) { return "node.hostname==" + s.Node("w2").Hostname, 1 },
			Setup: func(l *mxLane) { mxBaseServices(l, false) },
			Steps: []mxStep{
				{Name: "healthy", Rows: []*mxRow{mxHealthy()}},
				{Name: "quorum lost", Rows: []*mxRow{mxQuorumLost()}},
				{Name: "manager killed", Rows: []*mxRow{mxManagerKilled()}},
				{Name: "leader election", Rows: []*mxRow{mxLeaderElection()}},
				{Name: "manager locked", Rows: []*mxRow{mxManagerLocked()}},
				{Name: "exporters stopped", Rows: []*mxRow{mxExportersStopped()}},
			},
		},
	}
}

// mxBaseServices creates the services every lane runs: a replicated
// service of a stack, a global one and a job; the lane with the services
// rows also gets the services those rows change.
func mxBaseServices(l *mxLane, serviceRows bool) {
	img := swarmtest.WorkloadImage
	specs := [][]string{
		{"--name", "web", "--replicas", "4", "--label", "com.docker.stack.namespace=shop", "--restart-delay", "1s", img},
		{"--name", "agent", "--mode", "global", "--restart-delay", "1s", img},
		{"--name", "batch", "--mode", "replicated-job", "--replicas", "2", "--restart-condition", "none", img, "exit", "0"},
	}
	running := map[string]int{"web": 4, "agent": l.pinned}
	if serviceRows {
		specs = append(specs,
			[]string{"--name", "upd", "--replicas", "3", "--label", "com.docker.stack.namespace=shop", "--restart-delay", "1s", img},
			[]string{"--name", "zero", "--replicas", "2", "--restart-delay", "1s", img},
		)
		running["upd"], running["zero"] = 3, 2
	}
	for _, s := range specs {
		faultMust(l.t, l.createService(s...))
	}
	for svc, n := range running {
		faultMust(l.t, l.s.WaitRunning(svc, n, 2*time.Minute))
	}
	faultMust(l.t, l.s.WaitTasks("batch", "complete", 2, 2*time.Minute))
}

// mxHealthy: the swarm came up and nothing fired while it did; every
// dashboard query runs and every dashboard variable finds values.
func mxHealthy() *mxRow {
	return &mxRow{Name: "healthy", Run: func(x *mxRun) {
		c := x.l.spec.Cluster
		x.m.prom.WaitUntil(x.t, "every instance reads the swarm",
			fmt.Sprintf(`count(docker_swarm_up{cluster=%q} == 1)`, c), 2*time.Minute,
			func(r []monitoring.Sample) bool { return len(r) == 1 && int(r[0].Value) == len(x.l.inst) })
		since := int(time.Since(x.l.began).Seconds()) + 1
		if res := pipeQ(x.t, x.m.prom, fmt.Sprintf(`count_over_time(ALERTS{cluster=%q, alertstate="firing"}[%ds])`, c, since)); len(res) > 0 {
			x.t.Errorf("%s: alerts fired while the swarm came up healthy: %s", c, monitoring.FormatSamples(res))
		}
		x.panels()
		x.variables()
	}}
}

// mxWorkerKilled: a worker crashes; its node alert pages at warning.
func mxWorkerKilled() *mxRow {
	return &mxRow{Name: "worker killed, restarted", Run: func(x *mxRun) {
		w := x.Node("w1")
		x.Runbook(evWorkerDown, mxBind{Node: "w1"})
		x.Fault("kill w1", func() error { return x.Kill(w) }, func() error { return x.Restart(w) })
		x.Hold()
		x.Heal("kill w1", x.Whole)
	}}
}

// mxDrainedStopped: a node drained for maintenance, then shut down.
func mxDrainedStopped() *mxRow {
	return &mxRow{
		Name:      "worker drained, then stopped",
		CouldFire: []string{"SwarmNodeDown", "SwarmClusterStatusWarning", "SwarmNodeFlapping"},
		Run: func(x *mxRun) {
			w := x.Node("w2")
			s := x.l.s
			x.Runbook(evDrainedWorker, mxBind{Node: "w2"})
			x.Fault("drain and stop w2", func() error {
				if err := s.Drain(w); err != nil {
					return err
				}
				if err := mxWaitNoTasks(s, w); err != nil {
					return err
				}
				return s.Stop(w)
			}, func() error {
				if err := x.Restart(w); err != nil {
					return err
				}
				if err := s.WaitNodeState(w, "ready", 2*time.Minute); err != nil {
					return err
				}
				return s.Activate(w)
			})
			x.Hold()
			x.Heal("drain and stop w2", x.Whole)
		},
	}
}

// mxWaitNoTasks waits until no task runs on a drained node.
func mxWaitNoTasks(s *swarmtest.Swarm, n *swarmtest.Node) error {
	return s.WaitFor(time.Minute, "no task running on "+n.Name, func() (bool, error) {
		tasks, err := s.Tasks("")
		if err != nil {
			return false, nil
		}
		for _, t := range tasks {
			if t.NodeID == n.ID() && t.State == "running" {
				return false, nil
			}
		}
		return true, nil
	})
}

// mxExportersStopped: every exporter of the swarm stops.
func mxExportersStopped() *mxRow {
	return &mxRow{Name: "every exporter stopped", Run: func(x *mxRun) {
		x.Runbook(evExportersStop, mxBind{})
		x.Fault("stop the exporters", func() error {
			for _, in := range x.l.inst {
				if err := x.l.stopInstance(in); err != nil {
					return err
				}
			}
			return nil
		}, func() error {
			for _, in := range x.l.inst {
				if in.E == nil {
					x.l.startInstance(in)
				}
			}
			return nil
		})
		x.Hold()
		x.Heal("stop the exporters", nil)
	}}
}

// mxRollingUpdate: a rolling update of every task of a service, one at a
// time: no page.
func mxRollingUpdate() *mxRow {
	return &mxRow{
		Name:      "rolling update",
		Services:  []string{"upd"},
		CouldFire: []string{"SwarmServiceDown", "SwarmServiceDegraded", "SwarmServiceCrashLooping", "SwarmServiceUpdatePaused"},
		Run: func(x *mxRun) {
			s := x.l.s
			x.Runbook(evRollingUpdate, mxBind{Service: "upd"})
			x.Fault("update upd", func() error {
				return s.UpdateService("--update-parallelism", "1", "--update-delay", "20s", "--env-add", "ROLL=1", "upd")
			}, nil)
			x.Heal("update upd", func() error { return mxWaitUpdate(x, "upd", "completed") })
			x.Hold()
		},
	}
}

// mxWaitUpdate waits until a service's UpdateStatus.State is state.
func mxWaitUpdate(x *mxRun, service, state string) error {
	s := x.l.s
	return s.WaitFor(5*time.Minute, service+" update "+state, func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, m := range s.Managers() {
			if !m.Running() {
				continue
			}
			var svc struct {
				UpdateStatus *struct{ State string }
			}
			if err := m.GetJSON(ctx, "/v"+m.APIVersion()+"/services/"+service, &svc); err != nil {
				continue
			}
			return svc.UpdateStatus != nil && svc.UpdateStatus.State == state, nil
		}
		return false, nil
	})
}

// mxScaledToZero: a service scaled to 0 on purpose, then back.
func mxScaledToZero() *mxRow {
	return &mxRow{
		Name:      "scaled to 0 and back",
		Services:  []string{"zero"},
		CouldFire: []string{"SwarmServiceDown", "SwarmServiceDegraded"},
		Run: func(x *mxRun) {
			s := x.l.s
			x.Runbook(evScaledToZero, mxBind{Service: "zero"})
			x.Fault("scale zero to 0", func() error { return s.Scale("zero", 0) }, func() error { return s.Scale("zero", 2) })
			x.Hold()
			x.Heal("scale zero to 0", x.Running("zero", 2))
		},
	}
}

// mxImageMissing: a service whose image exists on no node.
func mxImageMissing() *mxRow {
	return &mxRow{
		Name:     "image missing everywhere",
		Services: []string{"ghost"},
		Run: func(x *mxRun) {
			s := x.l.s
			x.Runbook(evImageMissing, mxBind{Service: "ghost"})
			x.Fault("create ghost", func() error {
				return x.l.createService("--name", "ghost", "--replicas", "2", "--restart-delay", "1s", "nosuchimage:1")
			}, func() error { return s.UpdateService("--image", swarmtest.WorkloadImage, "ghost") })
			x.Hold()
			x.Heal("create ghost", x.Running("ghost", 2))
		},
	}
}

// mxCrashLoop: a service whose tasks exit after 5 seconds and are
// restarted, over and over: running most of the time.
func mxCrashLoop() *mxRow {
	return &mxRow{
		Name:     "crash loop",
		Services: []string{"crash"},
		Run: func(x *mxRun) {
			s := x.l.s
			x.Runbook(evCrashLoop, mxBind{Service: "crash"})
			x.Fault("create crash", func() error {
				return x.l.createService("--name", "crash", "--replicas", "2", "--restart-delay", "1s",
					swarmtest.WorkloadImage, "exit", "1", "5")
			}, func() error { return s.UpdateService("--args", "serve", "crash") })
			x.Hold()
			x.Heal("create crash", x.Running("crash", 2))
		},
	}
}

// mxQuorumLost: a worker dies, then two managers of three: the quorum is
// lost while a node alert fires. The node alert is held (never resolved
// in the middle of the outage) and muted while the quorum is lost; both
// resolve when their cause is gone.
func mxQuorumLost() *mxRow {
	return &mxRow{Name: "quorum lost while a worker is down, regained", Run: func(x *mxRun) {
		w := x.Node("w1")
		leader, followers := x.Leader()
		victims := []*swarmtest.Node{leader, followers[1]}
		x.Runbook(evWorkerDown, mxBind{Node: "w1", Fault: "kill w1", Heal: "kill w1"})
		x.Runbook(evQuorumLost, mxBind{Fault: "kill 2 managers", Heal: "kill 2 managers"})
		// "The node and service alerts already firing are held and muted
		// until a leader is back; they resolve then if they no longer
		// hold": SwarmNodeDown for w1 must be muted, and resolved only
		// after w1 is back (a resolution before its heal fails the row).
		x.Mute(mxMute{Alert: "SwarmNodeDown", Obj: nodeObj("w1")})
		x.Fault("kill w1", func() error { return x.Kill(w) }, func() error { return x.Restart(w) })
		x.Hold()
		x.Fault("kill 2 managers", func() error { return x.Kill(victims...) }, func() error { return x.Restart(victims...) })
		x.Note("killed %s (the leader) and %s with their exporters; %s survives", victims[0].Name, victims[1].Name, followers[0].Name)
		x.Hold()
		x.Heal("kill 2 managers", func() error { return mxManagersWhole(x.l.s) })
		x.Heal("kill w1", x.Whole)
	}}
}

// mxManagersWhole waits until every manager is reachable under a leader.
func mxManagersWhole(s *swarmtest.Swarm) error {
	return s.WaitFor(3*time.Minute, "every manager reachable under a leader", func() (bool, error) {
		nodes, err := s.ListNodes()
		if err != nil {
			return false, nil
		}
		leader, n := false, 0
		for _, sn := range nodes {
			if sn.Role == "manager" {
				n++
				if sn.Reachability != "reachable" {
					return false, nil
				}
				leader = leader || sn.Leader
			}
		}
		return leader && n == len(s.Managers()), nil
	})
}

// mxManagerKilled: a manager that is not the leader crashes with its
// exporter.
func mxManagerKilled() *mxRow {
	return &mxRow{Name: "manager killed, restarted", Run: func(x *mxRun) {
		_, followers := x.Leader()
		f := followers[0]
		x.Runbook(evManagerDown, mxBind{Node: f.Name})
		x.Fault("kill "+f.Name, func() error { return x.Kill(f) }, func() error { return x.Restart(f) })
		x.Hold()
		x.Heal("kill "+f.Name, x.Whole)
	}}
}

// mxLeaderElection: the leader crashes with its exporter and comes back
// promptly, once another manager was elected: an election pages nobody.
func mxLeaderElection() *mxRow {
	return &mxRow{
		Name: "leader killed, restarted promptly",
		CouldFire: []string{"SwarmNodeDown", "SwarmManagerUnreachable", "SwarmQuorumLost", "SwarmNoLeader", "SwarmClusterStatusKO",
			"SwarmClusterStatusWarning", "SwarmQuorumAtRisk", "SwarmServicesNotRead", "SwarmLeaderChangesFrequent",
			"SwarmExporterTargetDown", "SwarmExporterCannotRead", "SwarmExporterDown"},
		Run: func(x *mxRun) {
			leader, _ := x.Leader()
			s := x.l.s
			x.Runbook(evElection, mxBind{Node: leader.Name})
			x.Fault("kill the leader "+leader.Name, func() error { return x.Kill(leader) }, func() error { return x.Restart(leader) })
			faultMust(x.t, s.WaitFor(time.Minute, "a new leader", func() (bool, error) {
				l, err := s.Leader()
				return err == nil && l != leader, nil
			}))
			x.Heal("kill the leader "+leader.Name, x.Whole)
			x.Hold()
		},
	}
}

// mxManagerLocked: autolock is on and a manager restarts: it stays locked
// until unlocked. Its exporter keeps running, as one run outside the
// swarm's tasks (docker run --restart, systemd) does (a task of the
// global service would not start on a locked manager).
func mxManagerLocked() *mxRow {
	return &mxRow{Name: "manager locked after a restart", Run: func(x *mxRun) {
		s := x.l.s
		_, followers := x.Leader()
		f := followers[0]
		key, err := s.EnableAutolock()
		faultMust(x.t, err)
		x.t.Cleanup(func() {
			if err := s.DisableAutolock(); err != nil {
				x.t.Errorf("disabling autolock: %v", err)
			}
		})
		x.Runbook(evLocked, mxBind{Node: f.Name, Instance: f.Name})
		// "saying that it is locked and how to unlock it"
		x.Says("SwarmNodeDown", "locked", "unlock")
		x.Fault("restart "+f.Name+" locked", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := s.Restart(ctx, f); err != nil {
				return err
			}
			return s.WaitLocalState(f, "locked", time.Minute)
		}, func() error { return s.Unlock(f, key) })
		x.Hold()
		x.Heal("restart "+f.Name+" locked", x.Whole)
	}}
}

// variables checks that every dashboard variable's query finds values.
func (x *mxRun) variables() {
	ds, err := monitoring.LoadDashboards()
	faultMust(x.t, err)
	for _, d := range ds {
		sels, err := monitoring.VariableSelectors(d, mxVars())
		faultMust(x.t, err)
		for name, sel := range sels {
			if res := pipeQ(x.t, x.m.prom, sel); len(res) == 0 {
				x.t.Errorf("%s: variable %s: %s finds nothing", filepath.Base(d.File), name, sel)
			}
		}
	}
}
