package e2e

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
)

// The alert matrix's bookkeeping, apart from any I/O: what a row expects,
// the notifications it got, the cells that compare them, and the table.
// TestAlertMatrixCells checks it without a swarm.

// mxObj is what an alert is about: the swarm, a node (by its harness name,
// m1 or w2), a service, or an exporter instance (by the node it reads).
type mxObj struct {
	Kind string // swarm, node, service, instance
	Name string
}

func (o mxObj) String() string {
	if o.Kind == "swarm" || o.Kind == "" {
		return "swarm"
	}
	return o.Kind + " " + o.Name
}

func swarmObj() mxObj              { return mxObj{Kind: "swarm"} }
func nodeObj(name string) mxObj    { return mxObj{Kind: "node", Name: name} }
func serviceObj(name string) mxObj { return mxObj{Kind: "service", Name: name} }
func instObj(node string) mxObj    { return mxObj{Kind: "instance", Name: node} }

// mxExpect is one alert a row must notify: how often firing and resolved,
// and how soon after the fault (Fault names it; the row's first when
// empty) and after the swarm healed (Heal names it; the row's last when
// empty).
type mxExpect struct {
	Alert, Severity  string
	Obj              mxObj
	Firing, Resolved int
	Fault, Heal      string
	// FireWithin bounds the time from the fault to the first firing
	// notification; ResolveWithin the time from the heal to the resolved
	// one. Zero takes the matrix's defaults (see mxBounds).
	FireWithin, ResolveWithin time.Duration
	// Says are words the firing notification's summary or description
	// must contain (case-insensitive).
	Says []string
}

// page expects alert to be notified firing once and resolved once.
func page(alert, severity string, obj mxObj) mxExpect {
	return mxExpect{Alert: alert, Severity: severity, Obj: obj, Firing: 1, Resolved: 1}
}

// after names the fault and heal the expectation's latencies count from.
func (e mxExpect) after(fault, heal string) mxExpect {
	e.Fault, e.Heal = fault, heal
	return e
}

func (e mxExpect) key() string { return mxKey(e.Alert, e.Severity, e.Obj) }

func (e mxExpect) String() string {
	return fmt.Sprintf("%s (%s, %s)", e.Alert, e.Severity, e.Obj)
}

func mxKey(alert, severity string, obj mxObj) string {
	return alert + "|" + severity + "|" + obj.String()
}

// mxMute is an alert that Alertmanager must hold inhibited at some time
// during the row.
type mxMute struct {
	Alert string
	Obj   mxObj
}

func (m mxMute) String() string { return fmt.Sprintf("%s (%s)", m.Alert, m.Obj) }

// mxDelivery is one alert of one webhook notification, reduced to what the
// matrix compares.
type mxDelivery struct {
	N        int // index of the notification at the webhook
	At       time.Time
	Status   string // firing, resolved
	Alert    string
	Severity string
	Cluster  string
	Obj      mxObj
	StartsAt time.Time
	Labels   map[string]string
	// Text is the summary and the description.
	Text string
}

// mxMark is a named moment of a row: a fault, or the swarm healed.
type mxMark struct {
	Name string
	At   time.Time
	// Began is when the heal began (zero for a fault): a resolution
	// before it came in the middle of the outage; one between Began and
	// At came as the swarm healed.
	Began time.Time
}

// began returns when a heal began.
func (m mxMark) began() time.Time {
	if m.Began.IsZero() {
		return m.At
	}
	return m.Began
}

// mxNone is a latency that was not measured: nothing was delivered.
const mxNone = time.Duration(math.MinInt64)

// mxBounds gives the default latency bounds of an expectation.
type mxBounds struct {
	// Fire returns the bound from fault to first firing notification of
	// an alert.
	Fire func(alert string) time.Duration
	// Resolve is the bound from heal to resolved notification.
	Resolve time.Duration
}

// mxCell is one line of a row in the table: an expected alert and what
// was delivered for it, or a delivered alert that no expectation names.
type mxCell struct {
	Exp              *mxExpect // nil: not expected
	Alert, Severity  string
	Obj              mxObj
	Firing, Resolved int
	// Fire and Resolve are the latencies (mxNone when nothing was
	// delivered; a resolution that came while the swarm healed is
	// negative);
	// FireBound and ResolveBound what they were held to.
	Fire, Resolve           time.Duration
	FireBound, ResolveBound time.Duration
	Problems                []string
}

func (c mxCell) ok() bool { return len(c.Problems) == 0 }

