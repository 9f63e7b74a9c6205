// Package deploy_test checks the stack files without a swarm: every config
// they mount exists, the Prometheus configuration is valid with the rule
// files laid out as the stack mounts them, and the exporter's service keeps
// the promises the README makes (one instance per manager, non-root, the
// image's port). The end-to-end suite deploys deploy/exporter.yml on a real
// swarm.
package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"

	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
)

type stack struct {
	Services map[string]struct {
		Image   string
		User    string
		Configs []struct{ Source, Target string }
		Volumes []any
		Ports   []any
		Deploy  struct {
			Mode      string
			Placement struct{ Constraints []string }
		}
	}
	Configs map[string]struct{ File string }
}

func load(t *testing.T, name string) stack {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var s stack
	if err := yaml.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

func TestExporterService(t *testing.T) {
	s := load(t, "exporter.yml")
	svc, ok := s.Services["swarm-exporter"]
	if !ok {
		t.Fatalf("no swarm-exporter service in exporter.yml")
	}
	if svc.Deploy.Mode != "global" || len(svc.Deploy.Placement.Constraints) != 1 || svc.Deploy.Placement.Constraints[0] != "node.role == manager" {
		t.Errorf("the exporter must run once per manager: mode %q, constraints %q", svc.Deploy.Mode, svc.Deploy.Placement.Constraints)
	}
	if !strings.HasPrefix(svc.User, "65532:") {
		t.Errorf("user %q: the image's non-root user with the socket's group", svc.User)
	}
	if !strings.Contains(strings.ToLower(mustRead(t, "exporter.yml")), "/var/run/docker.sock") {
		t.Error("the socket is not mounted")
	}
	dockerfile := mustRead(t, "../Dockerfile")
	expose := regexp.MustCompile(`(?m)^EXPOSE (\d+)`).FindStringSubmatch(dockerfile)
	if expose == nil || len(svc.Ports) != 1 {
		t.Fatalf("want one published port and an EXPOSE in the Dockerfile: %v, %v", svc.Ports, expose)
	}
	if port, _ := svc.Ports[0].(map[any]any); port["target"] != atoi(expose[1]) {
		t.Errorf("the published port %v is not the image's EXPOSE %v", svc.Ports, expose)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func mustRead(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMonitoringConfigsExist(t *testing.T) {
	s := load(t, "monitoring.yml")
	for name, c := range s.Configs {
		if _, err := os.Stat(c.File); err != nil {
			t.Errorf("config %s: %v", name, err)
		}
	}
	for name, svc := range s.Services {
		for _, c := range svc.Configs {
			if _, ok := s.Configs[c.Source]; !ok {
				t.Errorf("service %s mounts the undefined config %s", name, c.Source)
			}
		}
	}
	// Every dashboard of the repository is provisioned.
	dashboards, _ := filepath.Glob("../dashboards/*.json")
	for _, d := range dashboards {
		found := false
		for _, c := range s.Configs {
			if filepath.Clean(c.File) == filepath.Clean(d) {
				found = true
			}
		}
		if !found {
			t.Errorf("dashboard %s is not in the stack", d)
		}
	}
	if len(dashboards) == 0 {
		t.Error("no dashboards found")
	}
}

// The stack's Prometheus configuration is valid with the files where the
// stack puts them, and its service discovery names the exporter's service.
func TestPrometheusConfig(t *testing.T) {
	promtool := monitoring.Tool(t, "promtool")
	s := load(t, "monitoring.yml")
	dir := t.TempDir()
	for _, c := range s.Services["prometheus"].Configs {
		src := s.Configs[c.Source].File
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(c.Target)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	monitoring.Run(t, promtool, "check", "config", filepath.Join(dir, "prometheus.yml"))

	exporters := load(t, "exporter.yml")
	for name := range exporters.Services {
		if !strings.Contains(mustRead(t, "prometheus.yml"), "tasks."+name) {
			t.Errorf("prometheus.yml does not discover the tasks of service %s", name)
		}
	}
}

// Only the instance on the leader reads the services, and the scrapes of
// several Prometheus servers share one read per interval: --read.max-age
// is under the stack Prometheus's scrape interval (otherwise one server
// would get a fresh read only every other scrape) and not far under it
// (otherwise two servers would each read).
func TestExporterReadsOncePerInterval(t *testing.T) {
	var stack struct {
		Services map[string]struct{ Command []string }
	}
	if err := yaml.Unmarshal([]byte(mustRead(t, "exporter.yml")), &stack); err != nil {
		t.Fatal(err)
	}
	var prom struct {
		Global struct {
			ScrapeInterval string `yaml:"scrape_interval"`
		}
	}
	if err := yaml.Unmarshal([]byte(mustRead(t, "prometheus.yml")), &prom); err != nil {
		t.Fatal(err)
	}
	interval, err := time.ParseDuration(prom.Global.ScrapeInterval)
	if err != nil {
		t.Fatalf("prometheus.yml scrape_interval %q: %v", prom.Global.ScrapeInterval, err)
	}
	var maxAge time.Duration
	leader := false
	for _, f := range stack.Services["swarm-exporter"].Command {
		if v, ok := strings.CutPrefix(f, "--read.max-age="); ok {
			if maxAge, err = time.ParseDuration(v); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		}
		leader = leader || f == "--read.services=leader"
	}
	if !leader {
		t.Error("exporter.yml does not pass --read.services=leader")
	}
	if maxAge >= interval || maxAge < interval*3/4 {
		t.Errorf("exporter.yml's --read.max-age=%v does not match prometheus.yml's scrape_interval %v: want just under it", maxAge, interval)
	}
}
