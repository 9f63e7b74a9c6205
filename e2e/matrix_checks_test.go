package e2e

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
)

// The alert matrix's checks of the notifications as a whole, its table, and
// its record of what Alertmanager held inhibited (see TestAlertMatrix).
// checkAll checks the notifications as a whole, after both lanes: the
// rows judged again with every notification (a resolution that came after
// its step ended counts now), each notification belongs to a lane's step,
// none repeats an episode, each is routed and annotated as the shipped
// files say; and every panel had data.
func (m *matrix) checkAll(t *testing.T) {
	m.mu.Lock()
	lanes := map[string]*mxLane{}
	for k, v := range m.lanes {
		lanes[k] = v
	}
	m.mu.Unlock()
	now := time.Now()
	attributed := map[string]bool{}
	complete := len(lanes) == len(mxLanes())
	for _, l := range lanes {
		l.mu.Lock()
		steps := append([]*mxStepRun(nil), l.steps...)
		l.mu.Unlock()
		for _, sr := range steps {
			if sr.results[0].To.IsZero() {
				continue
			}
			before := map[*mxResult]map[string]bool{}
			for _, res := range sr.results {
				before[res] = mxSetOf(res.problems())
			}
			m.judge(l, sr, now)
			for _, res := range sr.results {
				for _, p := range res.problems() {
					if !before[res][p] {
						t.Errorf("%s / %s, after its step: %s", l.spec.Cluster, res.Row, p)
					}
				}
				complete = complete && res.status() == "ok"
			}
			for _, d := range m.deliveries(l, sr.results[0].From, sr.results[0].To, now) {
				attributed[mxDeliveryID(d)] = true
			}
		}
	}
	all := m.allDeliveries()
	for _, d := range all {
		if lanes[d.Cluster] == nil {
			t.Errorf("notified %s %s for no lane's cluster", d.Status, monitoring.LabelsKey(d.Labels))
		} else if !attributed[mxDeliveryID(d)] {
			t.Errorf("%s: notified %s %s (started %s) at %s, outside the lane's steps", d.Cluster, d.Status,
				monitoring.LabelsKey(d.Labels), d.StartsAt.Format("15:04:05"), d.At.Format("15:04:05"))
		}
	}
	for _, dup := range mxDuplicates(all) {
		t.Errorf("notified twice: %s", dup)
	}
	m.checkNotifications(t)
	if !complete {
		t.Log("not every row ran and passed: panel coverage not checked")
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, q := range m.queries {
		if len(m.panelData[q.String()]) == 0 {
			t.Errorf("%s returned no data in any row:\n%s", q, q.Expr)
		}
	}
}

func mxSetOf(list []string) map[string]bool {
	out := map[string]bool{}
	for _, s := range list {
		out[s] = true
	}
	return out
}

func mxDeliveryID(d mxDelivery) string {
	return fmt.Sprintf("%d %s %s", d.N, d.Status, monitoring.LabelsKey(d.Labels))
}

// checkNotifications checks each notification's receiver (amtool's
// routing of its labels through the copied alertmanager.yml), payload and
// annotations.
func (m *matrix) checkNotifications(t *testing.T) {
	routes := map[string]string{}
	for i, n := range m.hook.Notifications() {
		if n.TruncatedAlerts > 0 {
			t.Errorf("notification %d truncated %d alerts", i, n.TruncatedAlerts)
		}
		if want := "/" + n.Receiver; n.Path != want {
			t.Errorf("notification %d for receiver %s was posted to %s", i, n.Receiver, n.Path)
		}
		for _, a := range n.Alerts {
			key := monitoring.LabelsKey(a.Labels)
			recv, ok := routes[key]
			if !ok {
				recv = m.route(t, a.Labels)
				routes[key] = recv
			}
			if recv != n.Receiver {
				t.Errorf("%s was notified to %s; the shipped routes send it to %s", key, n.Receiver, recv)
			}
			m.checkAnnotations(t, a)
		}
	}
}

// route asks amtool which receiver the copied configuration routes labels to.
func (m *matrix) route(t *testing.T, labels map[string]string) string {
	args := []string{"config", "routes", "test", "--config.file=" + m.amPath}
	for _, k := range mxSortedKeys(labels) {
		args = append(args, fmt.Sprintf("%s=%q", k, labels[k]))
	}
	out, err := execOutputTrim(m.amtool, args...)
	if err != nil {
		t.Errorf("amtool %v: %v: %s", args, err, out)
	}
	return out
}

var mxRunbookAnchor = regexp.MustCompile(`^https://github\.com/swarm-exporter/swarm_exporter/blob/main/docs/runbook\.md#[a-z0-9-]+$`)

func (m *matrix) checkAnnotations(t *testing.T, a monitoring.NotifiedAlert) {
	name := a.Labels["alertname"]
	rule, ok := m.rules[name]
	if !ok {
		t.Errorf("notified an alert that is not shipped: %s", a.Key())
		return
	}
	for k, v := range rule.Labels {
		if !strings.Contains(v, "{{") && a.Labels[k] != v {
			t.Errorf("%s: label %s=%q, the rule says %q", a.Key(), k, a.Labels[k], v)
		}
	}
	if a.Labels["job"] != mxJob || a.Labels["cluster"] == "" {
		t.Errorf("%s: the target labels job=%s and cluster are not kept", a.Key(), mxJob)
	}
	for _, k := range []string{"summary", "description", "runbook_url"} {
		v := a.Annotations[k]
		if strings.TrimSpace(v) == "" {
			t.Errorf("%s: no %s annotation", a.Key(), k)
		}
		if pipeTemplateJunk.MatchString(v) {
			t.Errorf("%s: annotation %s did not render cleanly: %q", a.Key(), k, v)
		}
	}
	// The page names its object.
	text := a.Annotations["summary"] + " " + a.Annotations["description"]
	for _, l := range []string{"hostname", "service_name"} {
		if v := a.Labels[l]; v != "" && !strings.Contains(text, v) {
			t.Errorf("%s: neither the summary nor the description names %s %s: %q", a.Key(), l, v, text)
		}
	}
	if want := "#" + strings.ToLower(name); !mxRunbookAnchor.MatchString(a.Annotations["runbook_url"]) || !strings.HasSuffix(a.Annotations["runbook_url"], want) {
		t.Errorf("%s: runbook_url %q does not lead to the runbook's %s", a.Key(), a.Annotations["runbook_url"], want)
	}
}

// report logs the whole matrix.
func (m *matrix) report(t *testing.T) {
	m.mu.Lock()
	order := append([]string(nil), m.laneOrder...)
	lanes := m.lanes
	m.mu.Unlock()
	sort.Strings(order)
	var rows []mxTableRow
	for _, c := range order {
		l := lanes[c]
		l.mu.Lock()
		results := append([]*mxResult(nil), l.results...)
		l.mu.Unlock()
		rows = append(rows, mxTableRows(results)...)
	}
	t.Logf("the alert matrix (%v in all):\n%s", time.Since(m.start).Round(time.Second), mxTable(rows))
}

// mxMuteLog records which alerts Alertmanager holds inhibited, polling
// its API every second.
type mxMuteLog struct {
	mu   sync.Mutex
	seen []mxMuteSeen
	cur  []monitoring.AMAlert // the last poll of the first Alertmanager
}

type mxMuteSeen struct {
	At     time.Time
	Labels map[string]string
}

func startMuteLog(t *testing.T, ams []*monitoring.AlertmanagerServer) *mxMuteLog {
	ml := &mxMuteLog{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			for i, am := range ams {
				c, cc := context.WithTimeout(ctx, 5*time.Second)
				alerts, err := am.Alerts(c)
				cc()
				if err != nil {
					continue
				}
				now := time.Now()
				ml.mu.Lock()
				if i == 0 {
					ml.cur = alerts
				}
				for _, a := range alerts {
					if a.Status != nil && a.Status.State == "suppressed" && len(a.Status.InhibitedBy) > 0 {
						ml.seen = append(ml.seen, mxMuteSeen{At: now, Labels: a.Labels})
					}
				}
				ml.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ml
}

// current returns the alerts Alertmanager holds now (not resolved) for a
// cluster.
func (ml *mxMuteLog) current(cluster string) []monitoring.AMAlert {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	var out []monitoring.AMAlert
	for _, a := range ml.cur {
		if a.Labels["cluster"] == cluster {
			out = append(out, a)
		}
	}
	return out
}

func (ml *mxMuteLog) saw(l *mxLane, mu mxMute, from, to time.Time) bool {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	for _, s := range ml.seen {
		if s.Labels["cluster"] == l.spec.Cluster && !s.At.Before(from) && s.At.Before(to) &&
			s.Labels["alertname"] == mu.Alert && l.objOf(s.Labels) == mu.Obj {
			return true
		}
	}
	return false
}

func (ml *mxMuteLog) during(l *mxLane, from, to time.Time) []string {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	set := map[string]bool{}
	for _, s := range ml.seen {
		if s.Labels["cluster"] == l.spec.Cluster && !s.At.Before(from) && s.At.Before(to) {
			set[mxMute{Alert: s.Labels["alertname"], Obj: l.objOf(s.Labels)}.String()] = true
		}
	}
	return mxSortedKeys(set)
}
