package monitoring

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/prometheus/common/model"
	yaml "go.yaml.in/yaml/v2"
)

// AlertmanagerOptions say how to adapt alerts/alertmanager.yml for a test.
type AlertmanagerOptions struct {
	// Webhook, when not nil, maps each webhook of a receiver (its name and
	// the URL it has in the shipped file) to the URL to post to instead,
	// e.g. a test's recording server.
	Webhook func(receiver, url string) string
	// GroupWait, GroupInterval and RepeatInterval, when not zero, replace
	// the timing of the top-level route and of every child route that sets
	// its own.
	GroupWait, GroupInterval, RepeatInterval time.Duration
}

// WriteAlertmanagerConfig writes a copy of alerts/alertmanager.yml to
// dir/alertmanager.yml with its webhooks and route timing replaced as opts
// say, checks with CheckAlertmanagerCopy that nothing else differs (routes,
// matchers, grouping, receivers' other settings, inhibit rules), and
// returns its path. Start Alertmanager on it with StartAlertmanager.
func WriteAlertmanagerConfig(dir string, opts AlertmanagerOptions) (string, error) {
	orig, err := os.ReadFile(Path(AlertsDir, "alertmanager.yml"))
	if err != nil {
		return "", err
	}
	var cfg yaml.MapSlice
	if err := yaml.Unmarshal(orig, &cfg); err != nil {
		return "", err
	}
	if route, ok := get(cfg, "route").(yaml.MapSlice); ok {
		cfg = set(cfg, "route", rewriteRoute(route, opts, true))
	}
	if opts.Webhook != nil {
		receivers, _ := get(cfg, "receivers").([]any)
		for i, r := range receivers {
			rm, ok := r.(yaml.MapSlice)
			if !ok {
				continue
			}
			name, _ := get(rm, "name").(string)
			hooks, _ := get(rm, "webhook_configs").([]any)
			for j, h := range hooks {
				hm, ok := h.(yaml.MapSlice)
				if !ok {
					continue
				}
				u, _ := get(hm, "url").(string)
				hooks[j] = set(hm, "url", opts.Webhook(name, u))
			}
			receivers[i] = rm
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	if err := CheckAlertmanagerCopy(orig, out); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "alertmanager.yml")
	return path, os.WriteFile(path, out, 0o644)
}

func rewriteRoute(route yaml.MapSlice, opts AlertmanagerOptions, top bool) yaml.MapSlice {
	for _, f := range []struct {
		key string
		d   time.Duration
	}{{"group_wait", opts.GroupWait}, {"group_interval", opts.GroupInterval}, {"repeat_interval", opts.RepeatInterval}} {
		if f.d == 0 {
			continue
		}
		if top || get(route, f.key) != nil {
			route = set(route, f.key, model.Duration(f.d).String())
		}
	}
	children, _ := get(route, "routes").([]any)
	for i, c := range children {
		if cm, ok := c.(yaml.MapSlice); ok {
			children[i] = rewriteRoute(cm, opts, false)
		}
	}
	return route
}

// timingKeys are the route settings a test copy may change.
var timingKeys = map[string]bool{"group_wait": true, "group_interval": true, "repeat_interval": true}

// CheckAlertmanagerCopy fails unless copy is the Alertmanager configuration
// original with, at most, other webhook URLs and other group_wait,
// group_interval and repeat_interval values in its routes (which must
// still parse as durations).
func CheckAlertmanagerCopy(original, copy []byte) error {
	var a, b any
	if err := yaml.Unmarshal(original, &a); err != nil {
		return fmt.Errorf("the original: %w", err)
	}
	if err := yaml.Unmarshal(copy, &b); err != nil {
		return fmt.Errorf("the copy: %w", err)
	}
	var errs []error
	na := normalizeAM(a, "", &errs)
	nb := normalizeAM(b, "", &errs)
	if len(errs) > 0 {
		return errs[0]
	}
	if !reflect.DeepEqual(na, nb) {
		ya, _ := yaml.Marshal(na)
		yb, _ := yaml.Marshal(nb)
		return fmt.Errorf("the Alertmanager copy differs beyond webhook URLs and route timing:\n--- shipped\n%s--- copy\n%s", ya, yb)
	}
	return nil
}

// normalizeAM drops what a copy may change: the timing keys of routes and
// the url of webhook_configs. path is where v sits ("route", "route.routes",
// "receivers.webhook_configs"...).
func normalizeAM(v any, path string, errs *[]error) any {
	switch x := v.(type) {
	case map[any]any:
		out := map[any]any{}
		for k, val := range x {
			ks := fmt.Sprint(k)
			isRoute := path == "route" || path == "route.routes"
			if isRoute && timingKeys[ks] {
				if s, ok := val.(string); !ok {
					*errs = append(*errs, fmt.Errorf("%s.%s: %v is not a duration", path, ks, val))
				} else if _, err := model.ParseDuration(s); err != nil {
					*errs = append(*errs, fmt.Errorf("%s.%s: %w", path, ks, err))
				}
				continue
			}
			if path == "receivers.webhook_configs" && ks == "url" {
				continue
			}
			child := path + "." + ks
			if path == "" {
				child = ks
			}
			if path == "route.routes" && ks == "routes" {
				child = "route.routes"
			}
			out[k] = normalizeAM(val, child, errs)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeAM(e, path, errs)
		}
		return out
	default:
		return v
	}
}
