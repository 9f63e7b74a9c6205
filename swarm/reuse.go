package swarm

import (
	"context"
	"fmt"
	"time"
)

// The leader's cost. Every read of the services and of the task list is
// served by the swarm's leader: a follower forwards them to it. With one
// exporter per manager and several Prometheus servers scraping each, the
// leader would serve (managers × servers) full reads per scrape interval.
// Two settings bring that down to one:
//
//   - Config.MaxAge: a read that succeeded is reused by the calls that
//     arrive less than MaxAge after it started, so that the scrapes of
//     several Prometheus servers share one read per interval;
//   - Config.Services = ServicesLeader: only the instance whose manager is
//     the leader reads the services and the tasks (while the leader is
//     drained, and so runs no exporter, one stand-in manager does:
//     Snapshot.readsServices); the others read the cheap parts (/_ping,
//     /info, /nodes) and report the cluster and the nodes.

// ServicesMode says which reads fetch the services and the task list.
type ServicesMode int

const (
	// ServicesAlways: every read fetches them.
	ServicesAlways ServicesMode = iota
	// ServicesLeader: a read fetches them when the manager read through is
	// the leader, or its stand-in while the leader is drained, as the
	// previous read's /nodes said or, failing that, as this read's /nodes
	// says (then they are fetched after /nodes, in the same read).
	ServicesLeader
)

// ServicesModes are the names of the modes, for flags.
var ServicesModes = []string{"always", "leader"}

func (m ServicesMode) String() string {
	if m >= 0 && int(m) < len(ServicesModes) {
		return ServicesModes[m]
	}
	return fmt.Sprintf("ServicesMode(%d)", int(m))
}

// ParseServicesMode parses "always" or "leader".
func ParseServicesMode(s string) (ServicesMode, error) {
	for i, name := range ServicesModes {
		if s == name {
			return ServicesMode(i), nil
		}
	}
	return 0, fmt.Errorf("unknown services mode %q: want one of %v", s, ServicesModes)
}

// Read returns a snapshot of the swarm, for a scrape: the last read's when
// it succeeded and started less than Config.MaxAge ago, otherwise a new
// read (shared with the concurrent calls) whose services and tasks are
// left out when Config.Services says so.
//
// The read runs under the Reader's own timeout and is not cancelled when
// one caller gives up. Read itself returns by ctx's deadline: a caller whose
// deadline passes first gets a snapshot whose Err says so.
func (r *Reader) Read(ctx context.Context) *Snapshot {
	return r.readFor(ctx, false)
}

// ReadFull is Read for callers that need the services whatever
// Config.Services says (the status API and the status command): it reuses
// the last read only if that read fetched them, and otherwise reads them.
func (r *Reader) ReadFull(ctx context.Context) *Snapshot {
	return r.readFor(ctx, true)
}

func (r *Reader) readFor(ctx context.Context, full bool) *Snapshot {
	if full {
		// Every read that starts from now on fetches the services.
		r.wantFull.Add(1)
		defer r.wantFull.Add(-1)
	}
	if snap := r.reusable(full); snap != nil {
		r.metrics.cacheHits.Inc()
		return r.scope(snap, full)
	}
	snap := r.shared(ctx)
	if full && snap.NoServices {
		// It joined a read that had started without the services before
		// this call: the next one fetches them.
		snap = r.shared(ctx)
	}
	return r.scope(snap, full)
}

// scope gives a scrape the read without the services and tasks that it
// fetched for status requests only (Snapshot.forStatusOnly): what a
// follower's scrapes report does not depend on the status requests it
// serves.
func (r *Reader) scope(snap *Snapshot, full bool) *Snapshot {
	if full || !snap.forStatusOnly {
		return snap
	}
	view := *snap
	view.NoServices, view.forStatusOnly = true, false
	view.Services, view.Tasks = nil, Tasks{}
	return &view
}

// shared joins the read in flight or starts one.
func (r *Reader) shared(ctx context.Context) *Snapshot {
	ch := r.group.DoChan("read", func() (any, error) {
		// A read that ended between the caller's look at the last read and
		// this call may be reusable: the last read is stored before the
		// key is released, so looking again here closes that gap.
		if snap := r.reusable(r.wantFull.Load() > 0); snap != nil {
			r.metrics.cacheHits.Inc()
			return snap, nil
		}
		return r.sharedRead(), nil
	})
	select {
	case res := <-ch:
		return res.Val.(*Snapshot)
	case <-ctx.Done():
		return &Snapshot{ReadAt: time.Now(), Err: &Error{
			Kind: KindTimeout,
			Err:  fmt.Errorf("the scrape's deadline passed before the Docker API answered: %w", ctx.Err()),
			Hint: "the Docker daemon at " + r.host + " is slow: check its load, or raise Prometheus's scrape_timeout",
		}}
	}
}

// reusable returns the last read's snapshot if a caller may have it: the
// read succeeded (a swarm without leader counts), started less than MaxAge
// ago, and fetched the services if full. A failed read is never reused: it
// cost the daemon little (an error answer, or a timeout that the calls
// arriving meanwhile shared), and the next call should see the daemon
// recover as soon as it does, with docker_swarm_up meaning what it always
// meant.
func (r *Reader) reusable(full bool) *Snapshot {
	if r.maxAge <= 0 {
		return nil
	}
	snap := r.last.Load()
	if snap == nil || snap.Err != nil || time.Since(snap.ReadAt) >= r.maxAge {
		return nil
	}
	if full && snap.NoServices {
		return nil
	}
	return snap
}

// fetchServices says whether a read that starts now fetches the services
// and tasks from the start.
func (r *Reader) fetchServices() bool {
	return r.servicesMode == ServicesAlways || r.wantFull.Load() > 0 || r.readsServices.Load()
}
