package alerts_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
)

// Resolved notifications survive an inhibition, on a real Alertmanager
// with the routes and inhibit rules of alerts/alertmanager.yml (timing
// shortened): a node alert that resolves while SwarmQuorumLost mutes it
// (its keep_firing_for ends during the outage) is notified resolved once
// Prometheus re-sends it after the quorum is back, even when another alert
// of the same name, resolved earlier, is re-sent too; and no alert is
// notified twice. The end-to-end TestPipeline (e2e/pipeline_test.go) lost
// such a resolution when alertmanager.yml grouped alerts by [alertname,
// job, cluster].
func TestAlertmanagerResolvedAfterInhibition(t *testing.T) {
	hook := monitoring.StartWebhook(t)
	path, err := monitoring.WriteAlertmanagerConfig(t.TempDir(), monitoring.AlertmanagerOptions{
		Webhook:   func(receiver, _ string) string { return hook.URL + "/" + receiver },
		GroupWait: time.Second, GroupInterval: time.Second, RepeatInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	am := monitoring.StartAlertmanager(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now().Add(-time.Minute)
	type alert struct {
		labels map[string]string
		start  time.Time
		end    time.Time // zero while firing
	}
	node := func(host string) *alert {
		return &alert{labels: map[string]string{"alertname": "SwarmNodeDown", "severity": "warning", "job": "swarm_exporter",
			"node_id": "id-" + host, "hostname": host}, start: began}
	}
	w1, m1 := node("w1"), node("m1")
	ql := &alert{labels: map[string]string{"alertname": "SwarmQuorumLost", "severity": "critical", "job": "swarm_exporter"}}
	// post sends alerts as Prometheus does: a firing alert ends a few
	// minutes ahead, a resolved one when it resolved.
	post := func(as ...*alert) {
		t.Helper()
		var out []monitoring.AMAlert
		for _, a := range as {
			end := a.end
			if end.IsZero() {
				end = time.Now().Add(4 * time.Minute)
			}
			out = append(out, monitoring.AMAlert{Labels: a.labels, StartsAt: a.start, EndsAt: end})
		}
		if err := am.Post(ctx, out...); err != nil {
			t.Fatal(err)
		}
	}
	history := func() []string {
		var out []string
		for _, n := range hook.Notifications() {
			for _, a := range n.Alerts {
				out = append(out, a.Status+" "+a.Labels["alertname"]+"/"+a.Labels["hostname"])
			}
		}
		return out
	}
	// step posts alerts, then waits until the last notification is want
	// ("firing SwarmNodeDown/w1") or, for want "", checks that 3 s pass
	// without one.
	step := func(want string, as ...*alert) {
		t.Helper()
		n := len(history())
		post(as...)
		deadline := time.Now().Add(15 * time.Second)
		if want == "" {
			deadline = time.Now().Add(3 * time.Second)
		}
		for time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			if h := history(); len(h) > n && want != "" && h[len(h)-1] == want {
				return
			}
		}
		if h := history(); want != "" || len(h) != n {
			t.Fatalf("waiting for %q; notified so far: %v", want, h)
		}
	}

	step("firing SwarmNodeDown/w1", w1)
	w1.end = time.Now()
	step("resolved SwarmNodeDown/w1", w1)
	step("firing SwarmNodeDown/m1", m1)
	ql.start = time.Now()
	step("firing SwarmQuorumLost/", ql)
	m1.end = time.Now() // its keep_firing_for ends while the quorum is lost
	step("", m1)
	ql.end = time.Now()
	step("resolved SwarmQuorumLost/", ql)
	// Prometheus re-sends every resolved alert each resend delay (1m) for
	// 15 minutes: w1's first, then m1's.
	step("", w1)
	step("resolved SwarmNodeDown/m1", m1)
	step("", w1, m1)

	want := []string{"firing SwarmNodeDown/w1", "resolved SwarmNodeDown/w1", "firing SwarmNodeDown/m1",
		"firing SwarmQuorumLost/", "resolved SwarmQuorumLost/", "resolved SwarmNodeDown/m1"}
	if got := history(); strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("notified %v,\nwant %v", got, want)
	}
	for _, n := range hook.Notifications() {
		if len(n.Alerts) != 1 {
			t.Errorf("a notification groups %d alerts: %s", len(n.Alerts), fmt.Sprint(n.Alerts))
		}
	}
}
