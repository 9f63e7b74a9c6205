package dashboards_test

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
)

// neutral are the colours a value that is missing may take: grey, or the
// theme's text colour.
var neutral = map[string]bool{"#808080": true, "text": true, "transparent": true}

func fieldDefaults(p map[string]any) map[string]any {
	fc, _ := p["fieldConfig"].(map[string]any)
	d, _ := fc["defaults"].(map[string]any)
	return d
}

// mapsStatuses reports whether a list of value mappings shows the
// statuses (0 OK, 1 WARNING, 2 KO) or states.
func mappingTexts(mappings []any) (values map[string]string, special map[string]map[string]any) {
	values, special = map[string]string{}, map[string]map[string]any{}
	for _, m := range mappings {
		mm, _ := m.(map[string]any)
		opts, _ := mm["options"].(map[string]any)
		switch mm["type"] {
		case "value":
			for k, v := range opts {
				vm, _ := v.(map[string]any)
				values[k], _ = vm["text"].(string)
			}
		case "special":
			match, _ := opts["match"].(string)
			res, _ := opts["result"].(map[string]any)
			special[match] = res
		}
	}
	return values, special
}

// Missing data looks missing: no panel colours an absent value with a
// threshold colour that means something (a green "no data" for a status
// while the swarm has no leader, an orange "none" for the conditions of a
// healthy swarm). Base thresholds are neutral; what maps values to states
// maps a missing value to a grey "unknown"; stats say "unknown" (or, for
// lists, "none") when there is nothing.
func TestMissingDataLooksMissing(t *testing.T) {
	for _, d := range dashboards(t) {
		name := filepath.Base(d.File)
		for _, p := range d.Panels() {
			typ, _ := p["type"].(string)
			if typ == "row" {
				continue
			}
			title, _ := p["title"].(string)
			defaults := fieldDefaults(p)
			th, _ := defaults["thresholds"].(map[string]any)
			steps, _ := th["steps"].([]any)
			if len(steps) > 0 {
				base, _ := steps[0].(map[string]any)
				if c, _ := base["color"].(string); !neutral[c] {
					t.Errorf("%s: panel %q: base threshold colour %q: a missing value would look %s", name, title, c, c)
				}
			}
			check := func(where string, mappings []any) {
				values, special := mappingTexts(mappings)
				if len(values) == 0 {
					return
				}
				res := special["null+nan"]
				if res == nil {
					t.Errorf("%s: panel %q%s maps values %v but not a missing one", name, title, where, values)
					return
				}
				if c, _ := res["color"].(string); res["text"] != "unknown" || !neutral[c] {
					t.Errorf("%s: panel %q%s shows a missing value as %v, want a grey \"unknown\"", name, title, where, res)
				}
			}
			ms, _ := defaults["mappings"].([]any)
			check("", ms)
			fc, _ := p["fieldConfig"].(map[string]any)
			overrides, _ := fc["overrides"].([]any)
			for _, o := range overrides {
				om, _ := o.(map[string]any)
				props, _ := om["properties"].([]any)
				for _, pr := range props {
					pm, _ := pr.(map[string]any)
					if pm["id"] == "mappings" {
						v, _ := pm["value"].([]any)
						check(fmt.Sprintf(" (override %v)", om["matcher"]), v)
					}
				}
			}
			if typ == "stat" {
				if nv, _ := defaults["noValue"].(string); nv != "unknown" && nv != "none" {
					t.Errorf("%s: panel %q says %q when there is no data, want \"unknown\" (or \"none\" for a list)", name, title, nv)
				}
			}
		}
	}
}

func variables(d monitoring.Dashboard) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, v := range d.Variables() {
		n, _ := v["name"].(string)
		out[n] = v
	}
	return out
}