func markAt(marks []mxMark, name string, first bool) (mxMark, bool) {
	if len(marks) == 0 {
		return mxMark{}, false
	}
	if name == "" {
		if first {
			return marks[0], true
		}
		return marks[len(marks)-1], true
	}
	for _, m := range marks {
		if m.Name == name {
			return m, true
		}
	}
	return mxMark{}, false
}

// lastBefore returns the last mark at or before t.
func lastBefore(marks []mxMark, t time.Time) (time.Time, bool) {
	var at time.Time
	for _, m := range marks {
		if !m.At.After(t) && m.At.After(at) {
			at = m.At
		}
	}
	return at, !at.IsZero()
}

// mxEvaluate compares a row's expectations with the deliveries attributed
// to it: one cell per expectation, then one per unexpected alert.
func mxEvaluate(exp []mxExpect, ds []mxDelivery, faults, heals []mxMark, b mxBounds) []mxCell {
	byKey := map[string][]mxDelivery{}
	var order []string
	for _, d := range ds {
		k := mxKey(d.Alert, d.Severity, d.Obj)
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], d)
	}
	var cells []mxCell
	expected := map[string]bool{}
	for i := range exp {
		e := &exp[i]
		expected[e.key()] = true
		c := mxCell{Exp: e, Alert: e.Alert, Severity: e.Severity, Obj: e.Obj, Fire: mxNone, Resolve: mxNone}
		c.FireBound = e.FireWithin
		if c.FireBound == 0 && b.Fire != nil {
			c.FireBound = b.Fire(e.Alert)
		}
		c.ResolveBound = e.ResolveWithin
		if c.ResolveBound == 0 {
			c.ResolveBound = b.Resolve
		}
		fault, hasFault := markAt(faults, e.Fault, true)
		heal, hasHeal := markAt(heals, e.Heal, false)
		// A row names its fault and heal by the names it marks them with: a
		// name never marked would silently drop the bounds.
		if e.Fault != "" && !hasFault {
			c.Problems = append(c.Problems, fmt.Sprintf("no fault named %q was marked", e.Fault))
		}
		if e.Heal != "" && !hasHeal {
			c.Problems = append(c.Problems, fmt.Sprintf("no heal named %q was marked", e.Heal))
		}
		var firstFire, firstResolve time.Time
		for _, d := range byKey[e.key()] {
			switch d.Status {
			case "firing":
				c.Firing++
				if hasFault && d.At.Before(fault.At) {
					c.Problems = append(c.Problems, fmt.Sprintf("notified firing at %s, before the fault", d.At.Format("15:04:05")))
				}
				if firstFire.IsZero() {
					firstFire = d.At
					for _, w := range e.Says {
						if !strings.Contains(strings.ToLower(d.Text), strings.ToLower(w)) {
							c.Problems = append(c.Problems, fmt.Sprintf("the notification does not say %q: %q", w, d.Text))
						}
					}
				}
			case "resolved":
				c.Resolved++
				if !hasHeal || d.At.Before(heal.began()) {
					c.Problems = append(c.Problems, fmt.Sprintf("notified resolved at %s, before the heal began", d.At.Format("15:04:05")))
				} else if firstResolve.IsZero() {
					firstResolve = d.At
				}
			}
		}
		if c.Firing != e.Firing {
			c.Problems = append(c.Problems, fmt.Sprintf("notified firing %d times, want %d", c.Firing, e.Firing))
		}
		if c.Resolved != e.Resolved {
			c.Problems = append(c.Problems, fmt.Sprintf("notified resolved %d times, want %d", c.Resolved, e.Resolved))
		}
		if !firstFire.IsZero() && hasFault {
			c.Fire = firstFire.Sub(fault.At)
			if c.FireBound > 0 && c.Fire > c.FireBound {
				c.Problems = append(c.Problems, fmt.Sprintf("first notified %v after the fault, bound %v", mxDur(c.Fire), mxDur(c.FireBound)))
			}
		}
		if !firstResolve.IsZero() {
			c.Resolve = firstResolve.Sub(heal.At)
			if c.ResolveBound > 0 && c.Resolve > c.ResolveBound {
				c.Problems = append(c.Problems, fmt.Sprintf("resolved %v after the swarm healed, bound %v", mxDur(c.Resolve), mxDur(c.ResolveBound)))
			}
		}
		cells = append(cells, c)
	}
	for _, k := range order {
		if expected[k] {
			continue
		}
		d0 := byKey[k][0]
		c := mxCell{Alert: d0.Alert, Severity: d0.Severity, Obj: d0.Obj, Fire: mxNone, Resolve: mxNone}
		// Timed from the last fault before it, and the last heal.
		for _, d := range byKey[k] {
			if d.Status == "firing" {
				c.Firing++
				if at, ok := lastBefore(faults, d.At); ok && c.Fire == mxNone {
					c.Fire = d.At.Sub(at)
				}
			} else {
				c.Resolved++
				if at, ok := lastBefore(heals, d.At); ok && c.Resolve == mxNone {
					c.Resolve = d.At.Sub(at)
				}
			}
		}
		c.Problems = append(c.Problems, "not expected")
		cells = append(cells, c)
	}
	return cells
}

