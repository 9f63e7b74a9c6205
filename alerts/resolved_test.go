package alerts_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
)

// amTimeline drives a real Alertmanager, configured with the routes and
// inhibit rules of alerts/alertmanager.yml (timing shortened), the way
// Prometheus does, and records what its webhook receives.
type amTimeline struct {
	t    *testing.T
	am   *monitoring.AlertmanagerServer
	hook *monitoring.Webhook
	ctx  context.Context
}

type amAlert struct {
	labels     map[string]string
	start, end time.Time // end zero while firing
}

func newAMTimeline(t *testing.T) *amTimeline {
	hook := monitoring.StartWebhook(t)
	path, err := monitoring.WriteAlertmanagerConfig(t.TempDir(), monitoring.AlertmanagerOptions{
		Webhook:   func(receiver, _ string) string { return hook.URL + "/" + receiver },
		GroupWait: time.Second, GroupInterval: time.Second, RepeatInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &amTimeline{t: t, am: monitoring.StartAlertmanager(t, path), hook: hook, ctx: ctx}
}

// post sends alerts as Prometheus does: a firing alert ends a few minutes
// ahead, a resolved one when it resolved.
func (a *amTimeline) post(as ...*amAlert) {
	a.t.Helper()
	var out []monitoring.AMAlert
	for _, x := range as {
		end := x.end
		if end.IsZero() {
			end = time.Now().Add(4 * time.Minute)
		}
		out = append(out, monitoring.AMAlert{Labels: x.labels, StartsAt: x.start, EndsAt: end})
	}
	if err := a.am.Post(a.ctx, out...); err != nil {
		a.t.Fatal(err)
	}
}

func (a *amTimeline) history() []string {
	var out []string
	for _, n := range a.hook.Notifications() {
		for _, x := range n.Alerts {
			out = append(out, x.Status+" "+x.Labels["alertname"]+"/"+x.Labels["hostname"])
		}
	}
	return out
}

// step posts alerts, then waits until the notifications received since
// include each of want ("firing SwarmNodeDown/w1") or, for no want, checks
// that 3 s pass without one.
func (a *amTimeline) step(want []string, as ...*amAlert) {
	a.t.Helper()
	n := len(a.history())
	a.post(as...)
	deadline := time.Now().Add(15 * time.Second)
	if len(want) == 0 {
		deadline = time.Now().Add(3 * time.Second)
	}
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if len(want) == 0 {
			continue
		}
		got := map[string]bool{}
		for _, h := range a.history()[n:] {
			got[h] = true
		}
		all := true
		for _, w := range want {
			all = all && got[w]
		}
		if all {
			return
		}
	}
	if h := a.history(); len(want) != 0 || len(h) != n {
		a.t.Fatalf("waiting for %q; notified so far: %v", want, h)
	}
}

func notified(s ...string) []string { return s }

func swarmAlert(name, severity, host string) *amAlert {
	l := map[string]string{"alertname": name, "severity": severity, "job": "swarm_exporter", "swarm_labels": `job="swarm_exporter"`}
	if host != "" {
		l["node_id"], l["hostname"] = "id-"+host, host
	}
	return &amAlert{labels: l, start: time.Now().Add(-time.Minute)}
}

// Why the rules hold alerts through an outage: on a real Alertmanager with
// the shipped routes and inhibit rules, an alert that resolves while it is
// muted is dropped from its group without a notification. Prometheus
// re-sends a resolved alert for 15 minutes only: when the outage lasts
// longer, nothing re-sends it after the mute ends, and its resolution is
// never delivered.
func TestAlertmanagerDropsResolutionsWhileMuted(t *testing.T) {
	t.Parallel()
	a := newAMTimeline(t)
	m1 := swarmAlert("SwarmNodeDown", "warning", "m1")
	ql := swarmAlert("SwarmQuorumLost", "critical", "")
	a.step(notified("firing SwarmNodeDown/m1"), m1)
	ql.start = time.Now()
	a.step(notified("firing SwarmQuorumLost/"), ql)
	m1.end = time.Now() // resolves while muted (what keep_firing_for used to do)
	a.step(nil, m1)
	ql.end = time.Now()
	a.step(notified("resolved SwarmQuorumLost/"), ql)
	// More than 15 minutes after it resolved, Prometheus no longer sends
	// m1: nothing else reaches Alertmanager.
	time.Sleep(3 * time.Second)
	want := []string{"firing SwarmNodeDown/m1", "firing SwarmQuorumLost/", "resolved SwarmQuorumLost/"}
	if got := a.history(); strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("notified %v,\nwant %v (Alertmanager now delivers resolutions dropped while muted: the holds may be revisited)", got, want)
	}
}