// The variables: a cluster (any target label value, All by default), the
// stacks, and a service variable that does not default to every service
// of a 5,000-service swarm.
func TestVariables(t *testing.T) {
	want := map[string][]string{
		"swarm-exporter-overview": {"datasource", "job", "cluster", "stack", "instance"},
		"swarm-exporter-services": {"datasource", "job", "cluster", "stack", "service"},
		"swarm-exporter-nodes":    {"datasource", "job", "cluster", "node"},
	}
	for _, d := range dashboards(t) {
		vars := variables(d)
		for _, n := range want[d.UID()] {
			v := vars[n]
			if v == nil {
				t.Errorf("%s: no %s variable", d.UID(), n)
				continue
			}
			switch n {
			case "cluster", "stack", "instance", "node":
				if v["includeAll"] != true || v["allValue"] != ".*" {
					t.Errorf("%s: variable %s must offer All (.*), which also matches series without the label", d.UID(), n)
				}
			case "service":
				cur, _ := v["current"].(map[string]any)
				if v["includeAll"] == true || strings.Contains(fmt.Sprint(cur["value"]), "$__all") {
					t.Errorf("%s: variable service must not offer or default to All: a big swarm has thousands of services", d.UID())
				}
			}
		}
	}
}

// recordedOnly: every panel query reads the recording rules that the
// alerts read (so that a dashboard and a page never disagree), except
// those about the exporter instances themselves, which filter on
// $instance.
func TestPanelsReadRecordingRules(t *testing.T) {
	recorded, err := monitoring.RecordedNames()
	if err != nil {
		t.Fatal(err)
	}
	queries, err := monitoring.PanelQueries(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queries {
		if q.PerInstance() {
			continue
		}
		names, err := monitoring.MetricNames(q.Expr)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		for _, n := range names {
			if !recorded[n] {
				t.Errorf("%s reads %s, not a recording rule: it may disagree with the alerts", q, n)
			}
		}
	}
}

var varParam = regexp.MustCompile(`[?&]var-([A-Za-z0-9_]+)=`)

// Links between the dashboards: a service row opens the service dashboard
// for that service, a node row the nodes dashboard for that node; every
// link names a dashboard that exists and variables it has.
func TestDashboardLinks(t *testing.T) {
	ds := dashboards(t)
	byUID := map[string]monitoring.Dashboard{}
	for _, d := range ds {
		byUID[d.UID()] = d
	}
	found := map[string]bool{}
	for _, d := range ds {
		for _, p := range d.Panels() {
			title, _ := p["title"].(string)
			fc, _ := p["fieldConfig"].(map[string]any)
			overrides, _ := fc["overrides"].([]any)
			for _, o := range overrides {
				om, _ := o.(map[string]any)
				props, _ := om["properties"].([]any)
				for _, pr := range props {
					pm, _ := pr.(map[string]any)
					if pm["id"] != "links" {
						continue
					}
					links, _ := pm["value"].([]any)
					for _, l := range links {
						lm, _ := l.(map[string]any)
						u, _ := lm["url"].(string)
						m := regexp.MustCompile(`^/d/([a-z0-9-]+)(\?|$)`).FindStringSubmatch(u)
						if m == nil {
							t.Errorf("%s: panel %q: link %q is not a dashboard link (/d/<uid>?...)", d.UID(), title, u)
							continue
						}
						target, ok := byUID[m[1]]
						if !ok {
							t.Errorf("%s: panel %q links to an unknown dashboard %s", d.UID(), title, m[1])
							continue
						}
						if _, err := url.Parse(strings.NewReplacer("${", "", "}", "").Replace(u)); err != nil {
							t.Errorf("%s: panel %q: link %q: %v", d.UID(), title, u, err)
						}
						tv := variables(target)
						for _, vm := range varParam.FindAllStringSubmatch(u, -1) {
							if tv[vm[1]] == nil {
								t.Errorf("%s: panel %q links to %s with var-%s, which it does not have", d.UID(), title, m[1], vm[1])
							}
							found[m[1]+"/"+vm[1]] = true
						}
						for _, keep := range []string{"job", "cluster"} {
							if !strings.Contains(u, "${"+keep+":queryparam}") {
								t.Errorf("%s: panel %q: link %q does not keep $%s", d.UID(), title, u, keep)
							}
						}
					}
				}
			}
		}
	}
	for _, want := range []string{"swarm-exporter-services/service", "swarm-exporter-nodes/node"} {
		if !found[want] {
			t.Errorf("no service or node row links to %s", strings.Replace(want, "/", " with var-", 1))
		}
	}
}