// mxDuplicates finds deliveries of one alert episode (labels and start)
// with one status that arrived more than once: a page sent twice.
func mxDuplicates(ds []mxDelivery) []string {
	seen := map[string][]int{}
	var order []string
	for _, d := range ds {
		var kv []string
		for k, v := range d.Labels {
			kv = append(kv, k+"="+v)
		}
		sort.Strings(kv)
		k := d.Status + " " + strings.Join(kv, ",") + " since " + d.StartsAt.Format(time.RFC3339Nano)
		if _, ok := seen[k]; !ok {
			order = append(order, k)
		}
		seen[k] = append(seen[k], d.N)
	}
	var out []string
	for _, k := range order {
		if n := seen[k]; len(n) > 1 {
			out = append(out, fmt.Sprintf("%s: in notifications %v", k, n))
		}
	}
	return out
}

// mxDur renders a latency for the table: whole seconds, minutes past 99 s.
func mxDur(d time.Duration) string {
	if d == mxNone {
		return "-"
	}
	d = d.Round(time.Second)
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	if d < 100*time.Second {
		return fmt.Sprintf("%s%ds", sign, int(d.Seconds()))
	}
	return fmt.Sprintf("%s%dm%02ds", sign, int(d.Minutes()), int(d.Seconds())%60)
}

// mxTableRow is one row of the printed matrix.
type mxTableRow struct {
	Lane, Row string
	Status    string // ok, FAIL, not run
	Cells     []mxCell
	Muted     []string // alerts Alertmanager held inhibited during the row
	Notes     []string
}

// mxTable renders the matrix: one line per expected or delivered alert,
// a cell that fails marked with ✗ and its problems after the table.
func mxTable(rows []mxTableRow) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "LANE\tROW\tALERT (SEVERITY, OBJECT)\tEXPECTED\tDELIVERED\tFAULT→FIRE\tHEAL→RESOLVE\t")
	var problems []string
	for _, r := range rows {
		lane, name := r.Lane, r.Row
		first := true
		line := func(alert, exp, got, fire, resolve, mark string) {
			if !first {
				lane, name = "", ""
			}
			first = false
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", lane, name, alert, exp, got, fire, resolve, mark)
		}
		if r.Status == "not run" {
			line("(not run)", "", "", "", "", "")
			continue
		}
		if len(r.Cells) == 0 {
			mark := ""
			if r.Status != "ok" {
				mark = "✗"
			}
			line("no notification", "none", "none", "", "", mark)
		}
		for _, c := range r.Cells {
			exp := "-"
			name := c.Alert + " (" + c.Severity + ", " + c.Obj.String() + ")"
			if c.Exp != nil {
				exp = fmt.Sprintf("%dF %dR", c.Exp.Firing, c.Exp.Resolved)
			} else {
				name = "UNEXPECTED " + name
			}
			fire, resolve := mxDur(c.Fire), mxDur(c.Resolve)
			if c.Exp != nil && c.Exp.Firing > 0 {
				fire += " ≤" + mxDur(c.FireBound)
			}
			if c.Exp != nil && c.Exp.Resolved > 0 {
				resolve += " ≤" + mxDur(c.ResolveBound)
			}
			mark := ""
			if !c.ok() {
				mark = "✗"
				problems = append(problems, fmt.Sprintf("%s / %s / %s: %s", r.Lane, r.Row, name, strings.Join(c.Problems, "; ")))
			}
			line(name, exp, fmt.Sprintf("%dF %dR", c.Firing, c.Resolved), fire, resolve, mark)
		}
		if len(r.Muted) > 0 {
			line("  muted: "+strings.Join(r.Muted, ", "), "", "", "", "", "")
		}
		for _, n := range r.Notes {
			line("  "+n, "", "", "", "", "")
		}
		if r.Status != "ok" && allOK(r.Cells) {
			why := r.Status
			for _, n := range r.Notes {
				if m, ok := strings.CutPrefix(n, "✗ "); ok {
					why = m
				}
			}
			problems = append(problems, fmt.Sprintf("%s / %s: %s", r.Lane, r.Row, why))
		}
	}
	w.Flush()
	if len(problems) > 0 {
		b.WriteString("\n✗ cells:\n")
		for _, p := range problems {
			b.WriteString("  " + p + "\n")
		}
	}
	return b.String()
}