// What the rules do instead: an alert muted by an outage keeps firing
// while the outage lasts (the rules hold it: holds.test.yml), however long,
// and resolves after it. Its resolution is delivered once, and no alert is
// notified twice.
func TestAlertmanagerHeldAlertResolvedAfterOutage(t *testing.T) {
	t.Parallel()
	a := newAMTimeline(t)
	w1, m1 := swarmAlert("SwarmNodeDown", "warning", "w1"), swarmAlert("SwarmNodeDown", "warning", "m1")
	ql := swarmAlert("SwarmQuorumLost", "critical", "")
	a.step(notified("firing SwarmNodeDown/w1"), w1)
	w1.end = time.Now()
	a.step(notified("resolved SwarmNodeDown/w1"), w1)
	a.step(notified("firing SwarmNodeDown/m1"), m1)
	ql.start = time.Now()
	a.step(notified("firing SwarmQuorumLost/"), ql)
	// The outage: Prometheus keeps re-sending m1 firing (held) and w1
	// resolved, for as long as it lasts.
	for i := 0; i < 3; i++ {
		a.step(nil, ql, m1, w1)
	}
	// A leader is back: the quorum alert resolves, and m1, which is fine
	// now, at the same evaluation or the next.
	ql.end = time.Now()
	m1.end = time.Now()
	a.step(notified("resolved SwarmNodeDown/m1", "resolved SwarmQuorumLost/"), ql, m1)
	a.step(nil, ql, m1, w1)

	got := a.history()
	for _, want := range []string{"firing SwarmNodeDown/w1", "resolved SwarmNodeDown/w1", "firing SwarmNodeDown/m1",
		"firing SwarmQuorumLost/", "resolved SwarmQuorumLost/", "resolved SwarmNodeDown/m1"} {
		n := 0
		for _, g := range got {
			if g == want {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%q notified %d times; notified: %v", want, n, got)
		}
	}
	if len(got) != 6 {
		t.Errorf("notified %v, want 6 notifications", got)
	}
	for _, n := range a.hook.Notifications() {
		if len(n.Alerts) != 1 {
			t.Errorf("a notification groups %d alerts: %s", len(n.Alerts), fmt.Sprint(n.Alerts))
		}
	}
}

// TestHeldThroughQuorumLoss runs the shipped rules on a real Prometheus
// (durations shortened) that scrapes three real exporters reading a
// captured swarm, and notifies a real Alertmanager with the shipped routes
// and inhibit rules: a manager is down (SwarmNodeDown fires), then the
// quorum is lost (per-node series vanish: SwarmNodeDown is held, firing in
// Prometheus and muted by SwarmQuorumLost, never resolved), then a leader
// is back with that manager up and a worker down: the manager's alert is
// notified resolved within seconds, the quorum alert too, and the worker's
// fires.
func TestHeldThroughQuorumLoss(t *testing.T) {
	t.Parallel()
	monitoring.Tool(t, "prometheus")
	bin := monitoring.BuildExporter(t)
	hook := monitoring.StartWebhook(t)
	amPath, err := monitoring.WriteAlertmanagerConfig(t.TempDir(), monitoring.AlertmanagerOptions{
		Webhook:   func(receiver, _ string) string { return hook.URL + "/" + receiver },
		GroupWait: time.Second, GroupInterval: time.Second, RepeatInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	am := monitoring.StartAlertmanager(t, amPath)
	fake := monitoring.FakeDocker(t, "manager-down")
	var targets []string
	for i := 0; i < 3; i++ {
		targets = append(targets, monitoring.StartExporter(t, bin, fake.Host, "--health.election-grace=1s").Addr)
	}
	path, err := monitoring.WriteConfig(t.TempDir(), monitoring.ConfigOptions{
		Targets: targets, Alertmanagers: []string{am.Addr}, ScrapeInterval: time.Second, EvaluationInterval: time.Second,
		Durations: monitoring.Scale(0.02, time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	prom := monitoring.StartPrometheus(t, path, "--rules.alert.resend-delay=1s")

	deliveries := func(status, alert, host string) int {
		n := 0
		for _, x := range hook.Notifications() {
			for _, a := range x.Alerts {
				if a.Status == status && a.Labels["alertname"] == alert && a.Labels["hostname"] == host {
					n++
				}
			}
		}
		return n
	}
	wait := func(what string, timeout time.Duration, cond func() bool) time.Time {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !cond() {
			if time.Now().After(deadline) {
				var got []string
				for _, x := range hook.Notifications() {
					for _, a := range x.Alerts {
						got = append(got, a.Status+" "+a.Labels["alertname"]+"/"+a.Labels["hostname"])
					}
				}
				t.Fatalf("after %v, not %s; notified: %v", timeout, what, got)
			}
			time.Sleep(200 * time.Millisecond)
		}
		return time.Now()
	}
	nodeDownFiring := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := prom.Query(ctx, `ALERTS{alertname="SwarmNodeDown", hostname="swx-m3", alertstate="firing"}`)
		return err == nil && len(res) == 1
	}

	wait("SwarmNodeDown for swx-m3 notified", time.Minute, func() bool { return deliveries("firing", "SwarmNodeDown", "swx-m3") == 1 })
	switchFixture(t, fake, "quorum-lost")
	lost := time.Now()
	wait("SwarmQuorumLost notified", time.Minute, func() bool { return deliveries("firing", "SwarmQuorumLost", "") == 1 })
	// The outage goes on: the node alert keeps firing in Prometheus, is
	// muted in Alertmanager and never notified resolved.
	for time.Since(lost) < 20*time.Second {
		if !nodeDownFiring() {
			t.Fatal("SwarmNodeDown for swx-m3 stopped firing while the quorum was lost")
		}
		time.Sleep(time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	held, err := am.Alerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	muted := false
	for _, a := range held {
		if a.Labels["alertname"] == "SwarmNodeDown" && a.Status != nil && len(a.Status.InhibitedBy) > 0 {
			muted = true
		}
	}
	if !muted {
		t.Error("Alertmanager does not mute SwarmNodeDown while SwarmQuorumLost fires")
	}
	if n := deliveries("resolved", "SwarmNodeDown", "swx-m3"); n != 0 {
		t.Fatalf("SwarmNodeDown for swx-m3 notified resolved %d times during the outage", n)
	}
	switchFixture(t, fake, "worker-down")
	back := time.Now()
	resolved := wait("SwarmNodeDown for swx-m3 notified resolved", 30*time.Second, func() bool { return deliveries("resolved", "SwarmNodeDown", "swx-m3") == 1 })
	t.Logf("SwarmNodeDown for swx-m3 notified resolved %v after the leader came back", resolved.Sub(back).Round(100*time.Millisecond))
	wait("SwarmQuorumLost notified resolved", 30*time.Second, func() bool { return deliveries("resolved", "SwarmQuorumLost", "") == 1 })
	wait("SwarmNodeDown for swx-w2 notified", 30*time.Second, func() bool { return deliveries("firing", "SwarmNodeDown", "swx-w2") == 1 })
	time.Sleep(5 * time.Second)
	for _, c := range []struct{ status, alert, host string }{
		{"firing", "SwarmNodeDown", "swx-m3"}, {"resolved", "SwarmNodeDown", "swx-m3"},
		{"firing", "SwarmQuorumLost", ""}, {"resolved", "SwarmQuorumLost", ""}, {"firing", "SwarmNodeDown", "swx-w2"},
	} {
		if n := deliveries(c.status, c.alert, c.host); n != 1 {
			t.Errorf("%s %s/%s notified %d times, want once", c.status, c.alert, c.host, n)
		}
	}
	for _, x := range hook.Notifications() {
		for _, a := range x.Alerts {
			switch a.Labels["alertname"] {
			case "SwarmNodeDown", "SwarmQuorumLost":
			default:
				t.Errorf("notified %s %s, which this swarm's faults do not explain", a.Status, a.Key())
			}
		}
	}
}
