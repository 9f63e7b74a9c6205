package swarmtest

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// RequireSwarmTest decides whether a real-swarm test runs:
//
//   - with CI=true, or SWARMTEST=1, missing prerequisites (root,
//     /usr/sbin/dockerd, /usr/bin/docker) fail the test: CI must not
//     silently skip what it was set up to run;
//   - otherwise, without SWARMTEST=1 the test is skipped;
//   - with SWARMTEST=1 and the prerequisites present it runs.
func RequireSwarmTest(t testing.TB) {
	t.Helper()
	missing := checkPrereqs()
	if missing != nil && (os.Getenv("CI") == "true" || os.Getenv("SWARMTEST") == "1") {
		t.Fatalf("real-swarm test cannot run: %v (needs root and the docker.io package)", missing)
	}
	if os.Getenv("SWARMTEST") != "1" {
		t.Skip("real-swarm test: set SWARMTEST=1 to boot Docker swarms on this machine (needs root and docker.io)")
	}
}

// StartForTest calls RequireSwarmTest, starts a swarm with opts (logging to
// t.Logf unless opts.Logf is set) and registers Close with t.Cleanup. If the
// test has a deadline (go test -timeout), the swarm is torn down shortly
// before it, since the timeout panic runs no cleanup. SIGINT and SIGTERM
// tear it down too.
func StartForTest(t testing.TB, opts Options) *Swarm {
	t.Helper()
	RequireSwarmTest(t)
	if opts.Logf == nil {
		// t.Logf panics once the test is over; the watchdog and the signal
		// handler may log later than that.
		var done atomic.Bool
		t.Cleanup(func() { done.Store(true) }) // runs after Close (LIFO)
		opts.Logf = func(format string, args ...any) {
			if done.Load() {
				fmt.Fprintf(os.Stderr, format+"\n", args...)
				return
			}
			t.Logf(format, args...)
		}
	}
	ctx := context.Background()
	var cancel context.CancelFunc
	if tt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := tt.Deadline(); ok {
			ctx, cancel = context.WithDeadline(ctx, dl.Add(-30*time.Second))
			defer cancel()
		}
	}
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("swarmtest.Start: %v", err)
	}
	if tt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := tt.Deadline(); ok {
			s.mu.Lock()
			s.watchdog = time.AfterFunc(time.Until(dl)-15*time.Second, func() {
				fmt.Fprintln(os.Stderr, "swarmtest: test deadline is near: tearing the swarm down")
				_ = s.Close()
			})
			s.mu.Unlock()
		}
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("swarmtest: teardown: %v", err)
		}
	})
	return s
}

// OnEachEngine runs f as one subtest per engine of EngineNames, named after
// the engine ("20.10", "29"), with the engine to put in Options.Engine:
//
//	swarmtest.OnEachEngine(t, func(t *testing.T, eng swarmtest.Engine) {
//		s := swarmtest.StartForTest(t, swarmtest.Options{Engine: eng})
//		…
//	})
//
// SWARMTEST_ENGINE=29 (or 20.10) runs it on that engine only. An engine
// that is not built fails its subtest where RequireSwarmTest would.
func OnEachEngine(t *testing.T, f func(t *testing.T, eng Engine)) {
	t.Helper()
	for _, name := range EngineNames() {
		t.Run(name, func(t *testing.T) {
			RequireSwarmTest(t)
			eng, err := LookupEngine(name)
			if err != nil {
				t.Fatal(err)
			}
			f(t, eng)
		})
	}
}