func allOK(cells []mxCell) bool {
	for _, c := range cells {
		if !c.ok() {
			return false
		}
	}
	return true
}

// TestAlertMatrixCells checks the matrix's verdicts without a swarm: a
// row passes only with exactly the expected notifications, in time.
func TestAlertMatrixCells(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	faults := []mxMark{{Name: "kill w1", At: at(0)}}
	heals := []mxMark{{Name: "kill w1", Began: at(290), At: at(300)}}
	exp := []mxExpect{page("SwarmNodeDown", "warning", nodeObj("w1"))}
	d := func(s int, status, alert, severity string, obj mxObj) mxDelivery {
		return mxDelivery{At: at(s), Status: status, Alert: alert, Severity: severity, Obj: obj, StartsAt: at(10),
			Labels: map[string]string{"alertname": alert, "o": obj.String()}}
	}
	bounds := mxBounds{Fire: func(string) time.Duration { return 3 * time.Minute }, Resolve: 2 * time.Minute}
	cases := []struct {
		name string
		ds   []mxDelivery
		want []string // problems, cell by cell, joined
	}{
		{"as expected", []mxDelivery{
			d(140, "firing", "SwarmNodeDown", "warning", nodeObj("w1")),
			d(320, "resolved", "SwarmNodeDown", "warning", nodeObj("w1")),
		}, []string{""}},
		{"resolved as the swarm healed", []mxDelivery{
			d(140, "firing", "SwarmNodeDown", "warning", nodeObj("w1")),
			d(295, "resolved", "SwarmNodeDown", "warning", nodeObj("w1")),
		}, []string{""}},
		{"nothing", nil, []string{"notified firing 0 times, want 1; notified resolved 0 times, want 1"}},
		{"late fire, late resolve", []mxDelivery{
			d(200, "firing", "SwarmNodeDown", "warning", nodeObj("w1")),
			d(430, "resolved", "SwarmNodeDown", "warning", nodeObj("w1")),
		}, []string{"first notified 3m20s after the fault, bound 3m00s; resolved 2m10s after the swarm healed, bound 2m00s"}},
		{"twice, and resolved in the outage", []mxDelivery{
			d(140, "firing", "SwarmNodeDown", "warning", nodeObj("w1")),
			d(200, "resolved", "SwarmNodeDown", "warning", nodeObj("w1")),
			d(250, "firing", "SwarmNodeDown", "warning", nodeObj("w1")),
			d(310, "resolved", "SwarmNodeDown", "warning", nodeObj("w1")),
		}, []string{"notified resolved at 12:03:20, before the heal began; notified firing 2 times, want 1; notified resolved 2 times, want 1"}},
		{"wrong severity, and an unexpected alert", []mxDelivery{
			d(140, "firing", "SwarmNodeDown", "critical", nodeObj("w1")),
			d(150, "firing", "SwarmClusterStatusWarning", "warning", swarmObj()),
		}, []string{"notified firing 0 times, want 1; notified resolved 0 times, want 1", "not expected", "not expected"}},
	}
	for _, c := range cases {
		cells := mxEvaluate(exp, c.ds, faults, heals, bounds)
		var got []string
		for _, cell := range cells {
			got = append(got, strings.Join(cell.Problems, "; "))
		}
		if strings.Join(got, " | ") != strings.Join(c.want, " | ") {
			t.Errorf("%s: problems\n  %q\nwant\n  %q", c.name, got, c.want)
		}
		table := mxTable([]mxTableRow{{Lane: "29", Row: "worker killed", Status: "ok", Cells: cells}})
		if ok := c.want[0] == "" && len(c.want) == 1; ok == strings.Contains(table, "✗") {
			t.Errorf("%s: the table marks a failure: %v, want %v:\n%s", c.name, !ok, ok, table)
		}
	}
	asExpected := []mxDelivery{
		d(140, "firing", "SwarmNodeDown", "warning", nodeObj("w1")),
		d(320, "resolved", "SwarmNodeDown", "warning", nodeObj("w1")),
	}
	misnamed := []mxExpect{page("SwarmNodeDown", "warning", nodeObj("w1")).after("kill w2", "kill w2")}
	if got := mxEvaluate(misnamed, asExpected, faults, heals, bounds)[0].Problems; !slices.Contains(got, `no fault named "kill w2" was marked`) ||
		!slices.Contains(got, `no heal named "kill w2" was marked`) {
		t.Errorf("an expectation after a fault and heal never marked: problems %q", got)
	}
	dup := []mxDelivery{d(140, "firing", "A", "warning", swarmObj()), d(141, "firing", "A", "warning", swarmObj())}
	dup[1].N = 1
	if got := mxDuplicates(dup); len(got) != 1 {
		t.Errorf("one alert notified firing twice in one episode: duplicates %v", got)
	}
	t.Logf("a failing row in the table:\n%s", mxTable([]mxTableRow{{Lane: "29", Row: "worker killed", Status: "FAIL",
		Cells: mxEvaluate(exp, cases[5].ds, faults, heals, bounds)}}))
}

