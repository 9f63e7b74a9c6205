package monitoring

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Dashboard is one Grafana dashboard of dashboards/*.json.
type Dashboard struct {
	File string         // path of the JSON file
	JSON map[string]any // the decoded dashboard
}

// Title returns the dashboard's title.
func (d Dashboard) Title() string { s, _ := d.JSON["title"].(string); return s }

// UID returns the dashboard's uid.
func (d Dashboard) UID() string { s, _ := d.JSON["uid"].(string); return s }

// LoadDashboards reads every dashboards/*.json file.
func LoadDashboards() ([]Dashboard, error) {
	files, err := filepath.Glob(Path(DashboardsDir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no dashboard in %s", Path(DashboardsDir))
	}
	var out []Dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, Dashboard{File: f, JSON: m})
	}
	return out, nil
}

// Panels returns the dashboard's panels, those nested in collapsed rows
// included, rows themselves included.
func (d Dashboard) Panels() []map[string]any {
	var out []map[string]any
	var walk func(list []any)
	walk = func(list []any) {
		for _, p := range list {
			pm, ok := p.(map[string]any)
			if !ok {
				continue
			}
			out = append(out, pm)
			if nested, ok := pm["panels"].([]any); ok {
				walk(nested)
			}
		}
	}
	panels, _ := d.JSON["panels"].([]any)
	walk(panels)
	return out
}

// Variables returns the dashboard's template variables.
func (d Dashboard) Variables() []map[string]any {
	t, _ := d.JSON["templating"].(map[string]any)
	list, _ := t["list"].([]any)
	var out []map[string]any
	for _, v := range list {
		if vm, ok := v.(map[string]any); ok {
			out = append(out, vm)
		}
	}
	return out
}

// PanelQuery is one query of a dashboard panel.
type PanelQuery struct {
	Dashboard  string // the dashboard's title
	File       string
	PanelID    int
	PanelTitle string
	RefID      string
	Legend     string
	Instant    bool
	// Raw is the query as written in the dashboard; Expr has Grafana's
	// variables substituted.
	Raw, Expr string
}

func (q PanelQuery) String() string {
	return fmt.Sprintf("%s: panel %d %q, query %s", filepath.Base(q.File), q.PanelID, q.PanelTitle, q.RefID)
}

// PerInstance reports whether the query is about the exporter instances
// themselves (it filters on $instance), so that it may return one series
// per instance and read the exporter's own series; every other query reads
// the recording rules, one series per swarm, node or service.
func (q PanelQuery) PerInstance() bool { return strings.Contains(q.Raw, `instance=~"$instance"`) }

// DefaultVariables are values for the dashboards' variables and Grafana's
// built-in ones that select everything: $job, $cluster, $stack, $instance,
// $service and $node match any value, $__rate_interval is 1m.
func DefaultVariables() map[string]string {
	return map[string]string{
		"datasource":         "prometheus",
		"job":                ".+",
		"cluster":            ".*",
		"stack":              ".*",
		"instance":           ".*",
		"service":            ".*",
		"node":               ".*",
		"__rate_interval":    "1m",
		"__interval":         "15s",
		"__range":            "1h",
		"__range_s":          "3600",
		"__interval_ms":      "15000",
		"__range_ms":         "3600000",
		"__auto":             "1m",
		"__rate_interval_ms": "60000",
	}
}

var variableRef = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::[^}]*)?\}|\[\[([A-Za-z0-9_]+)(?::[^\]]*)?\]\]|\$([A-Za-z0-9_]+)`)

// Substitute replaces Grafana variable references ($name, ${name},
// ${name:format}, [[name]]) by their values in vars, the defaults of
// DefaultVariables filling in; it fails on a variable that has no value.
func Substitute(expr string, vars map[string]string) (string, error) {
	all := DefaultVariables()
	for k, v := range vars {
		all[k] = v
	}
	var missing []string
	out := variableRef.ReplaceAllStringFunc(expr, func(ref string) string {
		m := variableRef.FindStringSubmatch(ref)
		name := m[1] + m[2] + m[3]
		v, ok := all[name]
		if !ok {
			missing = append(missing, name)
			return ref
		}
		return v
	})
	if len(missing) > 0 {
		sort.Strings(missing)
		return "", fmt.Errorf("no value for variable(s) %v in %q", missing, expr)
	}
	return out, nil
}

// PanelQueries lists every panel query of every dashboard with Grafana's
// variables substituted (vars override DefaultVariables, e.g.
// {"job": "swarm_exporter"}).
func PanelQueries(vars map[string]string) ([]PanelQuery, error) {
	dashboards, err := LoadDashboards()
	if err != nil {
		return nil, err
	}
	var out []PanelQuery
	for _, d := range dashboards {
		for _, p := range d.Panels() {
			targets, _ := p["targets"].([]any)
			for _, t := range targets {
				tm, ok := t.(map[string]any)
				if !ok {
					continue
				}
				raw, _ := tm["expr"].(string)
				if raw == "" {
					continue
				}
				expr, err := Substitute(raw, vars)
				if err != nil {
					return nil, fmt.Errorf("%s panel %q: %w", filepath.Base(d.File), p["title"], err)
				}
				id, _ := p["id"].(float64)
				title, _ := p["title"].(string)
				ref, _ := tm["refId"].(string)
				legend, _ := tm["legendFormat"].(string)
				instant, _ := tm["instant"].(bool)
				out = append(out, PanelQuery{Dashboard: d.Title(), File: d.File, PanelID: int(id), PanelTitle: title,
					RefID: ref, Legend: legend, Instant: instant, Raw: raw, Expr: expr})
			}
		}
	}
	return out, nil
}

var labelValues = regexp.MustCompile(`^\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

// VariableSelectors returns, per dashboard variable of type query, the
// series selector of its label_values(selector, label) query with
// variables substituted.
func VariableSelectors(d Dashboard, vars map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range d.Variables() {
		if v["type"] != "query" {
			continue
		}
		var q string
		switch qv := v["query"].(type) {
		case string:
			q = qv
		case map[string]any:
			q, _ = qv["query"].(string)
		}
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			return nil, fmt.Errorf("variable %v: query %q is not label_values(selector, label)", v["name"], q)
		}
		sel, err := Substitute(m[1], vars)
		if err != nil {
			return nil, err
		}
		name, _ := v["name"].(string)
		out[name] = sel
	}
	return out, nil
}