// TestAlertMatrixForCopy checks how the matrix shortens the for: of the
// alerts (without a swarm), and logs what it makes of the shipped ones.
func TestAlertMatrixForCopy(t *testing.T) {
	alert := func(name, expr, f string) monitoring.Rule { return monitoring.Rule{Alert: name, Expr: expr, For: f} }
	got, err := mxForCopy([]monitoring.Rule{
		alert("Blip", "x == 0", "1m"),
		alert("Node", "x == 1", "2m"),
		alert("Down", "x == 2", "3m"),
		alert("AlsoDown", "y == 2", "3m"),
		alert("Slow", "x == 3", "5m"),
		alert("Rejected", "max_over_time(x[2m]) > 0", "5m"),
		alert("Loop", "loop:rate5m > 0", "15m"),
		alert("Rare", "changes(x[1h]) > 3", "5m"),
	}, []monitoring.Rule{{Record: "loop:rate5m", Expr: "rate(loops_total[5m])"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{
		"Blip": time.Minute, "Node": 2 * time.Minute, // kept
		"Down": 2*time.Minute + 12*time.Second, "AlsoDown": 2*time.Minute + 12*time.Second,
		"Slow":     2*time.Minute + 36*time.Second,
		"Rejected": 3 * time.Minute, // its window (2m) and a minute
		"Loop":     6 * time.Minute, // its recording rule's window (5m) and a minute
		"Rare":     2*time.Minute + 36*time.Second,
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: the copy's for: is %v, want %v", name, got[name], w)
		}
	}
	// The order is kept: with a shipped for: of 3m against 5m's shorter
	// copies, the gap holds.
	got, err = mxForCopy([]monitoring.Rule{alert("A", "a", "3m"), alert("B", "max_over_time(b[3m])", "3m10s"), alert("C", "c", "3m20s")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !(got["A"] < got["B"] && got["B"]+mxForGap <= got["C"]) {
		t.Errorf("the order of the shipped for: is lost: %v", got)
	}

	var alerts, recording []monitoring.Rule
	for _, files := range []func() ([]string, error){monitoring.AlertRuleFiles, monitoring.RecordingRuleFiles} {
		paths, err := files()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range paths {
			rf, err := monitoring.LoadRuleFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range rf.Groups {
				for _, r := range g.Rules {
					if r.Alert != "" {
						alerts = append(alerts, r)
					} else {
						recording = append(recording, r)
					}
				}
			}
		}
	}
	copies, err := mxForCopy(alerts, recording)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, r := range alerts {
		lines = append(lines, fmt.Sprintf("%s %s→%s", r.Alert, r.For, mxDur(copies[r.Alert])))
	}
	t.Logf("the shipped alerts' for: in the matrix's copy: %s", strings.Join(lines, ", "))
}

// TestAlertMatrixDeployFlags checks that the matrix runs the exporters with
// deploy/exporter.yml's flags, --read.max-age scaled to its scrape
// interval (without a swarm).
func TestAlertMatrixDeployFlags(t *testing.T) {
	flags, err := mxDeployFlags(mxScrape)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the matrix's exporters run with %q", flags)
	found := false
	for _, f := range flags {
		if v, ok := strings.CutPrefix(f, "--read.max-age="); ok {
			found = true
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 || d >= mxScrape {
				t.Errorf("%s: not just under the matrix's scrape interval %v", f, mxScrape)
			}
		}
	}
	if !found {
		t.Error("the matrix's exporters run without deploy/exporter.yml's --read.max-age")
	}
}
